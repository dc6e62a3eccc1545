"""Private filesystem helpers shared by the local backend and the memory backend's cache."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

from biolake.hashing import Digest, copy_and_hash_file

READ_ONLY_FILE = 0o444
READ_ONLY_DIR = 0o555
WRITABLE_DIR = 0o755


def fsync_dir(path: Path) -> None:
    """Make a rename or new entry in ``path`` durable (POSIX needs the directory synced too)."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_read_only_copy(src: Path, dst: Path, *, fsync: bool) -> Digest:
    """Copy ``src`` to the new file ``dst`` while hashing it; ``dst`` ends up read-only."""
    with open(dst, "xb", buffering=0) as f:
        digest = copy_and_hash_file(src, f)
        if fsync:
            os.fsync(f.fileno())
    os.chmod(dst, READ_ONLY_FILE)
    return digest


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
