"""Apply pending Alembic migrations when an instance is opened, safely and only when needed.

Opening an up-to-date instance reads one row (the stored revision) and never imports Alembic,
whose import alone costs about half a second. When the revision differs, a lock (a file lock for
SQLite, an advisory lock for PostgreSQL) makes sure only one process migrates; the others wait,
then find the schema current.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError

from biolake.core.db import Database
from biolake.core.schema import HEAD_REVISION
from biolake.errors import InstanceError

MIGRATIONS = Path(__file__).parent / "migrations"
PG_LOCK_KEY = 0x62696F6C  # "biol": the advisory lock every biolake migration takes


def stored_revision(conn: Connection) -> str | None:
    """The revision recorded in the database, or None for an empty database."""
    try:
        return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except DBAPIError:
        conn.rollback()  # PostgreSQL aborts the transaction on the error
        return None


def ensure_schema(db: Database, lock_path: Path) -> None:
    """Bring the database schema to ``HEAD_REVISION``."""
    with db.engine.connect() as conn:
        current = stored_revision(conn)
        conn.rollback()
    if current == HEAD_REVISION:
        return
    with _migration_lock(db, lock_path) as conn:
        current = stored_revision(conn)
        if current == HEAD_REVISION:
            return
        _check_known(current)
        _upgrade(conn, db)


def _check_known(revision: str | None) -> None:
    if revision is None:
        return
    known = {p.name.split("_", 1)[0] for p in (MIGRATIONS / "versions").glob("*.py")}
    if revision not in known:
        raise InstanceError(
            f"This instance was migrated by a newer biolake (schema {revision}, this version knows "
            f"up to {HEAD_REVISION}): upgrade biolake with `pip install -U biolake`."
        )


@contextlib.contextmanager
def _migration_lock(db: Database, lock_path: Path) -> Iterator[Connection]:
    if db.is_sqlite:
        from filelock import FileLock

        with FileLock(str(lock_path)), db.engine.connect() as conn:
            yield conn
        return
    with db.engine.connect() as conn:
        conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": PG_LOCK_KEY})
        conn.commit()
        try:
            yield conn
        finally:
            conn.rollback()
            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": PG_LOCK_KEY})
            conn.commit()


def _upgrade(conn: Connection, db: Database) -> None:
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = conn
    if conn.in_transaction():
        conn.rollback()
    if db.is_sqlite:
        conn.exec_driver_sql("BEGIN IMMEDIATE")  # the driver is in autocommit mode (see db.py)
    command.upgrade(config, "head")
    conn.commit()
