"""Storage in a local (or mounted) folder.

Objects live under ``<root>/.biolake/objects/``; each put first writes under a unique name in
``<root>/.biolake/tmp/`` on the same filesystem (named after a lock the writing process holds,
see ``temp_owners``, so that what a killed save left there can be told apart and removed),
fsyncs, makes the copy read-only and only then gives it its final name in one atomic step.
Files are published with ``link()``, which refuses to replace an existing object, so identical
content is stored once and nothing intact is ever overwritten. Folders are published with
``rename()`` and their directories made read-only too.

Each new file's mtime is settled ten seconds back and its fingerprint (size, mtime, inode; see
``fingerprints``) returned with the put, from the ``stat`` the copy ends with. A put that finds
its key taken by a file of another size replaces that damaged file with its fresh copy;
``replace()`` does so for damage only a hash shows, when the caller has found it.

Read-only views were considered for ``local_path``: a hard link shares the inode (an edit
through it is an edit of the object), a copy costs the object's size, and reflinks
(``FICLONE``) or read-only bind mounts exist on some filesystems only (not ext4) or need root.
So ``local_path`` hands out the object itself, and readers compare its fingerprint first.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, BinaryIO, TypeAlias

from biolake.errors import StorageError
from biolake.storage._both_cores import run_on_both_cores
from biolake.storage._direct import DIRECT_MIN_SIZE
from biolake.storage._fs import (
    READ_ONLY_DIR,
    WRITABLE_DIR,
    copy_small_file,
    fsync_dir,
    fsync_tree_dirs,
    remove_tree,
    set_dirs_mode,
    sync_filesystem,
    tree_size,
    write_read_only_copy,
)
from biolake.storage.base import (
    OBJECTS_PREFIX,
    Storage,
    StoredObject,
    check_key,
    check_suffix,
    check_unchanged,
    object_key,
)
from biolake.storage.fingerprints import file_fingerprint, fingerprint_of, folder_fingerprint
from biolake.storage.folders import open_folder
from biolake.storage.hashing import Digest, FolderHasher
from biolake.storage.temp_owners import TempOwner, dead_owners, is_old, lock_tokens, owner_of

__all__ = ["LocalStorage"]

TMP_DIR = ".biolake/tmp"
LOCKS_DIR = ".biolake/tmp-locks"  # one lock file per process writing temp entries
StrPath: TypeAlias = "str | os.PathLike[str]"
# Filesystems without hard links answer link() with one of these; we fall back to rename().
_NO_HARD_LINKS = {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK}


class LocalStorage(Storage):
    """Content-addressed objects in the folder ``root``. Safe to use from several threads.

    ``fsync=False`` skips fsync calls: faster, but a power cut may lose recently stored bytes.
    Use it only for scratch instances.

    Example::

        storage = LocalStorage(Path("./mydata"))
        stored = storage.put_file(Path("counts.csv"), ".csv")
        storage.local_path(stored.key)  # the read-only stored file itself
    """

    def __init__(self, root: str | os.PathLike[str], *, fsync: bool = True) -> None:
        self.path = Path(root).expanduser().absolute()
        self.root = str(self.path)
        self.fsync = fsync
        self._tmp_ready = False
        self._tmp_lock = threading.Lock()
        self._owner: TempOwner | None = None

    def __repr__(self) -> str:
        return f"LocalStorage({self.root!r})"

    def _tmp_dir(self) -> Path:
        tmp_dir = self.path / TMP_DIR
        if not self._tmp_ready:  # once per process: one syscall less per stored file
            with self._tmp_lock:
                if not self._tmp_ready:
                    tmp_dir.mkdir(parents=True, exist_ok=True)
                    self._owner = TempOwner(self.path / LOCKS_DIR)  # before any entry
                    self.remove_stale_temp()
                    self._make_all_shards()
                    self._tmp_ready = True
        return tmp_dir

    def _tmp_name(self) -> str:
        assert self._owner is not None  # set by _tmp_dir(), called first
        return f"{self._owner.prefix}{uuid.uuid4().hex}.part"

    def _make_all_shards(self) -> None:
        """Create the 256 shard folders up front, with one fsync: made on demand, a new
        instance's first few hundred saves each paid an extra fsync of the objects folder.
        (``_publish_file`` still makes a shard that went missing.)"""
        objects = f"{self.root}/{OBJECTS_PREFIX}"
        os.makedirs(objects, exist_ok=True)
        missing = set(SHARDS).difference(os.listdir(objects))
        for shard in missing:
            with contextlib.suppress(FileExistsError):  # another process is making it too
                os.mkdir(f"{objects}/{shard}")
        if missing and self.fsync:
            fsync_dir(objects)

    def _tmp_path(self) -> Path:
        tmp_dir = self._tmp_dir()
        return tmp_dir / self._tmp_name()

    def _path(self, key: str) -> Path:
        return self.path / check_key(key)

    def put_file(self, src: Path, suffix: str = "") -> StoredObject:
        src = Path(src)
        check_suffix(suffix)
        if src.is_dir():
            raise IsADirectoryError(f"{str(src)!r} is a folder: store it with put_folder().")
        tmp = self._tmp_path()
        try:
            digest, copied = write_read_only_copy(src, tmp, fsync=self.fsync)
            key = object_key(digest.hash, suffix)
            found = self._publish_file(tmp, self.path / key, digest.size)
        finally:
            tmp.unlink(missing_ok=True)
        return _stored_file(key, digest, copied, found)

    def _make_shard(self, shard: StrPath, sync: bool = True) -> None:
        try:
            os.makedirs(shard)
        except FileExistsError:
            return
        if self.fsync and sync:
            fsync_dir(os.path.dirname(shard))  # the new shard's own entry must survive a crash

    def put_many(
        self,
        sources: Sequence[tuple[StrPath, str]],
        on_done: Callable[[StoredObject], None] | None = None,
    ) -> list[StoredObject]:
        """Like ``put_file`` for each small file, but with filesystem syncs for the whole batch
        instead of two fsyncs per file (each fsync is a journal commit: ~0.2-4 ms here), and
        large batches split over both cores (``_both_cores``).

        Copies go to temp names without fsync, then one ``syncfs`` makes them durable, then they
        are linked into place, then a final ``syncfs`` makes the new names durable. Folders and
        large files (written with O_DIRECT) go through the single-object path.
        """
        small: list[int] = []
        others: list[int] = []
        for i, (path, _) in enumerate(sources):
            st = os.stat(path)  # one stat: regular file, and small enough
            is_small = stat.S_ISREG(st.st_mode) and st.st_size < DIRECT_MIN_SIZE
            (small if is_small else others).append(i)
        if not self.fsync or len(small) < 2:
            return super().put_many(sources, on_done)
        for _, suffix in sources:
            check_suffix(suffix)
        stored_others = super().put_many([sources[i] for i in others], on_done)
        results: dict[int, StoredObject] = dict(zip(others, stored_others, strict=True))

        def put_small(part: Sequence[int], done: dict[int, StoredObject], report: Any) -> None:
            self._put_small(sources, part, done, report)

        run_on_both_cores(small, put_small, results, on_done)
        sync_filesystem(self.path)
        return [results[i] for i in range(len(sources))]

    def _put_small(
        self,
        sources: Sequence[tuple[StrPath, str]],
        part: Sequence[int],
        done: dict[int, StoredObject],
        on_done: Callable[[StoredObject], None] | None,
    ) -> None:
        """Copy and hash ``part`` to temp files, sync once, then link each into place.

        Paths are plain strings here: pathlib's parsing was a fifth of the time per file.
        """
        tmp_dir = os.fspath(self._tmp_dir())
        tmps = {i: f"{tmp_dir}/{self._tmp_name()}" for i in part}
        try:
            copies = {i: copy_small_file(os.fspath(sources[i][0]), tmps[i]) for i in part}
            sync_filesystem(self.path)
            for i in part:
                digest, copied = copies[i]
                key = object_key(digest.hash, sources[i][1])
                found = self._publish_file(tmps[i], f"{self.root}/{key}", digest.size, sync=False)
                done[i] = _stored_file(key, digest, copied, found)
                if on_done is not None:
                    on_done(done[i])
        finally:
            for tmp in tmps.values():
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)

    def _publish_file(
        self, tmp: StrPath, final: StrPath, size: int, sync: bool = True
    ) -> os.stat_result | None:
        """Link ``tmp`` to ``final``; ``sync=False``: the caller syncs the filesystem later.
        Returns the ``stat`` of the object when the key was taken already, None if it was free."""
        try:
            found = self._link(tmp, final, size)
        except FileNotFoundError:  # the shard folder is new: make it and try once more
            self._make_shard(os.path.dirname(final), sync=sync)
            found = self._link(tmp, final, size)
        if self.fsync and sync:
            fsync_dir(os.path.dirname(final))
        return found

    def _link(self, tmp: StrPath, final: StrPath, size: int) -> os.stat_result | None:
        """Give ``tmp`` the name ``final``; an object already there is kept unless its size
        shows it damaged (see ``_existing_or_replace``). None: the name was free."""
        try:
            os.link(tmp, final)  # atomic, and fails rather than replace an existing object
        except FileExistsError:
            return _existing_or_replace(tmp, final, size)
        except OSError as exc:
            if exc.errno not in _NO_HARD_LINKS:
                raise
            if os.path.exists(final):
                return _existing_or_replace(tmp, final, size)
            # A concurrent writer of the same key holds identical bytes, so a replace is harmless.
            os.rename(tmp, final)
        return None

    def put_folder(self, src: Path, suffix: str = "") -> StoredObject:
        return self._put_folder(src, suffix, replace=False)

    def _put_folder(
        self, src: Path, suffix: str, replace: bool, expected_hash: str | None = None
    ) -> StoredObject:
        check_suffix(suffix)
        with open_folder(src) as folder:  # rejects bad content before anything is written
            tmp = self._tmp_path()
            tmp.mkdir()
            try:
                hasher = FolderHasher()
                for member in folder.members:
                    dst = tmp / member.relpath
                    dst.parent.mkdir(parents=True, exist_ok=True)
                    digest, _ = write_read_only_copy(
                        folder.path(member),
                        dst,
                        fsync=self.fsync,
                        size=member.size,
                        opener=folder.opener(member),
                    )
                    hasher.add(member.relpath, digest.size, digest.hash)
                if self.fsync:
                    fsync_tree_dirs(tmp)
                key = object_key(hasher.hash(), suffix)
                if replace:
                    check_unchanged(src, hasher.hash(), expected_hash)
                    self.delete(key)
                existed = self._publish_folder(tmp, self.path / key)
            finally:
                remove_tree(tmp)
        fingerprint = folder_fingerprint(self.path / key)  # one stat per member
        return StoredObject(
            key, hasher.hash(), hasher.size, hasher.n_files, True, fingerprint, existed
        )

    def _publish_folder(self, tmp: Path, final: Path) -> bool:
        """Rename ``tmp`` to ``final``; True if a folder was there already (and is kept)."""
        self._make_shard(final.parent)
        if final.exists():
            return True
        try:
            os.rename(tmp, final)
        except OSError as exc:
            # Another writer published the same folder first (a non-empty target refuses).
            if exc.errno in (errno.EEXIST, errno.ENOTEMPTY) and final.is_dir():
                return True
            raise
        # Read-only only after the rename: moving a directory needs write access to it.
        set_dirs_mode(final, READ_ONLY_DIR)
        if self.fsync:
            fsync_dir(final.parent)
        return False

    def replace(self, src: Path, suffix: str, expected_hash: str) -> StoredObject:
        """Store ``src`` again over the damaged object of its key: a file in one atomic rename,
        a folder by deleting the damaged one first (see ``Storage.replace``)."""
        src = Path(src)
        if src.is_dir():
            return self._put_folder(src, suffix, replace=True, expected_hash=expected_hash)
        check_suffix(suffix)
        tmp = self._tmp_path()
        try:
            digest, copied = write_read_only_copy(src, tmp, fsync=self.fsync)
            check_unchanged(src, digest.hash, expected_hash)
            key = object_key(digest.hash, suffix)
            final = self.path / key
            self._make_shard(final.parent)
            os.rename(tmp, final)
            if self.fsync:
                fsync_dir(final.parent)
        finally:
            tmp.unlink(missing_ok=True)
        return _stored_file(key, digest, copied, None)

    def fingerprint(self, key: str) -> str:
        return fingerprint_of(f"{self.root}/{check_key(key)}")  # a str: pathlib was half of it

    def open(self, key: str) -> BinaryIO:
        return open(self._path(key), "rb")

    def exists(self, key: str) -> bool:
        return os.path.lexists(f"{self.root}/{check_key(key)}")  # a str: saves ~10 us a call

    def delete(self, key: str) -> None:
        path = self._path(key)
        try:
            if not stat.S_ISDIR(os.lstat(path).st_mode):
                path.unlink()
                return
            # Move the folder out of its key first, so no reader sees it half deleted.
            os.chmod(path, WRITABLE_DIR)
            trash = self._tmp_path()
            os.rename(path, trash)
        except FileNotFoundError:  # already gone, possibly deleted by another thread
            return
        remove_tree(trash)

    def local_path(self, key: str) -> Path:
        path = self._path(key)
        if not os.path.lexists(path):
            raise FileNotFoundError(errno.ENOENT, f"No object stored in {self.root}", key)
        return path

    def size(self, key: str) -> int:
        path = self._path(key)
        st = os.lstat(path)
        return tree_size(path) if stat.S_ISDIR(st.st_mode) else st.st_size

    def iter_keys(self) -> Iterator[str]:
        objects = self.path / OBJECTS_PREFIX
        if not objects.is_dir():
            return
        for shard in sorted(objects.iterdir()):
            if not shard.is_dir():  # a stray file among the shards is no object
                continue
            for entry in sorted(shard.iterdir()):
                yield f"{OBJECTS_PREFIX}/{shard.name}/{entry.name}"

    def stale_temp(self) -> list[tuple[str, int]]:
        """``(key, bytes)`` of the temp entries whose writing process has ended."""
        found = []
        for name in self._stale_temp_names(remove=False):
            path = self.path / TMP_DIR / name
            with contextlib.suppress(FileNotFoundError):  # removed by a sweep meanwhile
                size = tree_size(path) if path.is_dir() else os.lstat(path).st_size
                found.append((f"{TMP_DIR}/{name}", size))
        return found

    def remove_stale_temp(self) -> list[str]:
        """Remove what killed processes left in the temp area (half-written copies, folders
        being deleted), never an entry of a process still running; returns the removed keys."""
        return [f"{TMP_DIR}/{name}" for name in self._stale_temp_names(remove=True)]

    def _stale_temp_names(self, *, remove: bool) -> list[str]:
        tmp_dir, locks_dir = self.path / TMP_DIR, self.path / LOCKS_DIR
        try:
            names = sorted(os.listdir(tmp_dir))
        except FileNotFoundError:
            return []
        owners = {token for token in map(owner_of, names) if token is not None}
        # When removing, lock files left without entries are candidates too, so they go too.
        candidates = (owners | lock_tokens(locks_dir)) if remove else owners
        stale = []
        with dead_owners(locks_dir, candidates, remove=remove) as dead:
            for name in names:
                token = owner_of(name)
                if (token in dead) if token is not None else is_old(tmp_dir / name):
                    stale.append(name)
                    if remove:
                        remove_tree(tmp_dir / name)
        return stale


SHARDS = [f"{i:02x}" for i in range(256)]  # the first two hex digits of a content hash


def _existing_or_replace(tmp: StrPath, final: StrPath, size: int) -> os.stat_result:
    """An object with our key exists: keep it if it is a file of the right size. A file of
    another size is damaged, and ``tmp`` holds the bytes of this key, just hashed: it takes the
    place, in one atomic rename (a reader sees the old or the new file). Returns the ``stat`` of
    what is there now; whether a kept object is intact is the caller's check (its fingerprint,
    else its hash)."""
    st = os.stat(final)
    if stat.S_ISREG(st.st_mode) and st.st_size == size:
        return st
    if stat.S_ISREG(st.st_mode):
        os.rename(tmp, final)
        return os.stat(final)
    raise StorageError(
        f"The stored object {os.fspath(final)!r} is not a file, as its content key says: it "
        "was changed outside biolake. Move it out of the storage folder and save again to "
        "restore it."
    )


def _stored_file(
    key: str, digest: Digest, copied: os.stat_result, found: os.stat_result | None
) -> StoredObject:
    """What a put of a file stored: the copy it published, or the object ``found`` there."""
    st = copied if found is None else found
    fingerprint = file_fingerprint(st)
    return StoredObject(key, digest.hash, digest.size, None, False, fingerprint, found is not None)
