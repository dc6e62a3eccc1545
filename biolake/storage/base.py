"""The storage contract every backend (local folder, memory, S3) fulfils.

A storage holds immutable, content-addressed objects. ``put_file`` / ``put_folder`` stream the
source into the store while hashing it and place it under the key :func:`object_key` derives from
the hash and suffix; storing identical content again returns the same key without writing it
twice. Keys are relative POSIX strings (``".biolake/objects/ab/ab12…ef.csv"``), never local paths:
only :meth:`Storage.local_path` turns a key into a path on this machine.
"""

from __future__ import annotations

import os
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import BinaryIO, NamedTuple

from biolake.errors import StorageError, ValidationError
from biolake.storage.fingerprints import ObjectCheck, check_object
from biolake.storage.hashing import ALGORITHM, hash_hex, hash_path

__all__ = [
    "OBJECTS_PREFIX",
    "Storage",
    "StoredObject",
    "check_key",
    "check_suffix",
    "hash_of_key",
    "is_object_key",
    "object_key",
]

OBJECTS_PREFIX = ".biolake/objects"
# A suffix is what follows the name (".csv", ".csv.gz", ".ome.zarr", ".R" or nothing); it must
# not add path parts or control characters to the key.
_SUFFIX = re.compile(r"(\.[^/\\\x00-\x1f]{1,64})?")


class StoredObject(NamedTuple):  # not a frozen dataclass, which costs 0.7 ms to define
    """What a put stored: its key, content hash, total bytes, file count (folders only).

    ``fingerprint``: the object's cheap fingerprint (``biolake.storage.fingerprints``), None
    where the backend keeps none. ``existed``: the put found the key taken already, and kept
    what was there (or replaced a file of the wrong size); whether those bytes are intact, and
    which rows should get the new fingerprint, is for the caller to check.
    """

    key: str
    hash: str
    size: int
    n_files: int | None
    is_dir: bool
    fingerprint: str | None = None
    existed: bool = False


def object_key(hash_: str, suffix: str) -> str:
    """Return the content-addressed key of an object: ``.biolake/objects/<h[:2]>/<h><suffix>``."""
    hex_ = hash_hex(hash_)
    return f"{OBJECTS_PREFIX}/{hex_[:2]}/{hex_}{check_suffix(suffix)}"


def is_object_key(key: str, hash_: str) -> bool:
    """Whether ``key`` is where an object with ``hash_`` is stored (``object_key`` of the hash
    with some valid suffix): the only keys that deleting an artifact's bytes may remove."""
    try:
        prefix = object_key(hash_, "")
    except ValidationError:  # not a biolake hash: no key can hold it
        return False
    return key.startswith(prefix) and _SUFFIX.fullmatch(key[len(prefix) :]) is not None


def hash_of_key(key: str) -> str | None:
    """The content hash an object key names (``object_key``'s inverse), or None for a key no
    put would write (e.g. a file copied into the objects folder by hand)."""
    parts = key.split("/")
    prefix = OBJECTS_PREFIX.split("/")
    if len(parts) != len(prefix) + 2 or parts[: len(prefix)] != prefix:
        return None
    hash_ = f"{ALGORITHM}:{parts[-1][:64]}"
    return hash_ if is_object_key(key, hash_) else None


def check_suffix(suffix: str) -> str:
    """Return ``suffix`` if it can end a key (``""``, ``".csv"``, ``".ome.zarr"``)."""
    if not _SUFFIX.fullmatch(suffix):
        raise ValidationError(
            f"{suffix!r} is not a valid storage suffix: use '' or a '.' followed by up to 64 "
            "characters without '/', '\\' or control characters, e.g. '.csv' or '.ome.zarr'."
        )
    return suffix


def check_unchanged(src: str | os.PathLike[str], found: str, expected: str | None) -> None:
    """A repair stores the bytes it was asked to repair, or nothing: a source that changed
    since would replace another object than the one found damaged (outside its lock)."""
    if expected is not None and found != expected:
        raise StorageError(
            f"{str(src)!r} changed while it was being saved (its content no longer hashes to "
            f"{expected}): save it again once nothing writes to it."
        )


def check_key(key: str) -> str:
    """Return ``key`` if it is a relative POSIX key inside the storage; raise ValidationError."""
    parts = key.split("/")
    if not key or key.startswith("/") or "\\" in key or any(p in ("", ".", "..") for p in parts):
        raise ValidationError(
            f"{key!r} is not a storage key: keys are relative POSIX paths inside the storage "
            "without '.', '..' or empty parts, as returned in StoredObject.key."
        )
    return key


class Storage(ABC):
    """A place that holds immutable objects under string keys.

    Implementations must be safe to call from several threads at once.

    Example::

        stored = storage.put_file(Path("counts.csv"), ".csv")
        with storage.open(stored.key) as f:
            header = f.readline()
    """

    root: str

    @abstractmethod
    def put_file(self, src: Path, suffix: str = "") -> StoredObject:
        """Store the file ``src`` under its content key; no partial object is ever left behind."""

    @abstractmethod
    def put_folder(self, src: Path, suffix: str = "") -> StoredObject:
        """Store the folder ``src`` (every file under it) under its content key."""

    def put_many(
        self,
        sources: Sequence[tuple[str | os.PathLike[str], str]],
        on_done: Callable[[StoredObject], None] | None = None,
    ) -> list[StoredObject]:
        """Store many files or folders ``(path, suffix)``; results in input order.

        ``on_done`` gets each object once it is stored (for progress bars, and so that a caller
        whose batch fails can remove what the batch stored). Backends override this to batch
        their durability work.
        """
        from concurrent.futures import ThreadPoolExecutor

        def put(item: tuple[str | os.PathLike[str], str]) -> StoredObject:
            path, suffix = Path(item[0]), item[1]
            stored = self.put_folder(path, suffix) if path.is_dir() else self.put_file(path, suffix)
            if on_done is not None:
                on_done(stored)
            return stored

        # Hashing and copying release the GIL: two workers keep both cores busy.
        with ThreadPoolExecutor(max_workers=2) as pool:
            return list(pool.map(put, sources))

    def replace(self, src: Path, suffix: str, expected_hash: str) -> StoredObject:
        """Store ``src`` under its content key, replacing the damaged object stored there.

        Only for an object found to no longer match its hash, and under the lock that guards
        its key's bytes (a permanent delete may otherwise remove the repaired object). The
        source must still hash to ``expected_hash``, else StorageError and nothing changes."""
        put = self.put_folder if Path(src).is_dir() else self.put_file
        first = put(src, suffix)
        check_unchanged(src, first.hash, expected_hash)
        self.delete(first.key)
        again = put(src, suffix)
        check_unchanged(src, again.hash, expected_hash)
        return again

    def fingerprint(self, key: str) -> str | None:
        """The object's cheap fingerprint now (one ``stat`` for a file), or None for a backend
        whose objects cannot change in place; FileNotFoundError if it is missing."""
        self.size(key)  # raises FileNotFoundError for a missing object
        return None

    def check(self, key: str, hash_: str, recorded: str | None) -> ObjectCheck:
        """Whether the object ``key`` still holds the bytes of ``hash_``: one ``stat`` when its
        fingerprint is ``recorded``, else a full hash (``fingerprints.check_object``)."""
        return check_object(self, key, hash_, recorded)

    def rehash(self, key: str) -> str:
        """The hash of the bytes stored under ``key`` now, read in full. A stored folder that
        now holds what no saved folder may (a link, a FIFO) has no hash: the text returned
        says why, and matches no hash, so the object counts as damaged."""
        path = self.local_path(key)
        try:
            return hash_path(path)
        except ValidationError as exc:
            return f"unreadable: {exc}"

    @abstractmethod
    def open(self, key: str) -> BinaryIO:
        """Open the stored file ``key`` for streaming binary reads."""

    @abstractmethod
    def exists(self, key: str) -> bool:
        """Whether an object (file or folder) is stored under ``key``."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove the file or folder ``key``; a missing key is not an error."""

    @abstractmethod
    def local_path(self, key: str) -> Path:
        """A path on this machine holding the object's content; treat it as read-only."""

    @abstractmethod
    def size(self, key: str) -> int:
        """Total bytes of the object ``key`` (all files of a folder)."""

    @abstractmethod
    def iter_keys(self) -> Iterator[str]:
        """Every stored object's key, in no particular order (for audits and garbage collection)."""

    def stale_temp(self) -> list[tuple[str, int]]:
        """``(key, bytes)`` of what puts that never finished (killed processes) left behind,
        never an entry of a put still running. A backend without a temp area has none."""
        return []

    def remove_stale_temp(self) -> list[str]:
        """Remove the entries ``stale_temp`` lists (as of now); returns the removed keys."""
        return []
