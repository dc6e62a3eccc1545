"""Streaming BLAKE3 content hashes for bytes, files and folders.

Every hash is a string that names its algorithm: ``"blake3:"`` followed by the 64 hex digits of
the 32-byte BLAKE3 digest. Hashes always cover the whole content.

Files
    ``blake3:`` + BLAKE3 (regular hash mode) of all bytes of the file. Equal to
    ``hash_bytes(path.read_bytes())``.

Folders (scheme ``biolake-folder-v1``)
    The folder's regular files are listed recursively and sorted by their relative POSIX path,
    compared as UTF-8 bytes (undecodable names keep their raw bytes via ``surrogateescape``).
    The hash is BLAKE3 in *derive-key* mode with context ``"biolake folder v1"`` over, for each
    file in that order::

        u64le(len(path)) || path || u64le(size) || blake3(file bytes)   (32 raw bytes)

    where ``path`` is the UTF-8 relative path (``"raw/a.csv"``) and ``u64le`` an unsigned 64-bit
    little-endian integer. Hence renaming a file, moving bytes between files or moving a file into
    a subfolder changes the hash, while copying the folder elsewhere does not. An empty folder
    hashes the empty sequence. The derive-key mode keeps folder and file hashes apart: no file
    can have the hash of a folder. Empty subfolders are not part of the hash (object stores such
    as S3 cannot hold them), and neither are timestamps or permissions.

Symlinks inside a folder
    A symlink to a regular file inside the folder is followed: its target's bytes are hashed
    (and stored) under the link's path, as if the link were a copy. Every other symlink is
    refused with an error that names the link and its target: one that points outside the
    folder, to a folder (inside or not: following it could loop and would store files twice),
    to nothing, or into a loop. FIFOs, sockets and devices are refused too, also behind a link:
    the folder's content must be the folder's own, and its bytes must end. Files are read by
    the real path of their bytes inside the folder, never through a link, so a link swapped
    during a save cannot make it read outside the folder (see ``biolake.storage.folders``).

Files that change while they are read
    A file is read through one open descriptor, and its size, mtime, ctime, inode and device
    are compared before and after: any write meanwhile changes the ctime, which ``os.utime``
    cannot put back, so a file rewritten with its mtime restored is detected too, and the copy
    fails (StorageError) rather than store bytes torn between two versions.

Throughput: :func:`copy_and_hash` reads each source byte once into reusable buffers, hashes it
and hands the same buffer to the destination. For large inputs, writer threads write chunk *i*
while the caller's thread reads and hashes chunk *i+1* (BLAKE3 and file I/O release the GIL),
which keeps both cores busy; a :class:`PositionalWriter` destination (the local store's O_DIRECT
writer) takes several chunks in flight at once. Hashing alone uses BLAKE3's own threads.

Example::

    >>> hash_bytes(b"")
    'blake3:af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262'
"""

from __future__ import annotations

import itertools
import mmap
import os
import stat
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple, Protocol, cast, runtime_checkable

import blake3

from biolake.errors import StorageError, ValidationError
from biolake.storage.folders import open_folder

if TYPE_CHECKING:
    from concurrent.futures import Future

__all__ = [
    "ALGORITHM",
    "CHUNK_SIZE",
    "Digest",
    "FolderHasher",
    "PositionalWriter",
    "copy_and_hash",
    "copy_and_hash_file",
    "hash_bytes",
    "hash_file",
    "hash_folder",
    "hash_hex",
    "hash_path",
    "list_folder",
]

ALGORITHM = "blake3"
_PREFIX = ALGORITHM + ":"
FOLDER_CONTEXT = "biolake folder v1"
# 8 MiB chunks: large enough that per-call overhead vanishes and BLAKE3 can use both cores,
# small enough that two buffers stay cheap.
CHUNK_SIZE = 8 * 1024 * 1024
# Below this size a writer thread costs more than it overlaps.
_PIPELINE_MIN_SIZE = 2 * CHUNK_SIZE
_SMALL_BUFFER = 64 * 1024


class Readable(Protocol):
    def readinto(self, buffer: memoryview, /) -> int | None: ...


class Writable(Protocol):
    def write(self, data: memoryview, /) -> int | None: ...


@runtime_checkable
class PositionalWriter(Protocol):
    """A sink that writes chunks at byte offsets, possibly from several threads at once.

    Every chunk but the last is :data:`CHUNK_SIZE` bytes, starts at a multiple of it and lives
    in a page-aligned buffer, so direct (unbuffered) I/O can take it as is.
    """

    writers: int

    def write_at(self, data: memoryview, offset: int, /) -> None: ...


class Digest(NamedTuple):
    """The hash (``"blake3:<hex>"``) and byte count of streamed content."""

    hash: str
    size: int


def _format(hasher: blake3.blake3) -> str:
    return _PREFIX + hasher.hexdigest()


def hash_bytes(data: bytes | bytearray | memoryview) -> str:
    """Return the hash of ``data``: ``hash_bytes(b"x") == "blake3:" + blake3(b"x").hexdigest()``."""
    return _format(blake3.blake3(data))


def hash_hex(hash_: str) -> str:
    """Return the 64 hex digits of a ``"blake3:<hex>"`` hash; raise ValidationError otherwise."""
    hex_ = hash_.removeprefix(_PREFIX)
    if hex_ == hash_ or len(hex_) != 64 or hex_.strip("0123456789abcdef"):
        raise ValidationError(
            f"{hash_!r} is not a biolake hash: expected 'blake3:' followed by 64 lower-case "
            "hex digits, as returned by biolake.storage.hashing.hash_file()."
        )
    return hex_


def _write_all(dst: Writable, data: memoryview) -> None:
    # Raw file objects may write fewer bytes than asked; buffered ones return None or len.
    while data:
        n = dst.write(data)
        if n is None or n >= len(data):
            return
        data = data[n:]


def _copy_sequential(
    src: Readable, dst: Writable | None, hasher: blake3.blake3, bufsize: int
) -> int:
    buf = memoryview(bytearray(bufsize))
    total = 0
    while n := src.readinto(buf):
        chunk = buf[:n]
        hasher.update(chunk)
        if dst is not None:
            _write_all(dst, chunk)
        total += n
    return total


def _read_full(src: Readable, buf: memoryview) -> int:
    """Fill ``buf`` unless the source ends first, so every chunk but the last is full-size."""
    got = 0
    while got < len(buf) and (n := src.readinto(buf[got:])):
        got += n
    return got


def _copy_pipelined(src: Readable, dst: PositionalWriter, hasher: blake3.blake3) -> int:
    """Read and hash chunk i in this thread while writer threads write the chunks before it."""
    n_buffers = dst.writers + 1
    # Anonymous maps are page-aligned, as O_DIRECT writers need. They are unmapped when the
    # last view goes away (an exception's traceback may still hold one, so no explicit close).
    from concurrent.futures import ThreadPoolExecutor  # here: only large copies need threads

    buffers = [memoryview(mmap.mmap(-1, CHUNK_SIZE)) for _ in range(n_buffers)]
    pending: deque[Future[None]] = deque()
    total = 0
    with ThreadPoolExecutor(dst.writers, thread_name_prefix="biolake-write") as pool:
        for i in itertools.count():
            if len(pending) == n_buffers:  # the buffer to fill next is still being written
                pending.popleft().result()
            buf = buffers[i % n_buffers]
            n = _read_full(src, buf)
            if n:
                pending.append(pool.submit(dst.write_at, buf[:n], total))
                hasher.update(buf[:n])
                total += n
            if n < CHUNK_SIZE:
                break
        for future in pending:
            future.result()
    return total


class _InOrder:
    """Adapt a sequential ``write()`` sink to the pipeline: one writer keeps chunks in order."""

    writers = 1

    def __init__(self, dst: Writable) -> None:
        self._dst = dst

    def write_at(self, data: memoryview, offset: int, /) -> None:
        _write_all(self._dst, data)


def copy_and_hash(
    src: Readable,
    dst: Writable | PositionalWriter | None = None,
    *,
    size_hint: int | None = None,
) -> Digest:
    """Stream ``src`` to ``dst`` (when given) in one pass, hashing every byte on the way.

    ``dst`` is a file-like object with ``write()``, or a :class:`PositionalWriter` whose
    ``write_at()`` may run in ``writers`` threads at once. ``size_hint`` (the expected size) only
    picks buffer sizes and whether a writer thread pays off. Errors from ``src`` or ``dst``
    propagate unchanged; cleaning up ``dst`` is the caller's job.
    """
    # Small inputs get a small buffer: zeroing 8 MiB per file would dominate a folder of
    # thousands of small files. The +1 lets the read that returns the last byte also see EOF.
    hint = CHUNK_SIZE if size_hint is None else size_hint + 1
    bufsize = max(_SMALL_BUFFER, min(CHUNK_SIZE, hint))
    if dst is None:
        # Hash only: BLAKE3's own threads use both cores on large chunks.
        hasher = blake3.blake3(max_threads=blake3.blake3.AUTO)
        size = _copy_sequential(src, None, hasher, bufsize)
    elif hasattr(dst, "write_at"):  # a PositionalWriter (duck-typed: Protocol checks are slow)
        hasher = blake3.blake3()
        size = _copy_pipelined(src, cast(PositionalWriter, dst), hasher)
    elif size_hint is not None and size_hint >= _PIPELINE_MIN_SIZE:
        # The writer thread takes the second core, so the hasher stays single-threaded.
        hasher = blake3.blake3()
        size = _copy_pipelined(src, _InOrder(dst), hasher)
    else:
        hasher = blake3.blake3()
        size = _copy_sequential(src, dst, hasher, bufsize)
    return Digest(_format(hasher), size)


def check_source_unchanged(
    src: str | os.PathLike[str], before: os.stat_result, after: os.stat_result, copied: int
) -> None:
    """Raise StorageError if the file ``src`` changed while ``copied`` bytes of it were read
    (truncated, appended to or rewritten): the copy would match neither its old nor its new
    content. ``before``/``after``: its stat at the start and the end of the read.

    The ctime counts because writing changes it and ``os.utime`` cannot put it back: a program
    that rewrites a file and restores its mtime still shows."""
    if not stat.S_ISREG(before.st_mode):  # pipes and devices have no size to compare
        return
    if copied != before.st_size or _identity(after) != _identity(before):
        raise StorageError(
            f"{os.fspath(src)!r} changed while it was being read ({before.st_size} bytes at the "
            f"start, {copied} read). Wait until the program writing it has finished, then save "
            "it again."
        )


def _identity(st: os.stat_result) -> tuple[int, ...]:
    return (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev)


def copy_and_hash_file(
    src: str | os.PathLike[str],
    dst: Writable | PositionalWriter | None = None,
    *,
    opener: Callable[[str, int], int] | None = None,
) -> Digest:
    """Stream the file ``src`` into ``dst`` (or nowhere) and return its :class:`Digest`.

    ``opener`` (as for ``open()``) opens the file another way; ``src`` then only names it in
    errors (folders open their files with ``Folder.opener``, never through a link).
    Raises StorageError when the file changes while it is read (it was truncated, appended to or
    rewritten), since the bytes written would then match neither its old nor its new content.
    """
    with open(src, "rb", buffering=0, opener=opener) as f:
        before = os.fstat(f.fileno())
        digest = copy_and_hash(f, dst, size_hint=before.st_size)
        after = os.fstat(f.fileno())
    check_source_unchanged(src, before, after, digest.size)
    return digest


def hash_file(path: str | os.PathLike[str]) -> str:
    """Return the hash of all bytes of the file at ``path``."""
    return copy_and_hash_file(path).hash


def _path_bytes(relpath: str) -> bytes:
    return relpath.encode("utf-8", "surrogateescape")


class FolderHasher:
    """Fold (path, size, file hash) entries, added in sorted path order, into a folder hash.

    Example::

        hasher = FolderHasher()
        hasher.add("a.txt", 1, hash_bytes(b"a"))
        hasher.hash()
    """

    def __init__(self) -> None:
        self._hasher = blake3.blake3(derive_key_context=FOLDER_CONTEXT)
        self._last: bytes | None = None
        self.n_files = 0
        self.size = 0

    def add(self, relpath: str, size: int, file_hash: str) -> None:
        _check_relpath(relpath)
        path = _path_bytes(relpath)
        if self._last is not None and path <= self._last:
            raise ValueError(f"Folder entries must be added in sorted order: {relpath!r}")
        self._hasher.update(len(path).to_bytes(8, "little") + path)
        self._hasher.update(size.to_bytes(8, "little") + bytes.fromhex(hash_hex(file_hash)))
        self._last = path
        self.n_files += 1
        self.size += size

    def hash(self) -> str:
        return _format(self._hasher)


def _check_relpath(relpath: str) -> None:
    parts = relpath.split("/")
    if relpath.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise ValidationError(
            f"{relpath!r} is not a relative POSIX path inside a folder (no leading '/', no empty, "
            "'.' or '..' parts)."
        )


def list_folder(root: str | os.PathLike[str]) -> list[tuple[str, Path]]:
    """Return ``(relative POSIX path, path of its bytes)`` of every file under ``root``, in hash
    order; a followed link's bytes are at its target's path.

    Raises FileNotFoundError or NotADirectoryError when ``root`` is missing or not a folder, and
    ValidationError for content the folder scheme rejects (see the module docstring).
    """
    with open_folder(root) as folder:
        return [(m.relpath, Path(root, m.source)) for m in folder.members]


def hash_folder(root: str | os.PathLike[str]) -> str:
    """Return the ``biolake-folder-v1`` hash of the folder ``root`` (see the module docstring)."""
    hasher = FolderHasher()
    with open_folder(root) as folder:
        for member in folder.members:
            digest = copy_and_hash_file(folder.path(member), opener=folder.opener(member))
            hasher.add(member.relpath, digest.size, digest.hash)
    return hasher.hash()


def hash_path(path: str | os.PathLike[str]) -> str:
    """Return the hash of a file or of a folder."""
    return hash_folder(path) if Path(path).is_dir() else hash_file(path)
