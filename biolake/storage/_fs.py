"""Private filesystem helpers shared by the local backend and the memory backend's cache."""

from __future__ import annotations

import functools
import os
import shutil
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeAlias

from biolake.storage._direct import DIRECT_MIN_SIZE, open_direct
from biolake.storage.fingerprints import settle, settle_path
from biolake.storage.hashing import Digest, check_source_unchanged, copy_and_hash_file, hash_bytes

StrPath: TypeAlias = "str | os.PathLike[str]"
READ_ONLY_FILE = 0o444
READ_ONLY_DIR = 0o555
WRITABLE_DIR = 0o755


def fsync_dir(path: str | os.PathLike[str]) -> None:
    """Make a rename or new entry in ``path`` durable (POSIX needs the directory synced too)."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sync_filesystem(path: Path) -> None:
    """Flush every dirty page and pending metadata of the filesystem holding ``path``.

    One ``syncfs`` is one journal commit for a whole batch of files, where an fsync per file
    would be one each. Falls back to ``os.sync()`` where ``syncfs`` is missing.
    """
    syncfs = _libc_syncfs()
    if syncfs is None:
        os.sync()
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        if syncfs(fd) != 0:
            os.sync()
    finally:
        os.close(fd)


@functools.cache
def _libc_syncfs() -> Any:
    import ctypes

    try:
        return ctypes.CDLL(None, use_errno=True).syncfs  # the process's own libc (Linux)
    except (OSError, AttributeError):
        return None


def write_read_only_copy(
    src: StrPath,
    dst: Path,
    *,
    fsync: bool,
    size: int | None = None,
    opener: Callable[[str, int], int] | None = None,
) -> tuple[Digest, os.stat_result]:
    """Copy ``src`` to the new file ``dst`` while hashing it; ``dst`` ends up read-only, with
    its mtime settled (``fingerprints.settle``). Returns the digest and the copy's ``stat``.

    With ``fsync``, large files are written with O_DIRECT where possible (see ``_direct``).
    Without it, the page cache is faster: nothing waits for the disk. ``size`` (the expected
    size, if known) and ``opener`` (how to open ``src``) are those of a folder's member.
    """
    if size is None:
        size = os.stat(src).st_size
    direct = open_direct(dst) if fsync and size >= DIRECT_MIN_SIZE else None
    if direct is not None:
        with direct:
            digest = copy_and_hash_file(src, direct, opener=opener)
            direct.fsync()
        os.chmod(dst, READ_ONLY_FILE)
        return digest, settle_path(dst)  # the mtime lives in the inode: no fsync needed
    # Created read-only from the start (the open descriptor may still write): saves a chmod
    # per file, which counts when saving thousands of small files.
    fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, READ_ONLY_FILE)
    with open(fd, "wb", buffering=0) as f:
        digest = copy_and_hash_file(src, f, opener=opener)
        st = settle(f.fileno())
        if fsync:
            os.fsync(f.fileno())
    return digest, st  # a umask can only remove bits: the copy is read-only either way


def copy_small_file(src: str, dst: str) -> tuple[Digest, os.stat_result]:
    """``write_read_only_copy`` for a file that fits in memory (the bulk path: thousands of
    small files), with the fewest syscalls: one read, one write, hashing the bytes in memory.

    Raises StorageError when the file changes while it is read, like ``copy_and_hash_file``.
    """
    fd = os.open(src, os.O_RDONLY | os.O_CLOEXEC)
    try:
        before = os.fstat(fd)
        chunks = [os.read(fd, before.st_size + 1)]  # +1: a file that grew shows it here
        while chunks[-1] and sum(map(len, chunks)) < before.st_size:  # short reads (NFS, FUSE)
            chunks.append(os.read(fd, before.st_size + 1))
        after = os.fstat(fd)
    finally:
        os.close(fd)
    data = b"".join(chunks) if len(chunks) > 1 else chunks[0]
    check_source_unchanged(src, before, after, len(data))
    out = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, READ_ONLY_FILE)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(out, view) :]
        st = settle(out)
    finally:
        os.close(out)
    return Digest(hash_bytes(data), len(data)), st


def set_dirs_mode(root: Path, mode: int) -> None:
    """Set ``mode`` on ``root`` and every directory below it (files keep theirs)."""
    # Top-down so that a read-only directory becomes listable/writable before we descend.
    os.chmod(root, mode)
    for dirpath, dirnames, _ in os.walk(root):
        for name in dirnames:
            os.chmod(os.path.join(dirpath, name), mode)


def fsync_tree_dirs(root: Path) -> None:
    """fsync every directory of a freshly written tree, deepest first."""
    for dirpath, _, _ in os.walk(root, topdown=False):
        fsync_dir(Path(dirpath))


def remove_tree(root: Path) -> None:
    """Delete a file or a tree that may contain read-only directories; a missing one is fine."""
    try:
        if not stat.S_ISDIR(os.lstat(root).st_mode):
            root.unlink()
            return
        set_dirs_mode(root, WRITABLE_DIR)
        shutil.rmtree(root)
    except FileNotFoundError:
        return


def tree_size(root: Path) -> int:
    """Total bytes of the regular files under ``root``."""
    total = 0
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            st = os.lstat(os.path.join(dirpath, name))
            if stat.S_ISREG(st.st_mode):
                total += st.st_size
    return total
