"""An open instance: its storage root, its database, and the ids of its own rows."""

from __future__ import annotations

import getpass
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.engine import URL
from sqlalchemy.exc import IntegrityError

from biolake.core.db import Database
from biolake.core.ids import new_uid
from biolake.core.read_only import sqlite_url
from biolake.errors import InstanceError, ValidationError

if TYPE_CHECKING:
    from biolake.storage import Storage

META_DIR = ".biolake"
CONFIG_FILE = "instance.json"
SQLITE_FILE = "biolake.db"


def config_path(root: Path) -> Path:
    return root / META_DIR / CONFIG_FILE


def read_config(root: Path) -> dict[str, Any]:
    path = config_path(root)
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise InstanceError(
            f"The instance settings {path} are corrupt ({exc}). Restore the file from a backup, "
            "or move it away and run `biolake init` again on the same folder."
        ) from exc
    except OSError as exc:  # unreadable for this user, or not a file
        raise InstanceError(
            f"Cannot read the instance settings {path}: {exc.strerror}. Ask the instance's "
            "owner for read access to its .biolake folder."
        ) from exc


def sqlite_file(root: Path, config: dict[str, Any]) -> Path | None:
    """The SQLite file of the instance at ``root``, or None for a PostgreSQL instance."""
    return None if config.get("db") else root / META_DIR / SQLITE_FILE


def database_url(root: Path, config: dict[str, Any], read_only: bool = False) -> str | URL:
    path = sqlite_file(root, config)
    return config["db"] if path is None else sqlite_url(path, read_only)


def current_handle() -> str:
    """The user handle for this process: ``BIOLAKE_USER`` or the OS login."""
    handle = os.environ.get("BIOLAKE_USER") or getpass.getuser()
    if not handle.strip():
        raise ValidationError("BIOLAKE_USER is empty: set it to your user handle, e.g. 'alice'.")
    return handle.strip()


class Instance:
    """One biolake instance, open in this process. Several can be open at once.

    ``read_only_reason`` (why, and how to get write access) opens it read-only: every write
    raises ``ReadOnlyInstance`` with that reason (see ``biolake.core.read_only``).
    """

    def __init__(
        self, root: Path, config: dict[str, Any], *, read_only_reason: str | None = None
    ) -> None:
        self.root = root
        self.name: str = config["name"]
        self.config = config
        read_only = read_only_reason is not None
        self.db = Database(database_url(root, config, read_only), read_only=read_only)
        self.db.owner = f"the instance {self.name!r} ({root})"
        self.db.read_only_reason = read_only_reason
        self.db.session.info["instance"] = self
        # Ids of this instance's own rows ("user", "storage"), remembered by their registries.
        self.row_ids: dict[str, int] = {}
        self._storage: Storage | None = None
        self.closed = False
        self.db.on_rollback.append(self._forget_ids)

    def _forget_ids(self) -> None:
        # A rolled-back write may have inserted these rows: look them up again next time.
        self.row_ids.clear()

    def __repr__(self) -> str:
        mode = ", read_only=True" if self.read_only else ""
        return f"Instance(name={self.name!r}, root='{self.root}', db='{self.db.safe_url}'{mode})"

    @property
    def read_only(self) -> bool:
        """Whether this instance refuses writes (``ln.setup.connect(..., read_only=True)``, a
        folder or database role this user cannot write)."""
        return self.db.read_only

    @property
    def storage(self) -> Storage:
        if self._storage is None:
            # Loaded by the first save or load, not when an instance opens: storage brings
            # blake3, mmap and a thread pool, a tenth of a first query's import time.
            from biolake.storage import storage_for

            self._storage = storage_for(str(self.root))
        return self._storage

    def get_or_create(self, model: Any, field: str, value: str, **extra: Any) -> int:
        """The id of the ``model`` row whose unique ``field`` is ``value``, inserted if missing:
        for the rows an instance needs for itself (its user, its storage root), whose
        registries pass their class."""
        session = self.db.session
        column = getattr(model, field)
        found = session.execute(select(model.id).where(column == value)).scalar()
        self.db.end_read()
        if found is not None:
            return int(found)
        # This often runs inside another write (the first save in a process): the savepoint
        # keeps that transaction usable when another process inserted the row first.
        with self.db.write():
            try:
                with session.begin_nested():
                    row = model(**{field: value})
                    row.uid = new_uid(model._uid_length)
                    for name, val in extra.items():
                        setattr(row, name, val)
                    session.add(row)
                return int(row.id)
            except IntegrityError:  # another process created it first
                found = session.execute(select(model.id).where(column == value)).scalar_one()
                return int(found)

    def close(self) -> None:
        self.closed = True
        self.db.dispose()
