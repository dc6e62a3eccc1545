"""storage fingerprints: notice stored bytes changed in place

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 10:00:00

- ``artifacts.storage_fingerprint``: the cheap fingerprint (size, mtime and inode; for a folder,
  those of every member, combined) of the stored object when it was last found intact, see
  ``biolake/storage/fingerprints.py``. ``cache()``, ``load()`` and ``open()`` compare it with
  one ``stat`` and hash the object again only when it differs.

On the artifact row, not in a table of stored objects (which are shared by the rows of equal
content): a read has the row already, so the check costs one ``stat`` and no query. Rows that
share an object are updated together, by hash (indexed) and storage key.

Rows saved before this revision have none: their first read hashes the object once and
records the fingerprint (or raises if the bytes no longer match the hash).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A plain ADD COLUMN: SQLite adds a nullable column without rebuilding the table.
    op.add_column("artifacts", sa.Column("storage_fingerprint", sa.String(length=96)))


def downgrade() -> None:
    op.execute("ALTER TABLE artifacts DROP COLUMN storage_fingerprint")  # SQLite 3.35+, as 0006
