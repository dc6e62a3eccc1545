"""search indexes and expression indexes (hand-written: autogenerate cannot see them)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 12:00:00

- the unique (name, type) index of records, NULL type counted as one type;
- text search: FTS5 trigram tables + triggers on SQLite, pg_trgm GIN indexes on PostgreSQL
  (see ``biolake.core.schema.search_index``).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from biolake.core.schema.search_index import TRGM_SCHEMA_QUERY, create_statements, drop_statements

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The searched tables and fields as of this revision (not the live SEARCHED_TABLES: a table
# searched later gets its index in its own migration). The DDL builders of search_index are
# shared on purpose; test_migrations checks that upgrading gives the schema the models declare.
TABLES = {
    "artifacts": ("key", "description"),
    "records": ("name", "description"),
    "features": ("name", "description"),
    "projects": ("name", "description"),
}


def _trgm_schema(bind: sa.Connection) -> str | None:
    if bind.dialect.name == "sqlite":
        return None
    schema = bind.execute(sa.text(TRGM_SCHEMA_QUERY)).scalar()
    if schema is None:
        # pg_trgm is a trusted extension: a database owner may create it.
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        schema = bind.execute(sa.text(TRGM_SCHEMA_QUERY)).scalar()
    return str(schema)


def upgrade() -> None:
    op.execute("CREATE UNIQUE INDEX uq_records_name_type ON records (name, coalesce(type_id, 0))")
    bind = op.get_bind()
    schema = _trgm_schema(bind)
    for table, fields in TABLES.items():
        statements = create_statements(
            table, fields, bind.dialect.name, schema, pausable_insert=False
        )
        for statement in statements:
            op.execute(statement)


def downgrade() -> None:
    bind = op.get_bind()
    for table, fields in TABLES.items():
        for statement in drop_statements(table, fields, bind.dialect.name):
            op.execute(statement)
    op.execute("DROP INDEX IF EXISTS uq_records_name_type")
