"""What a failed ``init`` leaves behind: nothing. It removes the folders it created and a SQLite
file that never received a schema, so that the folder is as it was and a later ``init`` works.

A parallel ``init`` of the same folder may share these: the SQLite file is removed only under
the migration lock and only while it holds no schema (the other process migrates under that
lock), and a folder only while it is empty.
"""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path
from urllib.parse import quote

from biolake.core.instance import CONFIG_FILE


def made_dirs(path: Path) -> list[Path]:
    """``path`` and its ancestors that do not exist yet, innermost first: what creating
    ``path`` will make."""
    missing = []
    while not path.exists() and path != path.parent:
        missing.append(path)
        path = path.parent
    return missing


def remove_half_made(made: list[Path], db_file: Path | None) -> None:
    """Undo a failed ``init``: ``made`` are the folders it created (innermost first),
    ``db_file`` the instance's SQLite file, if it has one."""
    if db_file is not None and db_file.parent in made:
        _remove_unmigrated(db_file)
    for folder in made:
        with contextlib.suppress(OSError):  # not empty: someone else's files are in it
            folder.rmdir()


def _remove_unmigrated(db_file: Path) -> None:
    from filelock import FileLock

    lock_path = db_file.parent / "migrate.lock"
    try:
        with FileLock(str(lock_path), timeout=0):
            if db_file.exists() and not _has_schema(db_file):
                for suffix in ("", "-wal", "-shm"):
                    Path(f"{db_file}{suffix}").unlink(missing_ok=True)
            lock_path.unlink(missing_ok=True)
    except Exception:  # a parallel init holds the lock (it migrates), or the folder is gone
        return


def _has_schema(db_file: Path) -> bool:
    """Whether the file holds a migrated schema; True when in doubt (locked, unreadable): a
    file is deleted only when it surely holds nothing."""
    if (db_file.parent / CONFIG_FILE).exists():
        return True  # another init of this folder finished: the instance is real
    try:
        conn = sqlite3.connect(f"file:{quote(str(db_file))}?mode=ro", uri=True)
    except sqlite3.Error:
        return True
    try:
        tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
    except sqlite3.Error:
        return True
    finally:
        conn.close()
    return bool(tables)
