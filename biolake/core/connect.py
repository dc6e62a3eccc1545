"""Create, connect and choose instances (the machinery behind ``ln.setup``).

``init(storage=...)`` creates an instance (a storage folder plus a database) and connects it;
``connect(path_or_name)`` opens an existing one; ``current_instance()`` is the one in use. A process
picks its instance from ``BIOLAKE_INSTANCE=<storage root>`` when set, so subprocesses and array
jobs share one; with nothing configured, the first use creates a default instance in the user's
data folder (``BIOLAKE_HOME`` overrides that folder).

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

from biolake.core.instance import META_DIR, Instance, config_path, read_config
from biolake.core.log import logger
from biolake.core.schema.migrate import ensure_schema
from biolake.errors import InstanceError, InstanceNotFound, did_you_mean

_current: Instance | None = None
_open: dict[Path, Instance] = {}
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
    Running ``init`` again on an existing instance with the same settings just connects.
    """
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
        return connect(root)
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
    (root / META_DIR).mkdir(parents=True, exist_ok=True)
    instance = Instance(root, config)
    try:
        if config["db"]:
            instance.db.check_connection()
        ensure_schema(instance.db, root / META_DIR / "migrate.lock")
    except BaseException:
        instance.close()
        raise
    _write_config(root, config)
    return _set_current(root, instance)


def _write_config(root: Path, config: dict[str, Any]) -> None:
    # Write-then-rename: a concurrent reader never sees half a file.
    path = config_path(root)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(config, indent=2) + "\n")
    os.replace(tmp, path)


def connect(path_or_name: str | os.PathLike[str]) -> Instance:
    """Open an existing instance by storage folder or by name and make it current."""
    root = _find_root(path_or_name)
    with _lock:
        if root in _open:
            return _set_current(root, _open[root])
        config = read_config(root)
        instance = Instance(root, config)
        try:
            if config.get("db"):
                instance.db.check_connection()
            ensure_schema(instance.db, root / META_DIR / "migrate.lock")
        except BaseException:
            instance.close()
            raise
        return _set_current(root, instance)


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


def _set_current(root: Path, instance: Instance) -> Instance:
    global _current
    with _lock:
        _open[root] = instance
        _current = instance
    return instance


def close() -> None:
    """Close every open instance (the next use connects again)."""
    global _current
    with _lock:
        for instance in _open.values():
            instance.close()
        _open.clear()
        _current = None


# --- which instance is current ----------------------------------------------------------------


def connected() -> Instance | None:
    """The instance this process has connected to, or None (creates nothing, unlike
    ``current_instance``)."""
    return _current


def current_instance() -> Instance:
    """The current instance: connected, else ``BIOLAKE_INSTANCE``, else the default instance."""
    if _current is not None:
        return _current
    with _lock:
        if _current is not None:
            return _current
        env = os.environ.get("BIOLAKE_INSTANCE")
        if env is not None:
            return _connect_env(env)
        default = home() / "default"
        if config_path(default).exists():
            return connect(default)
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
    return connect(root)


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
