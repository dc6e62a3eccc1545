"""Create, connect and choose instances (the machinery behind ``ln.setup``).

``init(storage=...)`` creates an instance (a storage folder plus a database) and connects it;
``connect(path_or_name)`` opens an existing one; ``current_instance()`` is the one in use. A process
picks its instance from ``BIOLAKE_INSTANCE=<storage root>`` when set, so subprocesses and array
jobs share one; with nothing configured, the first use creates a default instance in the user's
data folder (``BIOLAKE_HOME`` overrides that folder).

A failed ``init`` or ``connect`` leaves the process on no instance, even if another was current:
until a call succeeds (or ``close()``), every use raises an error naming the failed call, so that
nothing is saved to an instance the caller did not mean. Nothing half-made stays behind.

Example::

    import biolake as ln
    ln.setup.init(storage="./mydata")
    ln.settings.instance
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

from biolake.core.half_made import made_dirs, remove_half_made
from biolake.core.instance import META_DIR, Instance, config_path, read_config, sqlite_file
from biolake.core.log import logger
from biolake.core.read_only import asked_reason, folder_reason, role_reason, writable
from biolake.core.schema.migrate import ensure_schema
from biolake.errors import InstanceError, InstanceNotFound, ReadOnlyInstance, did_you_mean

_current: Instance | None = None
_failed: str | None = None  # the init or connect that failed, while no instance is current
# Open instances by root and whether read-only was asked: connect(read_only=True) never
# hands out the writable one, nor a plain connect the one opened read-only on request.
_open: dict[tuple[Path, bool], Instance] = {}
_lock = threading.RLock()


def home() -> Path:
    """Where biolake keeps the default instance and the index of instance names."""
    explicit = os.environ.get("BIOLAKE_HOME")
    if explicit:
        return Path(explicit).expanduser().resolve()
    import platformdirs

    return Path(platformdirs.user_data_dir("biolake"))


# --- init & connect ---------------------------------------------------------------------------


def init(
    storage: str | os.PathLike[str] = "./mydata", db: str | None = None, name: str | None = None
) -> Instance:
    """Create an instance at the ``storage`` folder and connect to it.

    ``db`` is None for a SQLite file inside ``<storage>/.biolake/``, or a ``postgresql://`` URL.
    Running ``init`` again on an existing instance with the same settings just connects, for
    writing (``connect(path, read_only=True)`` opens one to read).
    """
    with _lock:
        try:
            return _init(storage, db, name)
        except BaseException as exc:
            _fail(f"ln.setup.init(storage={str(storage)!r})", exc)
            raise


def _init(storage: str | os.PathLike[str], db: str | None, name: str | None) -> Instance:
    root = Path(storage).expanduser().resolve()
    if root.exists() and not root.is_dir():
        raise InstanceError(
            f"Cannot create an instance at {root}: it is a file. Pass a folder path "
            "(it is created if missing), e.g. ln.setup.init(storage='./mydata')."
        )
    if db is not None and not db.startswith(
        ("postgresql://", "postgres://", "postgresql+psycopg://")
    ):
        raise InstanceError(
            f"Unsupported db {db!r}: pass a postgresql://user@host:port/dbname URL, or leave "
            "db unset for SQLite inside the storage folder."
        )
    if config_path(root).exists():
        existing = read_config(root)
        if existing.get("db") != db or (name is not None and existing["name"] != name):
            raise InstanceError(
                f"{root} already holds the instance {existing['name']!r} "
                f"(db={existing.get('db') or 'sqlite'}): connect to it with "
                f"ln.setup.connect({str(root)!r}), or choose another folder."
            )
        return _connect_root(root, read_only=False)
    if name is not None:
        _check_name_free(name, root)
    instance = _create(root, db, name or root.name)
    logger.info(f"created instance {instance.name!r} at {root}")
    return instance


def _create(root: Path, db: str | None, name: str) -> Instance:
    config = {"name": name, "db": db}
    instance = _open_new(root, config)
    try:
        _register_name(name, root)
    except InstanceError:
        # A name taken by another instance: explicit names were checked up front, so this one
        # is the folder's name. The instance works; it is reached by its path instead.
        logger.info(
            f"the name {name!r} belongs to another instance: connect to this one by its path"
        )
    return instance


def _open_new(root: Path, config: dict[str, Any]) -> Instance:
    made = made_dirs(root / META_DIR)
    instance = Instance(root, config)
    try:
        if config["db"]:  # before any folder exists: a wrong URL leaves nothing behind
            instance.db.check_connection()
            _check_writable_role(instance, root)
            ensure_schema(instance.db, root / META_DIR / "migrate.lock")
        _make_meta_dir(root)
        if not config["db"]:
            ensure_schema(instance.db, root / META_DIR / "migrate.lock")
        _write_config(root, config)
    except BaseException:
        instance.close()
        remove_half_made(made, sqlite_file(root, config))
        raise
    return _set_current((root, False), instance)


def _make_meta_dir(root: Path) -> None:
    meta = root / META_DIR
    try:
        meta.mkdir(parents=True, exist_ok=True)
        problem = None if writable(meta) else "is not writable for this user"
    except OSError as exc:
        problem = f"cannot be created ({exc.strerror})"
    if problem is not None:
        raise InstanceError(
            f"Cannot create an instance at {root}: the folder is not writable ({meta} "
            f"{problem}). Choose a folder you can write, or ask its owner for write access; to "
            "read an instance that is there already, use ln.setup.connect(path, read_only=True)."
        )


def _check_writable_role(instance: Instance, root: Path) -> None:
    with instance.db.engine.connect() as conn:
        reason = role_reason(conn, instance.db.safe_url)
    if reason is not None:
        raise _not_for_writing(root, reason)


def _not_for_writing(root: Path, reason: str) -> ReadOnlyInstance:
    return ReadOnlyInstance(f"Cannot open the instance at {root} for writing: it is {reason}.")


def _write_config(root: Path, config: dict[str, Any]) -> None:
    # Write-then-rename: a concurrent reader never sees half a file.
    path = config_path(root)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(config, indent=2) + "\n")
    os.replace(tmp, path)


def connect(path_or_name: str | os.PathLike[str], read_only: bool | None = None) -> Instance:
    """Open an existing instance by storage folder or by name and make it current.

    ``read_only=True`` opens it for reading only; by default (None) it opens read-only when
    this user cannot write it (its folder, its SQLite file, its PostgreSQL role), and with
    ``read_only=False`` that raises ``ReadOnlyInstance`` instead.
    """
    with _lock:
        try:
            return _connect_root(_find_root(path_or_name), read_only)
        except BaseException as exc:
            _fail(f"ln.setup.connect({str(path_or_name)!r})", exc)
            raise


def _connect_root(root: Path, read_only: bool | None) -> Instance:
    with _lock:
        key = (root, bool(read_only))
        if key in _open:
            instance = _open[key]
            if read_only is False and instance.db.read_only_reason is not None:
                raise _not_for_writing(root, instance.db.read_only_reason)
            return _set_current(key, instance)
        return _set_current(key, _open_existing(root, read_config(root), read_only))


def _open_existing(root: Path, config: dict[str, Any], read_only: bool | None) -> Instance:
    db_file = sqlite_file(root, config)
    reason = asked_reason(root) if read_only else folder_reason(root / META_DIR, db_file)
    if reason is not None and read_only is False:
        raise _not_for_writing(root, reason)
    if reason is not None and db_file is not None and not db_file.exists():
        raise InstanceError(
            f"Cannot open the instance at {root} read-only: its database {db_file} is missing, "
            "and only an opener with write access creates it. Restore it from a backup."
        )
    instance = Instance(root, config, read_only_reason=reason)
    try:
        if db_file is None:
            instance.db.check_connection()
            if reason is None:
                with instance.db.engine.connect() as conn:
                    instance.db.read_only_reason = role_reason(conn, instance.db.safe_url)
            if read_only is False and instance.db.read_only_reason is not None:
                raise _not_for_writing(root, instance.db.read_only_reason)
        ensure_schema(instance.db, root / META_DIR / "migrate.lock", read_only=instance.read_only)
    except BaseException:
        instance.close()
        raise
    if instance.read_only and not read_only:
        logger.info(
            f"opened the instance {instance.name!r} read-only {instance.db.read_only_reason}"
        )
    return instance


def _find_root(path_or_name: str | os.PathLike[str]) -> Path:
    candidate = Path(path_or_name).expanduser()
    if config_path(candidate.resolve()).exists():
        return candidate.resolve()
    names = _read_names()
    if str(path_or_name) in names:
        root = Path(names[str(path_or_name)])
        if config_path(root).exists():
            return root
        raise InstanceNotFound(
            f"The instance {path_or_name!r} was registered at {root}, but no instance is there "
            "any more. Run ln.setup.init(storage=...) to create it again."
        )
    hint = did_you_mean(str(path_or_name), names)
    raise InstanceNotFound(
        f"No instance at {path_or_name!r}: it is neither a storage folder with an instance nor "
        f"a known instance name.{hint} Create one with "
        f"ln.setup.init(storage={str(path_or_name)!r})."
    )


def _set_current(key: tuple[Path, bool], instance: Instance) -> Instance:
    global _current, _failed
    with _lock:
        _open[key] = instance
        _current = instance
        _failed = None
    return instance


def _fail(call: str, exc: BaseException) -> None:
    """Leave the process on no instance after a failed ``call``: none, not the one current
    before nor the default, receives what the caller saves next."""
    global _current, _failed
    lines = str(exc).strip().splitlines()
    _current = None
    _failed = (
        f"{call} failed ({type(exc).__name__}: {lines[0].rstrip('.') if lines else 'no message'})"
    )


def failure() -> str | None:
    """The init or connect that failed last, while no instance is current since; or None."""
    return _failed


def close() -> None:
    """Close every open instance (the next use connects again) and forget a failed call."""
    global _current, _failed
    with _lock:
        for instance in _open.values():
            instance.close()
        _open.clear()
        _current = None
        _failed = None


# --- which instance is current ----------------------------------------------------------------


def connected() -> Instance | None:
    """The instance this process has connected to, or None (creates nothing, unlike
    ``current_instance``)."""
    return _current


def current_instance() -> Instance:
    """The current instance: connected, else ``BIOLAKE_INSTANCE``, else the default instance;
    after a failed init or connect, none (an error)."""
    if _current is not None:
        return _current
    with _lock:
        if _current is not None:
            return _current
        if _failed is not None:
            raise InstanceError(
                f"No instance is connected: {_failed}. Nothing is read or saved elsewhere "
                "meanwhile. Fix the cause and call it again, or connect to another instance "
                "(ln.setup.close() forgets the failed call)."
            )
        env = os.environ.get("BIOLAKE_INSTANCE")
        if env is not None:
            return _connect_env(env)
        default = home() / "default"
        if config_path(default).exists():
            return _connect_root(default, None)
        instance = _create(default, None, "default")
        logger.info(
            f"created the default instance at {default} "
            "(set BIOLAKE_INSTANCE or call ln.setup.init to use another)"
        )
        return instance


def _connect_env(value: str) -> Instance:
    root = Path(value).expanduser()
    if not value.strip() or (not root.is_absolute() and not root.exists()):
        raise InstanceError(
            f"BIOLAKE_INSTANCE={value!r} is not a storage folder path. Set it to the folder of an "
            "instance, e.g. BIOLAKE_INSTANCE=/data/lab, or unset it to use the default instance."
        )
    if not config_path(root.resolve()).exists():
        raise InstanceNotFound(
            f"BIOLAKE_INSTANCE={value!r}: no instance there. Create it first with "
            f"`biolake init --storage {value}`, or fix the path."
        )
    return _connect_root(root.resolve(), None)


# --- the instance index -----------------------------------------------------------------------


def _names_file() -> Path:
    return home() / "instances.json"


def _read_names() -> dict[str, str]:
    try:
        return json.loads(_names_file().read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def _check_name_free(name: str, root: Path) -> None:
    """A name points to one instance: refuse to take it from another that still exists."""
    other = _read_names().get(name)
    if other is not None and Path(other) != root and config_path(Path(other)).exists():
        raise InstanceError(
            f"The instance name {name!r} is taken by the instance at {other}. Choose another "
            f"name (--name / name=...), or connect to that one with "
            f"ln.setup.connect({name!r})."
        )


def _register_name(name: str, root: Path) -> None:
    from filelock import FileLock

    path = _names_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + ".lock"):
        _check_name_free(name, root)  # again under the lock: another process may have won
        names = _read_names()
        names[name] = str(root)
        tmp = path.with_name(f"instances.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(names, indent=2, sort_keys=True) + "\n")
        os.replace(tmp, path)
