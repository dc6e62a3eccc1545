"""Tests of biolake.storage.hashing: known values, files, the folder scheme and round-trips."""

from __future__ import annotations

import io
import os
import shutil
import tempfile
from pathlib import Path

import blake3
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from biolake.errors import StorageError, ValidationError
from biolake.storage.hashing import (
    CHUNK_SIZE,
    FOLDER_CONTEXT,
    FolderHasher,
    copy_and_hash,
    copy_and_hash_file,
    hash_bytes,
    hash_file,
    hash_folder,
    hash_hex,
    hash_path,
    list_folder,
)

EMPTY = "blake3:af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
# Sizes around buffer edges: tiny, the small-file buffer, one chunk, and the pipelined path.
SIZES = [0, 1, 1024, 64 * 1024, 64 * 1024 + 1, CHUNK_SIZE, 2 * CHUNK_SIZE + 12_345]


def reference(data: bytes) -> str:
    return "blake3:" + blake3.blake3(data).hexdigest()


def expected_folder_hash(files: dict[str, bytes]) -> str:
    """The documented biolake-folder-v1 scheme, written out independently of the module."""
    hasher = blake3.blake3(derive_key_context=FOLDER_CONTEXT)
    for relpath in sorted(files, key=lambda p: p.encode()):
        path, data = relpath.encode(), files[relpath]
        hasher.update(len(path).to_bytes(8, "little") + path)
        hasher.update(len(data).to_bytes(8, "little") + blake3.blake3(data).digest())
    return "blake3:" + hasher.hexdigest()


def write_tree(root: Path, files: dict[str, bytes]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for relpath, data in files.items():
        (root / relpath).parent.mkdir(parents=True, exist_ok=True)
        (root / relpath).write_bytes(data)
    return root


def test_known_values() -> None:
    assert hash_bytes(b"") == EMPTY
    assert hash_bytes(b"hello world") == reference(b"hello world")
    assert hash_bytes(bytearray(b"abc")) == hash_bytes(memoryview(b"abc")) == reference(b"abc")


@pytest.mark.parametrize("size", SIZES)
def test_hash_file_equals_hash_of_bytes(tmp_path: Path, size: int) -> None:
    data = os.urandom(size)
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    assert hash_file(path) == hash_bytes(data) == reference(data)
    assert hash_path(path) == hash_bytes(data)


@pytest.mark.parametrize("size", SIZES)
def test_copy_and_hash_file_copies_every_byte(tmp_path: Path, size: int) -> None:
    data = os.urandom(size)
    src = tmp_path / "src.bin"
    src.write_bytes(data)
    with open(tmp_path / "dst.bin", "wb", buffering=0) as dst:
        digest = copy_and_hash_file(src, dst)
    assert digest == (reference(data), size)
    assert (tmp_path / "dst.bin").read_bytes() == data


class TrickleWriter:
    """A raw writer that accepts at most 1000 bytes per call, as raw file objects may."""

    def __init__(self, fail_after: int | None = None) -> None:
        self.out = bytearray()
        self.fail_after = fail_after

    def write(self, data: memoryview) -> int:
        if self.fail_after is not None and len(self.out) >= self.fail_after:
            raise OSError(28, "No space left on device (simulated)")
        self.out += data[:1000]
        return min(len(data), 1000)


@pytest.mark.parametrize("size_hint", [None, 10, 3 * CHUNK_SIZE])
def test_copy_and_hash_handles_short_writes(size_hint: int | None) -> None:
    data = os.urandom(CHUNK_SIZE + 5000)
    writer = TrickleWriter()
    digest = copy_and_hash(io.BytesIO(data), writer, size_hint=size_hint)
    assert digest == (reference(data), len(data))
    assert bytes(writer.out) == data


@pytest.mark.parametrize("size_hint", [None, 3 * CHUNK_SIZE])
def test_copy_and_hash_raises_write_errors(size_hint: int | None) -> None:
    data = os.urandom(3 * CHUNK_SIZE)
    with pytest.raises(OSError, match="No space left"):
        copy_and_hash(io.BytesIO(data), TrickleWriter(fail_after=CHUNK_SIZE), size_hint=size_hint)


def test_a_file_that_shrinks_while_read_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from biolake.storage import hashing

    src = tmp_path / "growing.bin"
    src.write_bytes(os.urandom(3 * CHUNK_SIZE))

    class Shrinking(io.FileIO):
        def readinto(self, buffer: memoryview) -> int | None:  # type: ignore[override]
            if self.tell() > 0:
                os.truncate(src, CHUNK_SIZE)  # another program rewrites the file under us
            return super().readinto(buffer)

    monkeypatch.setattr(hashing, "open", lambda *a, **k: Shrinking(src, "rb"), raising=False)
    with pytest.raises(StorageError, match="changed while it was being read"):
        hash_file(src)


def test_hash_hex() -> None:
    assert hash_hex(EMPTY) == EMPTY.removeprefix("blake3:")
    for bad in ["", EMPTY.removeprefix("blake3:"), "md5:" + "0" * 64, EMPTY[:-1], EMPTY.upper()]:
        with pytest.raises(ValidationError, match="not a biolake hash"):
            hash_hex(bad)


# --- folders ----------------------------------------------------------------------------------

FILES = {"a.txt": b"alpha", "b.txt": b"beta", "raw/c.bin": b"\x00\x01\x02", "raw/deep/d": b""}


def test_folder_hash_follows_the_documented_scheme(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "f", FILES)
    assert hash_folder(root) == expected_folder_hash(FILES)
    assert hash_path(root) == hash_folder(root)
    assert [rel for rel, _ in list_folder(root)] == ["a.txt", "b.txt", "raw/c.bin", "raw/deep/d"]


def test_empty_folder_has_a_defined_hash(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    assert hash_folder(tmp_path / "empty") == FolderHasher().hash() == expected_folder_hash({})
    assert hash_folder(tmp_path / "empty") != hash_bytes(b"")


@pytest.mark.parametrize(
    "change",
    [
        {"a.txt": None, "A.txt": b"alpha"},  # rename a file
        {"a.txt": b"alphA"},  # change one byte
        {"a.txt": None, "raw/a.txt": b"alpha"},  # move a file into a subfolder
        {"a.txt": b"alphab", "b.txt": b"eta"},  # move bytes from one file into another
        {"e.txt": b""},  # add an empty file
    ],
)
def test_folder_hash_changes(tmp_path: Path, change: dict[str, bytes | None]) -> None:
    changed = {k: v for k, v in {**FILES, **change}.items() if v is not None}
    before = hash_folder(write_tree(tmp_path / "before", FILES))
    assert hash_folder(write_tree(tmp_path / "after", changed)) != before


def test_folder_hash_is_unchanged_by_copying_and_empty_subfolders(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "f", FILES)
    before = hash_folder(root)
    shutil.copytree(root, tmp_path / "elsewhere" / "copy")
    assert hash_folder(tmp_path / "elsewhere" / "copy") == before
    (root / "empty" / "sub").mkdir(parents=True)  # object stores cannot hold empty folders
    assert hash_folder(root) == before


def test_folder_symlink_to_a_file_inside_is_followed(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "f", {"a.txt": b"alpha"})
    (root / "link.txt").symlink_to("a.txt")
    assert hash_folder(root) == expected_folder_hash({"a.txt": b"alpha", "link.txt": b"alpha"})


# The other symlink cases: tests/storage/test_folders.py.


def test_folder_rejects_fifos_and_non_folders(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "f", {"a.txt": b"alpha"})
    with pytest.raises(NotADirectoryError):
        hash_folder(root / "a.txt")
    os.mkfifo(root / "pipe")
    with pytest.raises(ValidationError, match="not a regular file"):
        hash_folder(root)


def test_folder_hasher_requires_sorted_relative_paths() -> None:
    hasher = FolderHasher()
    hasher.add("b", 0, EMPTY)
    with pytest.raises(ValueError, match="sorted order"):
        hasher.add("a", 0, EMPTY)
    for bad in ["/abs", "a/../b", "a//b", "./a", ""]:
        with pytest.raises(ValidationError, match="not a relative POSIX path"):
            FolderHasher().add(bad, 0, EMPTY)


# --- round-trips ------------------------------------------------------------------------------


@settings(max_examples=50, deadline=None)
@given(st.binary(max_size=200_000))
def test_round_trip_bytes(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "f"
        path.write_bytes(data)
        assert hash_file(path) == hash_bytes(data) == reference(data)
        sink = io.BytesIO()
        assert copy_and_hash_file(path, sink) == (reference(data), len(data))
        assert sink.getvalue() == data


# Directory names start with "d" and file names with "f", so a path is never both.
_dir = st.text(alphabet="abé ü_-.", min_size=1, max_size=4).map(lambda s: "d" + s)
_file = st.text(alphabet="abé ü_-.", min_size=1, max_size=4).map(lambda s: "f" + s)
_relpath = st.tuples(st.lists(_dir, max_size=3), _file).map(lambda t: "/".join([*t[0], t[1]]))
_trees = st.dictionaries(_relpath, st.binary(max_size=300), max_size=8)


@settings(max_examples=40, deadline=None)
@given(_trees)
def test_round_trip_trees(files: dict[str, bytes]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        first = write_tree(Path(tmp) / "one", files)
        second = write_tree(Path(tmp) / "two", dict(reversed(list(files.items()))))
        assert hash_folder(first) == hash_folder(second) == expected_folder_hash(files)
