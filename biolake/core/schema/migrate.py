"""Apply pending Alembic migrations when an instance is opened, safely and only when needed.

Opening an up-to-date instance reads one row (the stored revision) and never imports Alembic,
whose import alone costs about half a second. When the revision differs, a lock (a file lock for
SQLite, an advisory lock for PostgreSQL) makes sure only one process migrates; the others wait,
then find the schema current.

A database holding tables but no biolake schema belongs to another program: it is refused, never
migrated. A read-only opener (``read_only=True``) migrates nothing: it needs the current schema.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError

from biolake.core.db import Database
from biolake.core.schema import HEAD_REVISION
from biolake.errors import InstanceError, join_capped

MIGRATIONS = Path(__file__).parent / "migrations"
PG_LOCK_KEY = 0x62696F6C  # "biol": the advisory lock every biolake migration takes


def stored_revision(conn: Connection) -> str | None:
    """The revision recorded in the database, or None when it has no ``alembic_version``."""
    try:
        return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except DBAPIError as exc:
        conn.rollback()  # PostgreSQL aborts the transaction on the error
        if not _is_missing_table(exc):  # a refused read or a broken file is no empty database
            raise InstanceError(
                f"Cannot read the schema version of the database: {exc.orig}. Check the "
                "database URL and the role's privileges, or restore the file from a backup."
            ) from exc
        return None


def _is_missing_table(exc: DBAPIError) -> bool:
    return getattr(exc.orig, "sqlstate", None) == "42P01" or "no such table" in str(exc.orig)


def ensure_schema(db: Database, lock_path: Path, *, read_only: bool = False) -> None:
    """Bring the database schema to ``HEAD_REVISION``; with ``read_only``, only check it."""
    with db.engine.connect() as conn:
        current = stored_revision(conn)
        if current is None:
            _check_no_foreign_tables(conn, db)
        conn.rollback()
    if current == HEAD_REVISION:
        return
    _check_known(current)
    if read_only:
        raise InstanceError(
            f"Cannot open {db.owner} read-only: it has schema {current or 'none'} and this "
            f"biolake needs {HEAD_REVISION}, which a read-only opener cannot migrate to. Open it "
            "once with write access (ln.setup.connect without read_only=True), then read it."
        )
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
    if revision in known:
        return
    if not (len(revision) == 4 and revision.isdigit()):  # biolake numbers its revisions
        raise InstanceError(
            f"This database holds the schema {revision!r} of another program, not a biolake "
            "instance: pass an empty database (or a schema of its own) to biolake."
        )
    raise InstanceError(
        f"This instance was migrated by a newer biolake (schema {revision}, this version knows "
        f"up to {HEAD_REVISION}): upgrade biolake with `pip install -U biolake`."
    )


_TABLES = {
    "sqlite": "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
    "postgresql": "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()",
}


def _check_no_foreign_tables(conn: Connection, db: Database) -> None:
    """Refuse a database without a biolake schema that holds tables: another program's."""
    tables = sorted(conn.execute(text(_TABLES[db.dialect])).scalars())
    if tables:
        raise InstanceError(
            f"Cannot use {db.owner}: it holds tables of another program "
            f"({join_capped(tables, 5)}) and no biolake schema, and biolake adds none among "
            "them. Pass an empty database, or give biolake a schema of its own (CREATE SCHEMA "
            "biolake, then postgresql://...?options=-csearch_path%3Dbiolake)."
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
