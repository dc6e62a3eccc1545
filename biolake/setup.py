"""``ln.setup``: create, connect and choose instances; ``ln.settings``: what is current.

``init(storage=...)`` creates an instance (a storage folder plus a database) and connects it;
``connect(path_or_name)`` opens an existing one; ``close()`` closes every open instance. The
machinery lives in ``biolake.core.connect``; this public module sits above the registries
because ``settings.user`` returns the current ``User`` row.

Example::

    import biolake as ln
    ln.setup.init(storage="./mydata")
    ln.settings.instance
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from biolake.core import connect as _connect
from biolake.core.connect import close, connected, current_instance, home, init
from biolake.core.instance import Instance, current_handle
from biolake.core.log import logger

if TYPE_CHECKING:
    from biolake.registries.user import User

__all__ = ["Settings", "close", "connect", "current_instance", "home", "init", "settings"]


def connect(path_or_name: str | os.PathLike[str], read_only: bool | None = None) -> Instance:
    """Open an existing instance by storage folder or by name and make it current. Runs
    left ``started`` by processes that are gone are marked ``crashed`` on the way (see
    ``ln.Run.mark_crashed``). Example: ``ln.setup.connect("./lab-data")``

    ``read_only=True`` opens it to read only: queries, ``load()`` and ``cache()`` work, every
    write raises ``ln.errors.ReadOnlyInstance``. By default an instance this user cannot write
    (its folder, its SQLite file or its PostgreSQL role) opens read-only by itself, and
    ``read_only=False`` raises instead. Example: ``ln.setup.connect("/data/lab", read_only=True)``

    A failed connect leaves the process on no instance: every use raises until a connect
    or init succeeds, so nothing goes to the instance that was current before.
    """
    instance = _connect.connect(path_or_name, read_only=read_only)
    if instance.read_only:  # marking crashed runs would be a write
        return instance
    from biolake.registries.run import Run

    try:
        Run.mark_crashed()
    except Exception as exc:  # a read-only user, say: connecting still works
        logger.warning(f"could not check for crashed runs: {exc!r}")
    return instance


class Settings:
    """What is current: ``ln.settings.instance``, ``.storage``, ``.user`` (on a read-only
    instance where this user has no row yet, an unsaved ``User``)."""

    @property
    def instance(self) -> Instance:
        return current_instance()

    @property
    def storage(self) -> Path:
        return current_instance().root

    @property
    def user(self) -> User:
        # Here, not at the top: `ln.setup.init(...)` alone loads no registry (half its time).
        from biolake.registries.user import User, current_user_id

        instance = current_instance()
        if instance.read_only:  # the row is created on first use, which reading cannot do
            handle = current_handle()
            stored = User.objects(instance).filter(handle=handle).first()
            return stored if stored is not None else User(handle=handle)
        user = instance.db.session.get(User, current_user_id(instance))
        instance.db.end_read()
        assert user is not None
        return user

    def __repr__(self) -> str:
        inst = connected()
        if inst is None:
            failed = _connect.failure()
            return (
                f"Settings(no instance: {failed})"
                if failed
                else "Settings(no instance connected yet)"
            )
        return f"Settings(instance={inst.name!r}, storage='{inst.root}', db='{inst.db.safe_url}')"


settings = Settings()
