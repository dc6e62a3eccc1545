"""An open instance: a storage root, its database and the current user."""

from __future__ import annotations

import getpass
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from biolake.db import Database
from biolake.errors import InstanceError, ValidationError

if TYPE_CHECKING:
    from biolake.registries.user import User
    from biolake.storage import Storage

META_DIR = ".biolake"
CONFIG_FILE = "instance.json"
SQLITE_FILE = "biolake.db"


def config_path(root: Path) -> Path:
    return root / META_DIR / CONFIG_FILE


def read_config(root: Path) -> dict[str, Any]:
    path = config_path(root)
    try:
        return json.loads(path.read_text())  # type: ignore[no-any-return]
    except json.JSONDecodeError as exc:
        raise InstanceError(
            f"The instance settings {path} are corrupt ({exc}). Restore the file from a backup, "
            "or move it away and run `biolake init` again on the same folder."
        ) from exc


def database_url(root: Path, config: dict[str, Any]) -> str:
    return config.get("db") or f"sqlite:///{root / META_DIR / SQLITE_FILE}"


def current_handle() -> str:
    """The user handle for this process: ``BIOLAKE_USER`` or the OS login."""
    handle = os.environ.get("BIOLAKE_USER") or getpass.getuser()
    if not handle.strip():
        raise ValidationError("BIOLAKE_USER is empty: set it to your user handle, e.g. 'alice'.")
    return handle.strip()


class Instance:
    """One biolake instance, open in this process. Several can be open at once."""

    def __init__(self, root: Path, config: dict[str, Any]) -> None:
        self.root = root
        self.name: str = config["name"]
        self.config = config
        self.db = Database(database_url(root, config))
        self.db.session.info["instance"] = self
        self._user_id: int | None = None
        self._storage: Storage | None = None

    def __repr__(self) -> str:
        return f"Instance(name={self.name!r}, root='{self.root}', db='{self.db.safe_url}')"

    @property
    def storage(self) -> Storage:
        if self._storage is None:
            from biolake.storage import storage_for

            self._storage = storage_for(str(self.root))
        return self._storage

    @property
    def user_id(self) -> int:
        """The id of the current user, created in this instance on first use."""
        if self._user_id is None:
            self._user_id = self._ensure_user(current_handle())
        return self._user_id

    @property
    def user(self) -> User:
        from biolake.registries.user import User

        user = self.db.session.get(User, self.user_id)
        self.db.end_read()
        assert user is not None
        return user

    def _ensure_user(self, handle: str) -> int:
        from biolake.registries.base import new_uid
        from biolake.registries.user import User

        session = self.db.session
        found = session.execute(select(User.id).where(User.handle == handle)).scalar()
        self.db.end_read()
        if found is not None:
            return int(found)
        try:
            with self.db.write():
                user = User(handle=handle)
                user.uid = new_uid(User._uid_length)
                session.add(user)
                session.flush()
                return user.id
        except IntegrityError:  # another process created it first
            found = session.execute(select(User.id).where(User.handle == handle)).scalar_one()
            self.db.end_read()
            return int(found)

    def close(self) -> None:
        self.db.dispose()
