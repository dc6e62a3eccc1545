"""One contract test suite, run over every storage backend, plus backend-specific checks."""

from __future__ import annotations

import errno
import io
import os
import stat
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from biolake.errors import StorageError, ValidationError
from biolake.storage import LocalStorage, MemoryStorage, Storage, StoredObject, hashing, storage_for
from biolake.storage._both_cores import PARALLEL_MIN
from biolake.storage._direct import open_direct
from biolake.storage.base import object_key
from biolake.storage.hashing import CHUNK_SIZE, copy_and_hash_file, hash_bytes, hash_folder

# "local-nofsync" writes through the page cache; "local" uses O_DIRECT for large files.
BACKENDS = ["local", "local-nofsync", "memory"]
FILES = {"a.txt": b"alpha", "raw/b.bin": b"\x00" * 1000, "raw/deep/c": b""}


@pytest.fixture(params=BACKENDS)
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    if request.param == "memory":
        return MemoryStorage()
    return LocalStorage(tmp_path / "store", fsync=request.param == "local")


def leftovers(storage: Storage) -> list[str]:
    """Temp files a put left behind (only the local backend has a temp area)."""
    if isinstance(storage, LocalStorage):
        tmp = storage.path / ".biolake" / "tmp"
        return sorted(os.listdir(tmp)) if tmp.exists() else []
    return []


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def write_tree(root: Path, files: dict[str, bytes]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for relpath, data in files.items():
        write(root / relpath, data)
    return root


def is_read_only(path: Path) -> bool:
    return stat.S_IMODE(os.stat(path).st_mode) & 0o222 == 0


@pytest.fixture
def break_source(monkeypatch: pytest.MonkeyPatch) -> Callable[[Path, str], None]:
    """Make reads of one source file fail after the first chunk, the way real sources do."""

    def arm(path: Path, how: str) -> None:
        class Breaking(io.FileIO):
            def readinto(self, buffer: memoryview) -> int | None:  # type: ignore[override]
                if self.tell() > 0:
                    if how == "eio":
                        raise OSError(errno.EIO, "Input/output error (simulated)", str(path))
                    os.truncate(path, 0)  # "truncate": the file vanishes under the reader
                return super().readinto(buffer)

        real_open = open

        def source_open(
            file: str | os.PathLike[str], mode: str = "r", *args: Any, **kwargs: Any
        ) -> Any:
            if Path(file) == path:
                return Breaking(file, "rb")
            return real_open(file, mode, *args, **kwargs)

        # Only the source read is replaced: hashing opens nothing but sources.
        monkeypatch.setattr(hashing, "open", source_open, raising=False)

    return arm


# --- files ------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 10, 3 * CHUNK_SIZE + 7])
def test_put_file_and_read_back(storage: Storage, tmp_path: Path, size: int) -> None:
    data = os.urandom(size)
    stored = storage.put_file(write(tmp_path / "counts.csv", data), ".csv")
    assert stored._replace(fingerprint=None) == StoredObject(
        key=object_key(hash_bytes(data), ".csv"),
        hash=hash_bytes(data),
        size=size,
        n_files=None,
        is_dir=False,
    )
    assert stored.fingerprint == storage.fingerprint(stored.key)  # None: memory keeps none
    assert stored.key.startswith(".biolake/objects/") and stored.key.endswith(".csv")
    assert storage.exists(stored.key)
    assert storage.size(stored.key) == size
    with storage.open(stored.key) as f:
        assert f.read() == data
    assert storage.local_path(stored.key).read_bytes() == data
    assert list(storage.iter_keys()) == [stored.key]
    assert leftovers(storage) == []
    assert storage.stale_temp() == [] and storage.remove_stale_temp() == []


def test_open_streams(storage: Storage, tmp_path: Path) -> None:
    data = os.urandom(10_000)
    stored = storage.put_file(write(tmp_path / "f.bin", data), ".bin")
    with storage.open(stored.key) as f:
        chunks = list(iter(lambda: f.read(999), b""))
    assert len(chunks) == 11 and b"".join(chunks) == data


def test_identical_content_is_stored_once(storage: Storage, tmp_path: Path) -> None:
    first = storage.put_file(write(tmp_path / "a.txt", b"same"), ".txt")
    before = os.stat(storage.local_path(first.key))
    second = storage.put_file(write(tmp_path / "b.txt", b"same"), ".txt")
    assert not first.existed
    assert second == first._replace(existed=True)  # found: the caller checks it is intact
    assert list(storage.iter_keys()) == [first.key]
    after = os.stat(storage.local_path(first.key))
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert storage.put_file(tmp_path / "a.txt", ".csv").key != first.key
    assert leftovers(storage) == []


def test_stored_objects_are_read_only(storage: Storage, tmp_path: Path) -> None:
    stored = storage.put_file(write(tmp_path / "a.txt", b"x"), ".txt")
    assert is_read_only(storage.local_path(stored.key))


def test_delete(storage: Storage, tmp_path: Path) -> None:
    stored = storage.put_file(write(tmp_path / "a.txt", b"x"), ".txt")
    storage.delete(stored.key)
    storage.delete(stored.key)  # missing is fine
    assert not storage.exists(stored.key)
    assert list(storage.iter_keys()) == []
    for read in (storage.open, storage.local_path, storage.size):
        with pytest.raises(FileNotFoundError):
            read(stored.key)
    assert storage.put_file(tmp_path / "a.txt", ".txt") == stored  # stored again after delete


def test_missing_source(storage: Storage, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        storage.put_file(tmp_path / "nope.txt", ".txt")
    assert leftovers(storage) == [] and list(storage.iter_keys()) == []


@pytest.mark.parametrize("how", ["eio", "truncate"])
@pytest.mark.parametrize("size", [200_000, 3 * CHUNK_SIZE])  # small-file and pipelined paths
def test_source_failing_mid_copy_leaves_nothing(
    storage: Storage, tmp_path: Path, break_source: Callable[[Path, str], None], how: str, size: int
) -> None:
    src = write(tmp_path / "big.bin", os.urandom(size))
    break_source(src, how)
    error = OSError if how == "eio" else StorageError
    with pytest.raises(error, match="Input/output error" if how == "eio" else "changed while"):
        storage.put_file(src, ".bin")
    assert leftovers(storage) == [] and list(storage.iter_keys()) == []


def test_bad_arguments(storage: Storage, tmp_path: Path) -> None:
    src = write(tmp_path / "a.txt", b"x")
    for suffix in ["csv", ".a/b", "/x"]:
        with pytest.raises(ValidationError, match="not a valid storage suffix"):
            storage.put_file(src, suffix)
    for key in ["../etc/passwd", "/abs", "", "a//b", "a\\b"]:
        with pytest.raises(ValidationError, match="not a storage key"):
            storage.exists(key)
    with pytest.raises(IsADirectoryError, match="put_folder"):
        storage.put_file(tmp_path, "")
    with pytest.raises(NotADirectoryError):
        storage.put_folder(src, "")
    with pytest.raises(FileNotFoundError):
        storage.put_folder(tmp_path / "missing", "")
    assert leftovers(storage) == [] and list(storage.iter_keys()) == []


def test_concurrent_puts(storage: Storage, tmp_path: Path) -> None:
    sources = [write(tmp_path / f"{i}.bin", bytes([i % 4]) * 100_000) for i in range(32)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        stored = list(pool.map(lambda p: storage.put_file(p, ".bin"), sources))
    assert len({s.key for s in stored}) == 4
    assert sorted(storage.iter_keys()) == sorted({s.key for s in stored})
    for src, s in zip(sources, stored, strict=True):
        assert storage.local_path(s.key).read_bytes() == src.read_bytes()
    folders = [write_tree(tmp_path / f"f{i}", FILES if i % 2 else {}) for i in range(8)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        stored = list(pool.map(lambda p: storage.put_folder(p, ".zarr"), folders))
    assert len({s.key for s in stored}) == 2
    assert hash_folder(storage.local_path(stored[1].key)) == hash_folder(folders[1])
    assert leftovers(storage) == []


# --- folders ----------------------------------------------------------------------------------


def test_put_folder_and_read_back(storage: Storage, tmp_path: Path) -> None:
    src = write_tree(tmp_path / "data.zarr", FILES)
    stored = storage.put_folder(src, ".zarr")
    assert stored._replace(fingerprint=None) == StoredObject(
        key=object_key(hash_folder(src), ".zarr"),
        hash=hash_folder(src),
        size=1005,
        n_files=3,
        is_dir=True,
    )
    assert stored.fingerprint == storage.fingerprint(stored.key)
    assert storage.exists(stored.key) and storage.size(stored.key) == 1005
    path = storage.local_path(stored.key)
    assert {p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file()} == set(FILES)
    assert all((path / rel).read_bytes() == data for rel, data in FILES.items())
    assert hash_folder(path) == stored.hash
    assert all(is_read_only(p) for p in [path, *path.rglob("*")])
    with pytest.raises(IsADirectoryError):
        storage.open(stored.key)
    assert leftovers(storage) == []


def test_identical_folders_are_stored_once(storage: Storage, tmp_path: Path) -> None:
    first = storage.put_folder(write_tree(tmp_path / "one", FILES), ".zarr")
    second = storage.put_folder(write_tree(tmp_path / "two", FILES), ".zarr")
    assert second == first._replace(existed=True) and list(storage.iter_keys()) == [first.key]
    empty = storage.put_folder(write_tree(tmp_path / "empty", {}), "")
    assert (empty.n_files, empty.size) == (0, 0) and storage.local_path(empty.key).is_dir()
    assert storage.put_folder(tmp_path / "empty", "") == empty._replace(existed=True)
    assert leftovers(storage) == []


def test_delete_folder(storage: Storage, tmp_path: Path) -> None:
    stored = storage.put_folder(write_tree(tmp_path / "data.zarr", FILES), ".zarr")
    storage.delete(stored.key)
    storage.delete(stored.key)
    assert not storage.exists(stored.key) and list(storage.iter_keys()) == []
    assert leftovers(storage) == []


def test_folder_with_a_failing_file_leaves_nothing(
    storage: Storage, tmp_path: Path, break_source: Callable[[Path, str], None]
) -> None:
    src = write_tree(tmp_path / "data.zarr", {**FILES, "z/big": os.urandom(3 * CHUNK_SIZE)})
    break_source(src / "z" / "big", "eio")
    with pytest.raises(OSError, match="Input/output error"):
        storage.put_folder(src, ".zarr")
    assert leftovers(storage) == [] and list(storage.iter_keys()) == []


def test_folder_with_an_outside_symlink_is_refused(storage: Storage, tmp_path: Path) -> None:
    src = write_tree(tmp_path / "data", FILES)
    (src / "link").symlink_to(write(tmp_path / "outside", b"x"))
    with pytest.raises(ValidationError, match="outside the folder"):
        storage.put_folder(src, "")
    assert leftovers(storage) == [] and list(storage.iter_keys()) == []


# --- backend specifics ------------------------------------------------------------------------


def test_local_layout_and_modes(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "store")
    stored = storage.put_file(write(tmp_path / "a.csv", b"x"), ".csv")
    hex_ = stored.hash.removeprefix("blake3:")
    assert storage.local_path(stored.key) == tmp_path / "store/.biolake/objects" / hex_[:2] / (
        hex_ + ".csv"
    )
    assert stat.S_IMODE(os.stat(storage.local_path(stored.key)).st_mode) == 0o444


def test_local_put_repairs_an_object_of_the_wrong_size(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "store", fsync=False)
    stored = storage.put_file(write(tmp_path / "a.csv", b"abc"), ".csv")
    damaged = storage.local_path(stored.key)
    damaged.chmod(0o644)  # someone outside biolake makes it writable and truncates it
    os.truncate(damaged, 1)
    again = storage.put_file(tmp_path / "a.csv", ".csv")
    assert damaged.read_bytes() == b"abc" and is_read_only(damaged)
    assert again.existed and again.fingerprint == storage.fingerprint(stored.key)
    assert leftovers(storage) == []


def test_local_refuses_a_folder_where_a_file_belongs(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "store", fsync=False)
    stored = storage.put_file(write(tmp_path / "a.csv", b"abc"), ".csv")
    path = storage.local_path(stored.key)
    path.unlink()
    path.mkdir()
    with pytest.raises(StorageError, match="changed outside biolake"):
        storage.put_file(tmp_path / "a.csv", ".csv")
    assert leftovers(storage) == []


@pytest.mark.parametrize("kind", ["file", "folder"])
def test_replace_stores_the_good_bytes_over_a_damaged_object(
    storage: Storage, tmp_path: Path, kind: str
) -> None:
    if kind == "file":
        src, suffix = write(tmp_path / "a.csv", b"abc"), ".csv"
        stored = storage.put_file(src, suffix)
    else:
        src, suffix = write_tree(tmp_path / "tree", FILES), ".zarr"
        stored = storage.put_folder(src, suffix)
    if isinstance(storage, LocalStorage):  # damage it in place, as root may
        target = storage.local_path(stored.key)
        target = target / "a.txt" if kind == "folder" else target
        with open(target, "r+b") as f:
            f.write(b"X")
        assert storage.check(stored.key, stored.hash, stored.fingerprint).intact is False
    repaired = storage.replace(src, suffix, stored.hash)
    assert repaired.key == stored.key and storage.rehash(stored.key) == stored.hash
    assert storage.check(stored.key, stored.hash, repaired.fingerprint) == (True, None, None)
    assert list(storage.iter_keys()) == [stored.key] and leftovers(storage) == []


@pytest.mark.parametrize("kind", ["file", "folder"])
def test_replace_refuses_a_source_that_changed(storage: Storage, tmp_path: Path, kind: str) -> None:
    """A repair from a source that changed since would replace another object than the damaged
    one, outside that object's lock: refused, and nothing changes."""
    if kind == "file":
        src, suffix = write(tmp_path / "a.csv", b"abc"), ".csv"
        stored = storage.put_file(src, suffix)
        write(src, b"abd")
    else:
        src, suffix = write_tree(tmp_path / "tree", FILES), ".zarr"
        stored = storage.put_folder(src, suffix)
        write(src / "a.txt", b"changed")
    other = storage.put_folder(src, suffix) if kind == "folder" else storage.put_file(src, suffix)
    with pytest.raises(StorageError, match="changed while it was being saved"):
        storage.replace(src, suffix, stored.hash)
    assert sorted(storage.iter_keys()) == sorted([stored.key, other.key])
    assert storage.rehash(other.key) == other.hash and leftovers(storage) == []


@pytest.mark.parametrize("size", [0, 100, 4096, 2 * CHUNK_SIZE + 4097])
def test_direct_writes(tmp_path: Path, size: int) -> None:
    data = os.urandom(size)
    direct = open_direct(tmp_path / "copy.bin")
    if direct is None:
        pytest.skip("this filesystem does not support O_DIRECT")
    with direct:
        digest = copy_and_hash_file(write(tmp_path / "src.bin", data), direct)
        direct.fsync()
    assert digest == (hash_bytes(data), size)
    assert (tmp_path / "copy.bin").read_bytes() == data


def test_memory_storage_is_shared_by_name() -> None:
    name = f"test-{os.getpid()}-{id(object())}"
    assert storage_for(f"memory://{name}") is storage_for(f"memory://{name}")
    assert storage_for(f"memory://{name}").root == f"memory://{name}"


def test_storage_for(tmp_path: Path) -> None:
    local = storage_for(str(tmp_path))
    assert isinstance(local, LocalStorage) and local.root == str(tmp_path)
    assert isinstance(storage_for(f"file://{tmp_path}"), LocalStorage)
    with pytest.raises(NotImplementedError, match="S3 storage"):
        storage_for("s3://bucket/prefix")
    with pytest.raises(ValidationError, match="Unsupported storage location"):
        storage_for("ftp://host/x")
    with pytest.raises(ValidationError, match="needs a name"):
        storage_for("memory://")


# --- batches of small files (local): one sync per batch, both cores ---------------------------


def small_sources(root: Path, n: int) -> tuple[list[tuple[Path, str]], list[bytes]]:
    """``n`` small files; every tenth repeats the content of the one before it."""
    datas = [f"file {i - i % 10 if i % 10 == 1 else i}\n".encode() for i in range(n)]
    return [(write(root / f"f{i}.txt", d), ".txt") for i, d in enumerate(datas)], datas


@pytest.mark.parametrize("n", [3, 2 * PARALLEL_MIN])  # one process; both cores
def test_put_many_stores_every_file_in_order(tmp_path: Path, n: int) -> None:
    storage = LocalStorage(tmp_path / "store")
    sources, datas = small_sources(tmp_path / "src", n)
    reported: list[StoredObject] = []
    stored = storage.put_many(sources, reported.append)
    assert [s.hash for s in stored] == [hash_bytes(d) for d in datas]
    assert [s.key for s in stored] == [object_key(hash_bytes(d), ".txt") for d in datas]
    assert sorted(reported, key=lambda s: s.key) == sorted(stored, key=lambda s: s.key)
    for obj, data in zip(stored, datas, strict=True):
        assert storage.local_path(obj.key).read_bytes() == data
        assert is_read_only(storage.local_path(obj.key))
    assert leftovers(storage) == []


@pytest.mark.parametrize("failing", ["parent half", "child half"])
def test_put_many_failure_reports_what_either_half_stored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing: str
) -> None:
    from biolake.storage import local

    n = 2 * PARALLEL_MIN
    bad = 10 if failing == "parent half" else n - 10  # the child takes the second half
    storage = LocalStorage(tmp_path / "store")
    sources, _ = small_sources(tmp_path / "src", n)
    real_copy = local.copy_small_file

    def copy(src: str, dst: str) -> Any:
        if src == str(sources[bad][0]):
            raise OSError(errno.EIO, "Input/output error (simulated)", src)
        return real_copy(src, dst)

    monkeypatch.setattr(local, "copy_small_file", copy)  # forked children inherit it
    reported: list[StoredObject] = []
    with pytest.raises(OSError, match="simulated"):
        storage.put_many(sources, reported.append)
    # The half that failed stored nothing (it fails while copying); the other half stored and
    # reported everything, so that the caller can delete it again.
    assert len(reported) == n // 2
    assert all(storage.exists(s.key) for s in reported)
    assert len(list(storage.iter_keys())) == len({s.key for s in reported})
    assert leftovers(storage) == []


def test_copy_small_file_notices_a_source_that_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from biolake.storage import _fs

    src = write(tmp_path / "growing.txt", b"0123456789")
    digest, _ = _fs.copy_small_file(str(src), str(tmp_path / "copy"))
    assert digest == (hash_bytes(b"0123456789"), 10)
    real_read = os.read
    monkeypatch.setattr(_fs.os, "read", lambda fd, n: real_read(fd, n) + b"appended")
    with pytest.raises(StorageError, match="changed while it was being read"):
        _fs.copy_small_file(str(src), str(tmp_path / "copy2"))
    assert not (tmp_path / "copy2").exists()


def test_put_many_works_on_one_core_when_fork_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from biolake.storage import _both_cores

    def no_fork() -> int:
        raise OSError(errno.EAGAIN, "Resource temporarily unavailable (simulated)")

    monkeypatch.setattr(_both_cores, "_fork", no_fork)
    storage = LocalStorage(tmp_path / "store")
    sources, datas = small_sources(tmp_path / "src", 2 * PARALLEL_MIN)
    stored = storage.put_many(sources)
    assert [s.hash for s in stored] == [hash_bytes(d) for d in datas]
    assert leftovers(storage) == []


def test_old_temp_entries_without_an_owner_are_removed_young_ones_kept(tmp_path: Path) -> None:
    """Entries named before owner locks (no token) go by age when a process next stores."""
    from biolake.storage.temp_owners import STALE_AFTER

    tmp = tmp_path / "store" / ".biolake" / "tmp"
    old_file = write(tmp / "dead.part", b"half a copy")
    old_folder = write_tree(tmp / "deadfolder.part", FILES)
    young = write(tmp / "running.part", b"another save, now")
    long_ago = os.stat(young).st_mtime - STALE_AFTER - 60
    for path in (old_file, old_folder):
        os.utime(path, (long_ago, long_ago))
    (old_folder / "raw").chmod(0o555)  # read-only folders, as stored ones are
    storage = LocalStorage(tmp_path / "store")
    storage.put_file(write(tmp_path / "a.txt", b"a"), ".txt")
    assert sorted(os.listdir(tmp)) == ["running.part"]


def test_stale_sweep_ignores_an_entry_another_save_just_published(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Threads share the temp area: a .part listed by the sweep may be renamed into place
    before the sweep looks at its age (this failed CI once under 8 threads)."""
    from biolake.storage import local

    tmp = tmp_path / "store" / ".biolake" / "tmp"
    vanishing = write(tmp / "published.part", b"a save that finishes meanwhile")
    real_listdir = os.listdir

    def list_then_publish(path: Any) -> list[str]:
        names = real_listdir(path)
        if Path(path) == tmp and vanishing.exists():
            vanishing.unlink()  # the other thread's rename happens here
        return names

    monkeypatch.setattr(local.os, "listdir", list_then_publish)
    storage = LocalStorage(tmp_path / "store")
    stored = storage.put_file(write(tmp_path / "a.txt", b"a"), ".txt")
    assert storage.local_path(stored.key).read_bytes() == b"a"
    assert storage.stale_temp() == []
    assert os.listdir(tmp) == []


_HOLD_A_TEMP_ENTRY = """
import sys
from biolake.storage import LocalStorage
storage = LocalStorage(sys.argv[1])
temp = storage._tmp_path()
temp.write_bytes(b"half a copy")
print(temp.name, flush=True)
sys.stdin.read()  # a save that runs until the test ends it
"""


def _process_holding_a_temp_entry(root: Path) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, "-c", _HOLD_A_TEMP_ENTRY, str(root)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    return process, process.stdout.readline().strip()


def _end(process: subprocess.Popen[str]) -> None:
    """SIGKILL, as a lost node or the OOM killer would end a save."""
    process.kill()
    process.communicate()  # and close the pipes


def test_temp_entries_of_killed_processes_are_stale_running_ones_never(tmp_path: Path) -> None:
    """Ownership, not age, decides: a killed writer's entry goes however young it is, a running
    writer's stays however old it is, and its lock file stays with it."""
    from biolake.storage.temp_owners import STALE_AFTER

    root = tmp_path / "store"
    running, running_name = _process_holding_a_temp_entry(root)
    killed, killed_name = _process_holding_a_temp_entry(root)
    try:
        _end(killed)
        tmp = root / ".biolake" / "tmp"
        long_ago = os.stat(tmp / running_name).st_mtime - STALE_AFTER - 60
        os.utime(tmp / running_name, (long_ago, long_ago))
        storage = LocalStorage(root)
        assert storage.stale_temp() == [(f".biolake/tmp/{killed_name}", len(b"half a copy"))]
        assert storage.remove_stale_temp() == [f".biolake/tmp/{killed_name}"]
        assert os.listdir(tmp) == [running_name]
        locks = sorted(os.listdir(root / ".biolake" / "tmp-locks"))
        assert locks == [running_name.split("-")[0] + ".lock"]
        assert storage.stale_temp() == []
    finally:
        _end(running)
    assert storage.remove_stale_temp() == [f".biolake/tmp/{running_name}"]
    assert os.listdir(tmp) == [] and os.listdir(root / ".biolake" / "tmp-locks") == []


def test_one_process_never_sweeps_another_storage_objects_entries(tmp_path: Path) -> None:
    """flock conflicts between two descriptors of one process: two storage objects on one root
    (two instances open in one process) keep each other's entries."""
    first, second = LocalStorage(tmp_path / "store"), LocalStorage(tmp_path / "store")
    temp = first._tmp_path()
    temp.write_bytes(b"half a copy")
    assert second.stale_temp() == [] and second.remove_stale_temp() == []
    assert temp.exists()


def test_shard_folders_are_made_up_front_and_again_when_missing(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "store")
    first = storage.put_file(write(tmp_path / "a.txt", b"a"), ".txt")
    objects = tmp_path / "store" / ".biolake" / "objects"
    assert sorted(os.listdir(objects)) == [f"{i:02x}" for i in range(256)]
    storage.delete(first.key)
    shard = objects / first.key.split("/")[-2]
    shard.rmdir()  # e.g. removed by hand
    again = storage.put_file(write(tmp_path / "a.txt", b"a"), ".txt")
    assert storage.local_path(again.key).read_bytes() == b"a"
