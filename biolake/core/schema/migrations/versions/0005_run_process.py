"""run process: how a run ended and where it ran

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 12:00:00

- ``runs.exit_code``: the code a tracked process exited with (``sys.exit(n)``), when known;
- ``runs.finished_implicitly``: the process ended without ``ln.finish()``;
- ``runs.pid``, ``runs.host``: the process that runs it, so a run whose process is gone can be
  told from one still running;
- ``runs.entrypoint``: the command line that started it;
- ``ix_runs_started_host``: the runs still started, by host (``ln.track()`` looks for crashed
  ones).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("exit_code", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("finished_implicitly", sa.Boolean(), nullable=True))
        batch_op.add_column(sa.Column("pid", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("host", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("entrypoint", sa.Text(), nullable=True))
    started = sa.text("status = 'started'")
    op.create_index(
        "ix_runs_started_host", "runs", ["host"], sqlite_where=started, postgresql_where=started
    )


def downgrade() -> None:
    op.drop_index("ix_runs_started_host", table_name="runs")
    with op.batch_alter_table("runs", schema=None) as batch_op:
        for column in ("entrypoint", "host", "pid", "finished_implicitly", "exit_code"):
            batch_op.drop_column(column)
