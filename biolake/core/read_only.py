"""Read-only instances: when an instance opens read-only, how its database is opened without
writing, and how a refused write is told apart from other database errors.

An instance opens read-only when asked (``ln.setup.connect(path, read_only=True)``), when this
user cannot write its ``.biolake`` folder or its SQLite file, or when its PostgreSQL role may
not insert, update and delete in every biolake table.

SQLite in WAL mode keeps readers and writers apart through two files beside the database,
``biolake.db-wal`` and ``biolake.db-shm``, which a reader must be able to create or find.
A read-only opener therefore uses ``mode=ro`` when the folder is writable or both files exist
(another process has the database open), and ``immutable=1`` when neither file exists in a
folder nobody here can write: SQLite then reads the main file alone and assumes it never
changes, which holds for archives, snapshots and read-only media. A ``-wal`` file without its
``-shm`` holds changes no read-only opener can see, so that case is refused.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from urllib.parse import quote

from sqlalchemy import Connection, text
from sqlalchemy.engine import URL

from biolake.errors import InstanceError

# Every privilege a writer needs, per table and per sequence of the instance's schema;
# has_table_privilege with a list is true when *any* of them is held, so one call each.
_CAN_WRITE = text(
    "SELECT NOT pg_is_in_recovery() AND current_setting('transaction_read_only') = 'off' "
    "AND coalesce(bool_and(CASE WHEN c.relkind = 'S' THEN has_sequence_privilege(c.oid, 'USAGE') "
    "ELSE has_table_privilege(c.oid, 'INSERT') AND has_table_privilege(c.oid, 'UPDATE') "
    "AND has_table_privilege(c.oid, 'DELETE') END), true) "
    "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'S')"
)
_WRITES = ("INSERT", "UPDATE", "DELETE", "CREATE", "ALTER", "DROP", "TRUNCATE", "REPLACE")


def asked_reason(root: Path) -> str:
    return (
        "as asked (read_only=True). To write, connect without read_only=True: "
        f"ln.setup.connect({str(root)!r})"
    )


def folder_reason(meta_dir: Path, db_file: Path | None) -> str | None:
    """Why this user cannot write the instance's folder (or its SQLite file), or None."""
    for path in (meta_dir, db_file):
        if path is not None and path.exists() and not writable(path):
            return (
                f"because {path} is not writable for this user. To write, ask its owner for "
                "write access, or copy the instance's folder to one of yours"
            )
    return None


def writable(path: Path) -> bool:
    # The effective ids decide (a setuid process), as they do for the writes themselves.
    if os.access in os.supports_effective_ids:
        return os.access(path, os.W_OK, effective_ids=True)
    return os.access(path, os.W_OK)


def role_reason(conn: Connection, safe_url: str) -> str | None:
    """Why the PostgreSQL role of ``conn`` cannot write the instance's tables, or None."""
    if conn.execute(_CAN_WRITE).scalar():
        return None
    role = conn.execute(text("SELECT current_user")).scalar()
    return (
        f"because the database role {role!r} may only read ({safe_url}). To write, connect "
        "with a role that may INSERT, UPDATE and DELETE in every table of the instance"
    )


def sqlite_url(path: Path, read_only: bool) -> URL:
    """The URL of the SQLite file ``path``: built from parts, so that no character of the path
    (``?``, ``#``, ``%``) is read as URL syntax; opened without writing when ``read_only``."""
    if not read_only:
        return URL.create("sqlite", database=str(path))
    wal, shm = Path(f"{path}-wal"), Path(f"{path}-shm")
    if writable(path.parent) or (wal.exists() and shm.exists()):
        mode = {"mode": "ro"}
    elif wal.exists():
        raise InstanceError(
            f"Cannot open {path} read-only: its write-ahead log {wal.name} holds changes that "
            "only an opener with write access to the folder can read. Ask someone with write "
            "access to open the instance once (that folds the log into the database)."
        )
    else:
        mode = {"immutable": "1"}
    return URL.create("sqlite", database=f"file:{quote(str(path))}", query={**mode, "uri": "true"})


def write_refused(error: BaseException, statement: str | None) -> bool:
    """Whether a driver error is the database refusing a write: a read-only SQLite file or
    connection, a read-only PostgreSQL transaction, or a role without the privilege."""
    code = getattr(error, "sqlite_errorcode", None)
    if code is not None:
        return bool(code & 0xFF == sqlite3.SQLITE_READONLY)
    state = getattr(error, "sqlstate", None)
    if state == "25006":  # read_only_sql_transaction
        return True
    return state == "42501" and is_write(statement)  # insufficient_privilege


def read_refused(error: BaseException, statement: str | None) -> bool:
    """Whether a driver error is a PostgreSQL role refused a read (no SELECT privilege)."""
    return getattr(error, "sqlstate", None) == "42501" and not is_write(statement)


def is_write(statement: str | None) -> bool:
    words = (statement or "").split(None, 1)
    return bool(words) and words[0].upper() in _WRITES
