"""probe indexes: each host's value of a feature, and the hosts in the trash

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 23:45:00

- ``ix_<host>_feature_values_<column>_by_host`` (host_id, feature_id, <column>) WHERE <column>
  IS NOT NULL, one per typed value column: the EXISTS probes of a filter with several feature
  conditions read one entry of this narrow index instead of the primary key plus the table row.
- ``ix_<host>s_trashed`` (id) WHERE visibility <> 'default': the ids of the hosts in the
  trash, which ``count()`` by feature values leaves out (``biolake.features.filters.
  count_by_values``). Not an index of every visibility: nearly all rows are "default", and
  SQLite, without statistics, then preferred it to the key index (30 ms for a get by key at
  200,000 artifacts instead of 0.2 ms).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# As of this revision (frozen: the live names may change later).
HOSTS = ("artifact", "run")
TRASHED = "visibility <> 'default'"
COLUMNS = ("value_int", "value_float", "value_str", "value_date", "value_datetime", "record_id")


def upgrade() -> None:
    for host in HOSTS:
        table = f"{host}_feature_values"
        for column in COLUMNS:
            present = sa.text(f"{column} IS NOT NULL")
            op.create_index(
                f"ix_{table}_{column}_by_host",
                table,
                ["host_id", "feature_id", column],
                sqlite_where=present,
                postgresql_where=present,
            )
        trashed = sa.text(TRASHED)
        op.create_index(
            f"ix_{host}s_trashed",
            f"{host}s",
            ["id"],
            sqlite_where=trashed,
            postgresql_where=trashed,
        )


def downgrade() -> None:
    for host in HOSTS:
        op.drop_index(f"ix_{host}s_trashed", table_name=f"{host}s")
        table = f"{host}_feature_values"
        for column in COLUMNS:
            op.drop_index(f"ix_{table}_{column}_by_host", table_name=table)
