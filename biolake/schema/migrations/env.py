"""Alembic environment: runs on the connection biolake hands over (see ``migrate.py``)."""

from __future__ import annotations

from alembic import context

import biolake.registries  # noqa: F401  (maps every table)
from biolake.schema.base import Base

config = context.config
target_metadata = Base.metadata


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
