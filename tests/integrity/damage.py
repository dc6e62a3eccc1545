"""Damage an instance the way tools outside biolake can: raw SQL with foreign keys unchecked,
files changed or removed in the storage folder."""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path
from typing import Any


def raw_sql(instance: Any, *statements: str) -> None:
    """Run ``statements`` outside biolake, with foreign keys not enforced: the ``sqlite3``
    shell's default, and a PostgreSQL session with triggers off (as some restores run)."""
    if instance.db.is_sqlite:
        conn = sqlite3.connect(instance.db.engine.url.database)
        try:
            for statement in statements:
                conn.execute(statement)
            conn.commit()
        finally:
            conn.close()
        return
    import psycopg

    with psycopg.connect(instance.db.url) as conn:
        conn.execute("SET session_replication_role = replica")
        for statement in statements:
            conn.execute(statement)


def object_path(instance: Any, artifact: Any) -> Path:
    return Path(instance.root) / artifact.storage_key


def flip_a_byte(path: Path) -> None:
    """Change one byte of a stored (read-only) file in place."""
    os.chmod(path, stat.S_IRUSR | stat.S_IWUSR)
    data = bytearray(path.read_bytes())
    data[0] ^= 0xFF
    path.write_bytes(bytes(data))
    os.chmod(path, 0o444)
