"""run context: what a run saw, printed and depended on

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 14:15:00

- ``runs.report`` (text) becomes ``runs.status_reason``: why the run has its status (the
  traceback, the signal, the exit code). The report is now an artifact, ``runs.report_id``:
  the run's teed stdout and stderr;
- ``runs.environment`` (JSON, never filled) becomes ``runs.environment_id``: an artifact listing
  the installed packages, shared by every run with the same environment fingerprint;
- ``runs.git_branch``, ``git_remote``, ``git_dirty``, ``git_diff`` (next to ``git_commit``);
- ``runs.scheduler``: the SLURM or PBS job, with a ``group`` per array job;
- ``runs.heartbeat_at``: a live process's last sign of life, for runs of other hosts, and
  ``runs.lease_seconds``: how long that process lets pass before it counts as gone;
- ``runs.fingerprint`` (indexed): source, inputs, params and environment of a completed run,
  hashed, for re-run detection; ``runs.result``: what a tracked function returned, by uid.

ALTER TABLE ... RENAME/DROP COLUMN needs SQLite 3.35 or newer (2021), as on PostgreSQL.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from biolake.core.schema.base import UTCDateTime

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _json() -> sa.types.TypeEngine:
    return sa.JSON(none_as_null=True).with_variant(
        postgresql.JSONB(none_as_null=True), "postgresql"
    )


def _add_artifact_id(name: str) -> None:
    # An inline REFERENCES: SQLite adds it with the column, without rebuilding the table.
    op.execute(
        f"ALTER TABLE runs ADD COLUMN {name} INTEGER "
        f"CONSTRAINT fk_runs_{name} REFERENCES artifacts (id)"
    )


def _check_sqlite() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return
    import sqlite3

    if sqlite3.sqlite_version_info < (3, 35):
        raise RuntimeError(
            f"This biolake needs SQLite 3.35 or newer to upgrade the instance (this Python has "
            f"{sqlite3.sqlite_version}): use a Python built with a newer SQLite, e.g. from "
            "conda-forge or python.org, or `pip install pysqlite3-binary`."
        )


def upgrade() -> None:
    _check_sqlite()
    op.execute("ALTER TABLE runs RENAME COLUMN report TO status_reason")
    op.execute("ALTER TABLE runs DROP COLUMN environment")
    _add_artifact_id("report_id")
    _add_artifact_id("environment_id")
    op.add_column("runs", sa.Column("git_branch", sa.String(length=255)))
    op.add_column("runs", sa.Column("git_remote", sa.String(length=1024)))
    op.add_column("runs", sa.Column("git_dirty", sa.Boolean()))
    op.add_column("runs", sa.Column("git_diff", sa.Text()))
    op.add_column("runs", sa.Column("scheduler", _json()))
    op.add_column("runs", sa.Column("heartbeat_at", UTCDateTime(timezone=True)))
    op.add_column("runs", sa.Column("lease_seconds", sa.Float()))
    op.add_column("runs", sa.Column("fingerprint", sa.String(length=80)))
    op.add_column("runs", sa.Column("result", _json()))
    op.create_index("ix_runs_environment_id", "runs", ["environment_id"])
    op.create_index("ix_runs_fingerprint", "runs", ["fingerprint"])


def downgrade() -> None:
    op.drop_index("ix_runs_fingerprint", table_name="runs")
    op.drop_index("ix_runs_environment_id", table_name="runs")
    for column in (
        "result",
        "fingerprint",
        "lease_seconds",
        "heartbeat_at",
        "scheduler",
        "git_diff",
        "git_dirty",
        "git_remote",
        "git_branch",
        "environment_id",
        "report_id",
    ):
        op.execute(f"ALTER TABLE runs DROP COLUMN {column}")
    op.add_column("runs", sa.Column("environment", _json()))
    op.execute("ALTER TABLE runs RENAME COLUMN status_reason TO report")
