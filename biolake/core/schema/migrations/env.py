"""Alembic environment: runs on the connection biolake hands over (see ``migrate.py``)."""

from __future__ import annotations

from alembic import context

from biolake.core.schema.base import Base

config = context.config
# Autogenerate (scripts/new_migration.py) imports biolake.registries first, so that every table is
# mapped; upgrades run the migration scripts alone and need no models.
target_metadata = Base.metadata
if config.attributes.get("autogenerate") and not target_metadata.tables:
    # Against an empty metadata, autogenerate would write a migration that drops every table.
    raise RuntimeError("Import biolake.registries before autogenerating a migration.")


def run_migrations_online() -> None:
    connection = config.attributes["connection"]
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations_online()
