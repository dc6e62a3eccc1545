"""An in-memory storage: the test double of the storage contract (like httpx's MockTransport).

Objects are bytes in a dict (a folder is a dict of relative path -> bytes). ``local_path``
materialises an object, read-only, into a private temporary folder that is removed when the
storage is garbage collected. ``MemoryStorage.shared(name)`` returns one storage per name in
this process, so two instances opened at ``memory://name`` see the same objects, as they would
on a shared bucket.
"""

from __future__ import annotations

import errno
import io
import tempfile
import threading
import uuid
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO, ClassVar

from biolake.storage._fs import READ_ONLY_DIR, READ_ONLY_FILE, remove_tree, set_dirs_mode
from biolake.storage.base import Storage, StoredObject, check_key, check_suffix, object_key
from biolake.storage.folders import open_folder
from biolake.storage.hashing import FolderHasher, copy_and_hash_file

__all__ = ["MemoryStorage"]

_Object = bytes | dict[str, bytes]


def _read(src: str | Path, opener: Callable[[str, int], int] | None = None) -> tuple[bytes, str]:
    buffer = io.BytesIO()
    digest = copy_and_hash_file(src, buffer, opener=opener)
    return buffer.getvalue(), digest.hash


class MemoryStorage(Storage):
    """Objects held in this process's memory; for tests and examples.

    Example::

        storage = MemoryStorage()
        stored = storage.put_file(Path("counts.csv"), ".csv")
        storage.open(stored.key).read()
    """

    _shared: ClassVar[dict[str, MemoryStorage]] = {}
    _shared_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, name: str | None = None) -> None:
        self.name = name or uuid.uuid4().hex
        self.root = f"memory://{self.name}"
        self._objects: dict[str, _Object] = {}
        self._lock = threading.Lock()
        self._cache: Path | None = None

    def _cache_dir(self) -> Path:
        with self._lock:
            if self._cache is None:
                self._cache = Path(tempfile.mkdtemp(prefix="biolake-memory-"))
                weakref.finalize(self, remove_tree, self._cache)
            return self._cache

    def __repr__(self) -> str:
        return f"MemoryStorage({self.name!r})"

    @classmethod
    def shared(cls, name: str) -> MemoryStorage:
        """Return this process's storage named ``name``, creating it on first use."""
        with cls._shared_lock:
            if name not in cls._shared:
                cls._shared[name] = cls(name)
            return cls._shared[name]

    def _store(self, key: str, obj: _Object) -> bool:
        """Store ``obj`` unless ``key`` is taken (objects are never replaced); True if taken."""
        with self._lock:
            existed = key in self._objects
            self._objects.setdefault(key, obj)
        return existed

    def _get(self, key: str) -> _Object:
        with self._lock:
            obj = self._objects.get(check_key(key))
        if obj is None:
            raise FileNotFoundError(errno.ENOENT, f"No object stored in {self.root}", key)
        return obj

    def put_file(self, src: Path, suffix: str = "") -> StoredObject:
        check_suffix(suffix)
        if Path(src).is_dir():
            raise IsADirectoryError(f"{str(src)!r} is a folder: store it with put_folder().")
        data, hash_ = _read(src)
        key = object_key(hash_, suffix)
        existed = self._store(key, data)
        return StoredObject(key, hash_, len(data), None, False, existed=existed)

    def put_folder(self, src: Path, suffix: str = "") -> StoredObject:
        check_suffix(suffix)
        hasher = FolderHasher()
        files: dict[str, bytes] = {}
        with open_folder(src) as folder:
            for member in folder.members:
                data, hash_ = _read(folder.path(member), folder.opener(member))
                files[member.relpath] = data
                hasher.add(member.relpath, len(data), hash_)
        key = object_key(hasher.hash(), suffix)
        existed = self._store(key, files)
        return StoredObject(key, hasher.hash(), hasher.size, hasher.n_files, True, existed=existed)

    def open(self, key: str) -> BinaryIO:
        obj = self._get(key)
        if isinstance(obj, dict):
            raise IsADirectoryError(f"{key!r} is a folder: use local_path() to read its files.")
        return io.BytesIO(obj)

    def exists(self, key: str) -> bool:
        with self._lock:
            return check_key(key) in self._objects

    def delete(self, key: str) -> None:
        with self._lock:
            self._objects.pop(check_key(key), None)

    def size(self, key: str) -> int:
        obj = self._get(key)
        return sum(map(len, obj.values())) if isinstance(obj, dict) else len(obj)

    def iter_keys(self) -> Iterator[str]:
        with self._lock:
            keys = list(self._objects)
        return iter(keys)

    def local_path(self, key: str) -> Path:
        obj = self._get(key)
        cache = self._cache_dir()
        path = cache / key
        if path.exists():  # keys are content addresses, so a cached copy is never stale
            return path
        tmp = cache / f"{uuid.uuid4().hex}.part"
        _materialise(obj, tmp)
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            tmp.rename(path)
        except OSError:  # another thread materialised the same folder first
            remove_tree(tmp)
            if not path.exists():
                raise
        if path.is_dir():  # read-only only after the rename: moving a folder needs write access
            set_dirs_mode(path, READ_ONLY_DIR)
        return path


def _materialise(obj: _Object, dst: Path) -> None:
    if isinstance(obj, bytes):
        dst.write_bytes(obj)
        dst.chmod(READ_ONLY_FILE)
        return
    dst.mkdir()
    for relpath, data in obj.items():
        target = dst / relpath
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        target.chmod(READ_ONLY_FILE)
