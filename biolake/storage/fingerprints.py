"""Cheap fingerprints of stored objects, so that a read notices bytes changed in place.

A hash covers every byte but costs a full read; a fingerprint costs one ``stat``, as git's
index does. It changes whenever a program writes the object, truncates it or puts another file
in its place:

- a file: ``f:<size>:<mtime_ns>:<inode>``;
- a folder: ``d:<files>:<bytes>:<newest mtime_ns>:<digest>``, where the digest is BLAKE3 over
  every member's relative path, size, mtime and inode: one ``stat`` per member, since an edit
  of a member changes only that member (the folder's own mtime notices added or removed names
  only).

The ctime is left out: linking a new object into place and removing its temp name change it.

Writes within one tick of the clock that last set the mtime would keep it (a write made
right after a save, in the same few milliseconds, would go unseen). So a new object's mtime is
*settled* to a whole even second ten seconds back (:func:`settle`): every later write sets the
current time, which differs. A fingerprint whose mtime is recent (:func:`is_recent`, a file
that was touched or edited just now) is never recorded as good; the next read hashes again.

What a fingerprint cannot see: an edit that restores the mtime afterwards (``touch -d``,
``rsync -t``, ``cp -p``) with the same size and inode. Only a full hash finds those.

Example::

    check = check_object(storage, key, artifact_hash, recorded_fingerprint)
    if not check.intact:
        ...  # the object's bytes are no longer those of its hash
"""

from __future__ import annotations

import os
import stat
import time
from typing import TYPE_CHECKING, NamedTuple

import blake3

if TYPE_CHECKING:
    from biolake.storage.base import Storage

__all__ = [
    "ObjectCheck",
    "check_object",
    "file_fingerprint",
    "fingerprint_of",
    "folder_fingerprint",
    "is_recent",
    "settle",
    "settle_path",
]

# Older than this, an mtime cannot share a clock tick with a later write (coarse kernel clocks
# tick every few ms; FAT and some network filesystems keep 1-2 s).
RECENT_NS = 3 * 10**9


def file_fingerprint(st: os.stat_result) -> str:
    """The fingerprint of a file from its ``stat``: ``f:<size>:<mtime_ns>:<inode>``."""
    return f"f:{st.st_size}:{st.st_mtime_ns}:{st.st_ino}"


def folder_fingerprint(root: str | os.PathLike[str]) -> str:
    """The fingerprint of a stored folder: one ``lstat`` of each member, combined."""
    digest = blake3.blake3()
    files = size = newest = 0
    for relpath, st in sorted(_members(os.fspath(root), "")):
        digest.update(f"{relpath}\0{st.st_size}:{st.st_mtime_ns}:{st.st_ino}\0".encode())
        files, size, newest = files + 1, size + st.st_size, max(newest, st.st_mtime_ns)
    return f"d:{files}:{size}:{newest}:{digest.hexdigest()[:32]}"


def _members(folder: str, prefix: str) -> list[tuple[str, os.stat_result]]:
    found = []
    with os.scandir(folder) as entries:
        for entry in entries:
            st = entry.stat(follow_symlinks=False)
            if stat.S_ISDIR(st.st_mode):
                found += _members(entry.path, f"{prefix}{entry.name}/")
            else:  # files, and anything else someone put there: it changes the fingerprint
                found.append((prefix + entry.name, st))
    return found


def fingerprint_of(path: str | os.PathLike[str]) -> str:
    """The fingerprint of the file or folder at ``path``; FileNotFoundError if it is gone."""
    st = os.stat(path)
    return folder_fingerprint(path) if stat.S_ISDIR(st.st_mode) else file_fingerprint(st)


def settle(fd: int) -> os.stat_result:
    """Set the mtime of the new file open at ``fd`` to a whole even second ten seconds back and
    return its ``stat``: any later write moves the mtime (see the module docstring). Even
    seconds, further back than ``RECENT_NS``: kept exactly by filesystems of 2 s resolution."""
    now = time.time_ns()
    settled = (now // 2_000_000_000 - 5) * 2_000_000_000
    os.utime(fd, ns=(now, settled))  # the access time of a file just written: now
    return os.fstat(fd)


def is_recent(fingerprint: str, now_ns: int | None = None) -> bool:
    """Whether the (newest) mtime in ``fingerprint`` is so recent that a write in the same clock
    tick could still follow unseen: such a fingerprint is not recorded as good."""
    mtime = int(fingerprint.split(":")[3 if fingerprint.startswith("d:") else 2])
    return (time.time_ns() if now_ns is None else now_ns) - mtime < RECENT_NS


class ObjectCheck(NamedTuple):
    """What :func:`check_object` found.

    ``intact``: the object's bytes still hash to its hash. ``fingerprint``: the fingerprint to
    record for it now (None: nothing new to record). ``found_hash``: the hash of what is stored,
    when it was hashed.
    """

    intact: bool
    fingerprint: str | None
    found_hash: str | None


def check_object(storage: Storage, key: str, hash_: str, recorded: str | None) -> ObjectCheck:
    """Does the object ``key`` still hold the bytes of ``hash_``? One ``stat`` when its
    fingerprint is ``recorded``; otherwise it is hashed again.

    Raises FileNotFoundError when the object is missing. A backend that keeps no fingerprints
    (``Storage.fingerprint`` returns None, e.g. memory) is taken as intact.
    """
    now = storage.fingerprint(key)
    if now is None or now == recorded:
        return ObjectCheck(True, None, None)
    found = storage.rehash(key)
    after = storage.fingerprint(key)
    if found != hash_:
        return ObjectCheck(False, None, found)
    # Record it only if it stood still while it was hashed, and no write can follow unseen.
    settled = after == now and after is not None and not is_recent(after)
    return ObjectCheck(True, after if settled else None, found)


def settle_path(path: str | os.PathLike[str]) -> os.stat_result:
    """:func:`settle` for a file given by its path (written through a descriptor now closed)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        return settle(fd)
    finally:
        os.close(fd)
