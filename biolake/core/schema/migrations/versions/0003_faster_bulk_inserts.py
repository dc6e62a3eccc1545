"""faster bulk inserts: pausable search-index triggers, two redundant artifact indexes dropped

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 14:10:00

- SQLite: the table ``fts_paused`` and insert triggers that do nothing while it names their
  table; ``biolake.core.inserts`` then indexes a whole batch with one INSERT … SELECT
  (``biolake.core.schema.search_index.sqlite_fill_statement``). PostgreSQL's trigram indexes need
  no triggers.
- Both: ``ix_artifacts_stem`` goes (the unique (stem, version) index answers every stem
  lookup) and so does ``ix_artifacts_storage_key`` (reference checks look up by hash). Each
  random-string index cost 15-25 % of an artifact INSERT.
"""

from collections.abc import Sequence

from alembic import op

from biolake.core.schema.search_index import PAUSE_TABLE, sqlite_insert_trigger

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The searched tables and fields as of this revision.
TABLES = {
    "artifacts": ("key", "description"),
    "records": ("name", "description"),
    "features": ("name", "description"),
    "projects": ("name", "description"),
}


def upgrade() -> None:
    op.drop_index("ix_artifacts_stem", table_name="artifacts")
    op.drop_index("ix_artifacts_storage_key", table_name="artifacts")
    if op.get_bind().dialect.name != "sqlite":
        return
    op.execute(f"CREATE TABLE {PAUSE_TABLE} (name TEXT PRIMARY KEY) WITHOUT ROWID")
    for table, fields in TABLES.items():
        op.execute(f"DROP TRIGGER {table}_fts_insert")
        op.execute(sqlite_insert_trigger(table, fields, pausable=True))


def downgrade() -> None:
    op.create_index("ix_artifacts_storage_key", "artifacts", ["storage_key"])
    op.create_index("ix_artifacts_stem", "artifacts", ["stem"])
    if op.get_bind().dialect.name != "sqlite":
        return
    for table, fields in TABLES.items():
        op.execute(f"DROP TRIGGER {table}_fts_insert")
        op.execute(sqlite_insert_trigger(table, fields, pausable=False))
    op.execute(f"DROP TABLE {PAUSE_TABLE}")
