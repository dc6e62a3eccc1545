"""Which temp entries belong to a process that is still running.

A save writes its bytes under a temp name first (``<root>/.biolake/tmp/``); a process killed
mid-save leaves that entry behind. To tell a dead save's entry from a running one, each process
that writes temp entries holds an exclusive ``flock`` on a lock file of its own,
``<root>/.biolake/tmp-locks/<token>.lock``, for as long as it lives, and names its entries
``<token>-<random>.part``. The kernel releases the lock when the process ends, however it ends
(SIGKILL, a crash, a lost node's NFS lease): an entry whose owner's lock can be taken, or whose
lock file is gone, belongs to nobody and may be removed.

The lock file is locked before it gets its final name (it is created as ``<token>.new``), and
a process writes no entry before that, so no entry of a live process is ever seen without its
locked lock file. ``flock`` (not ``fcntl``'s POSIX locks, which a process never conflicts with)
conflicts between two descriptors of one process too, so one process's sweep leaves another
storage object's entries in that same process alone. Entries without a token (written before
this scheme) fall back to their age: older than a day counts as dead.

Example::

    owner = TempOwner(Path("mydata/.biolake/tmp-locks"))
    temp = tmp_dir / f"{owner.prefix}{uuid.uuid4().hex}.part"
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import time
import uuid
import weakref
from collections.abc import Iterator
from pathlib import Path

__all__ = ["STALE_AFTER", "TempOwner", "dead_owners", "is_old", "lock_tokens", "owner_of"]

STALE_AFTER = 24 * 3600  # seconds: an entry without an owner token this old is a dead save's
_TOKEN = re.compile(r"^([0-9a-f]{32})-")
_LOCK_FILE = re.compile(r"^([0-9a-f]{32})\.lock$")


class TempOwner:
    """This process's claim on the temp entries it writes: a held lock and the names' prefix."""

    def __init__(self, locks_dir: Path) -> None:
        locks_dir.mkdir(parents=True, exist_ok=True)
        self.token = uuid.uuid4().hex
        self.prefix = f"{self.token}-"
        pending = locks_dir / f"{self.token}.new"
        fd = os.open(pending, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        # Held until this object goes away (closing the descriptor), or the process ends.
        weakref.finalize(self, os.close, fd)
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.replace(pending, locks_dir / f"{self.token}.lock")


def owner_of(name: str) -> str | None:
    """The owner token a temp entry's name starts with, or None (an entry from before tokens)."""
    match = _TOKEN.match(name)
    return match.group(1) if match else None


@contextlib.contextmanager
def dead_owners(locks_dir: Path, tokens: set[str], *, remove: bool) -> Iterator[set[str]]:
    """The tokens among ``tokens`` whose process has ended, their locks held until the block
    ends (a token never comes back, so holding them only keeps two sweeps apart). With
    ``remove``, the lock files of dead owners go at the end, after the block removed their
    entries."""
    held: dict[str, int] = {}
    dead: set[str] = set()
    try:
        for token in sorted(tokens):
            try:
                fd = os.open(locks_dir / f"{token}.lock", os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:  # a live owner's lock file always exists
                dead.add(token)
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:  # held: the owner runs (or another sweep holds it)
                os.close(fd)
                continue
            held[token] = fd
            dead.add(token)
        yield dead
        for token in held if remove else ():
            (locks_dir / f"{token}.lock").unlink(missing_ok=True)
    finally:
        for fd in held.values():
            os.close(fd)


def lock_tokens(locks_dir: Path) -> set[str]:
    """The tokens of every lock file in ``locks_dir``, live or not (``.new`` ones excluded)."""
    try:
        names = os.listdir(locks_dir)
    except FileNotFoundError:
        return set()
    return {m.group(1) for m in map(_LOCK_FILE.match, names) if m}


def is_old(path: str | os.PathLike[str]) -> bool:
    """Whether an entry without a token is old enough to be a dead save's (see STALE_AFTER)."""
    try:
        return os.lstat(path).st_mtime < time.time() - STALE_AFTER
    except FileNotFoundError:  # published or removed meanwhile: not ours to remove
        return False
