"""Storage in a local (or mounted) folder.

Objects live under ``<root>/.biolake/objects/``; each put first writes under a unique name in
``<root>/.biolake/tmp/`` on the same filesystem, fsyncs, makes the copy read-only and only then
gives it its final name in one atomic step. Files are published with ``link()``, which refuses
to replace an existing object, so identical content is stored once and nothing stored is ever
overwritten. Folders are published with ``rename()`` and their directories made read-only too.
"""

from __future__ import annotations

import errno
import os
import stat
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

from biolake.errors import StorageError
from biolake.hashing import FolderHasher, list_folder
from biolake.storage._direct import DIRECT_MIN_SIZE
from biolake.storage._fs import (
    READ_ONLY_DIR,
    WRITABLE_DIR,
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
    object_key,
)

__all__ = ["LocalStorage"]

TMP_DIR = ".biolake/tmp"
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

    def __repr__(self) -> str:
        return f"LocalStorage({self.root!r})"

    def _tmp_path(self) -> Path:
        tmp_dir = self.path / TMP_DIR
        if not self._tmp_ready:  # once per process: one syscall less per stored file
            tmp_dir.mkdir(parents=True, exist_ok=True)
            self._tmp_ready = True
        return tmp_dir / f"{uuid.uuid4().hex}.part"

    def _path(self, key: str) -> Path:
        return self.path / check_key(key)

    def put_file(self, src: Path, suffix: str = "") -> StoredObject:
        src = Path(src)
        check_suffix(suffix)
        if src.is_dir():
            raise IsADirectoryError(f"{str(src)!r} is a folder: store it with put_folder().")
        tmp = self._tmp_path()
        try:
            digest = write_read_only_copy(src, tmp, fsync=self.fsync)
            key = object_key(digest.hash, suffix)
            self._publish_file(tmp, self.path / key, digest.size)
        finally:
            tmp.unlink(missing_ok=True)
        return StoredObject(key, digest.hash, digest.size, n_files=None, is_dir=False)

    def _make_shard(self, shard: Path) -> None:
        try:
            shard.mkdir(parents=True)
        except FileExistsError:
            return
        if self.fsync:
            fsync_dir(shard.parent)  # the new shard's own entry must survive a crash too

    def put_many(
        self,
        sources: Sequence[tuple[Path, str]],
        on_done: Callable[[StoredObject], None] | None = None,
    ) -> list[StoredObject]:
        """Like ``put_file`` for each small file, but with one filesystem sync for the whole batch
        instead of two fsyncs per file (each fsync is a journal commit: ~0.2-4 ms here).

        Copies go to temp names without fsync, then one ``syncfs`` makes them durable, then they
        are linked into place, then a second ``syncfs`` makes the new names durable. Folders and
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
        tmps = {i: self._tmp_path() for i in small}
        try:
            # One thread: for small files the work is many short syscalls, and two threads
            # contending for the GIL were 3-10x slower than one (measured on 2 cores).
            digests = {i: write_read_only_copy(sources[i][0], tmps[i], fsync=False) for i in small}
            sync_filesystem(self.path)
            for i in small:
                digest = digests[i]
                key = object_key(digest.hash, sources[i][1])
                self._publish_file(tmps[i], self.path / key, digest.size, sync=False)
                results[i] = StoredObject(key, digest.hash, digest.size, n_files=None, is_dir=False)
                if on_done is not None:
                    on_done(results[i])
            sync_filesystem(self.path)
        finally:
            for tmp in tmps.values():
                tmp.unlink(missing_ok=True)
        return [results[i] for i in range(len(sources))]

    def _publish_file(self, tmp: Path, final: Path, size: int, sync: bool = True) -> None:
        self._make_shard(final.parent)
        try:
            os.link(tmp, final)  # atomic, and fails rather than replace an existing object
        except FileExistsError:
            _check_existing(final, size)
            return
        except OSError as exc:
            if exc.errno not in _NO_HARD_LINKS:
                raise
            if final.exists():
                _check_existing(final, size)
                return
            # A concurrent writer of the same key holds identical bytes, so a replace is harmless.
            os.rename(tmp, final)
        if self.fsync and sync:
            fsync_dir(final.parent)

    def put_folder(self, src: Path, suffix: str = "") -> StoredObject:
        check_suffix(suffix)
        files = list_folder(src)  # rejects bad content before anything is written
        tmp = self._tmp_path()
        tmp.mkdir()
        try:
            hasher = FolderHasher()
            for relpath, path in files:
                dst = tmp / relpath
                dst.parent.mkdir(parents=True, exist_ok=True)
                digest = write_read_only_copy(path, dst, fsync=self.fsync)
                hasher.add(relpath, digest.size, digest.hash)
            if self.fsync:
                fsync_tree_dirs(tmp)
            key = object_key(hasher.hash(), suffix)
            self._publish_folder(tmp, self.path / key)
        finally:
            remove_tree(tmp)
        return StoredObject(key, hasher.hash(), hasher.size, n_files=hasher.n_files, is_dir=True)

    def _publish_folder(self, tmp: Path, final: Path) -> None:
        self._make_shard(final.parent)
        if final.exists():
            return
        try:
            os.rename(tmp, final)
        except OSError as exc:
            # Another writer published the same folder first (a non-empty target refuses).
            if exc.errno in (errno.EEXIST, errno.ENOTEMPTY) and final.is_dir():
                return
            raise
        # Read-only only after the rename: moving a directory needs write access to it.
        set_dirs_mode(final, READ_ONLY_DIR)
        if self.fsync:
            fsync_dir(final.parent)

    def open(self, key: str) -> BinaryIO:
        return open(self._path(key), "rb")

    def exists(self, key: str) -> bool:
        return os.path.lexists(self._path(key))

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
            for entry in sorted(shard.iterdir()):
                yield f"{OBJECTS_PREFIX}/{shard.name}/{entry.name}"


def _check_existing(final: Path, size: int) -> None:
    """An object with our key exists: make sure it is a file of the right size, never replace."""
    st = os.stat(final)
    if stat.S_ISREG(st.st_mode) and st.st_size == size:
        return
    raise StorageError(
        f"The stored object {str(final)!r} does not match its content key (expected a file of "
        f"{size} bytes): it was changed outside biolake. Move it out of the storage folder and "
        "save again to restore it."
    )
