"""Saving folders with symlinks, and files that change while they are saved.

The symlink rule (``biolake/storage/folders.py``): a link to a file inside the folder is
followed, anything else a link can point to is refused, and what is read is never reached
through a link, so swapping one during a save cannot make it read outside the folder.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from test_storage import BACKENDS, leftovers, write, write_tree

from biolake.errors import StorageError, ValidationError
from biolake.storage import LocalStorage, MemoryStorage, Storage
from biolake.storage._direct import DIRECT_MIN_SIZE
from biolake.storage.folders import open_folder
from biolake.storage.hashing import hash_folder, list_folder

OUTSIDE = b"outside bytes that must never be stored"
END = 4096  # bytes at each end of the big files; tests/churn.py changes them
# Large enough for the pipelined copy and direct writes, and to take ~20 ms: the writer
# changes it many times meanwhile.
BIG = DIRECT_MIN_SIZE


@pytest.fixture(params=BACKENDS)
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    if request.param == "memory":
        return MemoryStorage()
    return LocalStorage(tmp_path / "store", fsync=request.param == "local")


def stored_bytes(storage: Storage) -> list[bytes]:
    """The content of every file of every stored object."""
    contents = []
    for key in storage.iter_keys():
        path = storage.local_path(key)
        files = [p for p in path.rglob("*") if p.is_file()] if path.is_dir() else [path]
        contents += [p.read_bytes() for p in files]
    return contents


# --- the symlink rule -------------------------------------------------------------------------


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    write(tmp_path / "outside.txt", OUTSIDE)
    return write_tree(tmp_path / "f", {"a.txt": b"alpha", "sub/b.txt": b"beta"})


@pytest.mark.parametrize(
    ("link", "target", "followed_to"),
    [
        ("link.txt", "a.txt", b"alpha"),
        ("sub/up.txt", "../a.txt", b"alpha"),
        ("out_and_in.txt", "../f/sub/b.txt", b"beta"),
        ("chain.txt", "sub/to_a", b"alpha"),  # a link to a link inside, to a file inside
        ("absolute.txt", "{root}/sub/b.txt", b"beta"),
    ],
)
def test_a_link_to_a_file_inside_is_stored_as_that_file(
    folder: Path, link: str, target: str, followed_to: bytes
) -> None:
    (folder / "sub" / "to_a").symlink_to("../a.txt")
    (folder / link).symlink_to(target.format(root=folder))
    listed = dict(list_folder(folder))
    assert listed[link].read_bytes() == followed_to
    assert not listed[link].is_symlink()  # the bytes are read from the file, not via the link
    assert hash_folder(folder) == hash_folder(_copy_followed(folder))


def _copy_followed(folder: Path) -> Path:
    copy = folder.with_name("copy")
    for relpath, path in list_folder(folder):
        write(copy / relpath, path.read_bytes())
    return copy


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("../outside.txt", "points outside the folder, to '{tmp}/outside.txt'"),
        ("{tmp}/outside.txt", "points outside the folder, to '{tmp}/outside.txt'"),
        ("..", "points outside the folder, to '{tmp}'"),
        ("/dev/zero", "points outside the folder, to '/dev/zero'"),
        ("../pipe", "points outside the folder, to '{tmp}/pipe'"),
        ("sub", "points to the folder '{tmp}/f/sub'"),
        (".", "is a loop: it points to '{tmp}/f', a folder that contains it"),
        ("sub/..", "is a loop: it points to '{tmp}/f', a folder that contains it"),
        ("link", "is a loop: following it never ends"),  # the link points to itself
        ("back", "is a loop: following it never ends"),  # link -> back -> link
        ("missing.txt", "points to nothing"),
    ],
)
def test_links_to_anything_else_are_refused(
    folder: Path, tmp_path: Path, target: str, message: str
) -> None:
    os.mkfifo(tmp_path / "pipe")  # opening it would wait for a writer: it is never opened
    (folder / "link").symlink_to(target.format(tmp=tmp_path))
    if target == "back":
        (folder / "back").symlink_to("link")
    error = FileNotFoundError if target == "missing.txt" else ValidationError
    with pytest.raises(error) as info:
        hash_folder(folder)
    text = str(info.value)
    assert message.format(tmp=tmp_path) in text
    assert repr(str(folder / "link")) in text or repr(str(folder / "back")) in text


def test_a_link_to_a_fifo_inside_is_refused_without_blocking(folder: Path) -> None:
    os.mkfifo(folder / "sub" / "pipe")
    (folder / "pipe_link").symlink_to("sub/pipe")
    with pytest.raises(ValidationError, match="not a regular file"):
        hash_folder(folder)


def test_a_refused_link_stores_nothing(storage: Storage, folder: Path) -> None:
    (folder / "sub" / "loop").symlink_to("../sub")
    with pytest.raises(ValidationError, match="is a loop"):
        storage.put_folder(folder, "")
    assert leftovers(storage) == [] and list(storage.iter_keys()) == []


# --- what changes between the listing and the read -------------------------------------------


def test_a_folder_swapped_for_a_link_after_listing_is_never_read_through(
    folder: Path, tmp_path: Path
) -> None:
    write(tmp_path / "elsewhere" / "b.txt", OUTSIDE)
    with open_folder(folder) as listed:
        (folder / "sub").rename(tmp_path / "moved")
        (folder / "sub").symlink_to(tmp_path / "elsewhere")
        member = next(m for m in listed.members if m.relpath == "sub/b.txt")
        with pytest.raises(StorageError, match="changed while the folder was being saved"):
            listed.open(member)


def test_a_file_swapped_for_a_link_or_a_fifo_after_listing_is_not_read(
    folder: Path, tmp_path: Path
) -> None:
    with open_folder(folder) as listed:
        by_path = {m.relpath: m for m in listed.members}
        (folder / "a.txt").unlink()
        (folder / "a.txt").symlink_to(tmp_path / "outside.txt")
        with pytest.raises(StorageError, match="changed while the folder was being saved"):
            listed.open(by_path["a.txt"])
        (folder / "sub" / "b.txt").unlink()
        os.mkfifo(folder / "sub" / "b.txt")  # opening it for reading would wait for a writer
        with pytest.raises(ValidationError, match="not a regular file"):
            listed.open(by_path["sub/b.txt"])


# --- races ------------------------------------------------------------------------------------


def test_a_link_swapped_during_saves_never_stores_outside_bytes(
    storage: Storage, folder: Path, churn: Callable[..., None]
) -> None:
    """Another process repoints a link between a file inside and one outside, again and
    again, while this one saves the folder: a save stores the inside file or fails."""
    (folder / "link").symlink_to("a.txt")
    churn("swap-link", folder / "link", "a.txt", "../outside.txt")
    outcomes = {"stored": 0, "refused": 0}
    for _ in range(300):
        try:
            storage.put_folder(folder, "")
            outcomes["stored"] += 1
        except (ValidationError, StorageError):
            outcomes["refused"] += 1
    assert not any(OUTSIDE in content for content in stored_bytes(storage)), outcomes
    assert len(list(storage.iter_keys())) <= 1  # only the folder with the link to a.txt
    assert leftovers(storage) == []


def big_file(path: Path) -> Path:
    """A sparse file of BIG bytes, all zeros."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        f.truncate(BIG)
    return path


def torn(content: bytes) -> bool:
    """Whether a copy of the file tests/churn.py changes mixes bytes of different moments: it
    writes each generation first at the start, then at the end (its size stays; when cut, the
    end reads as zeros), so at any one moment the end is never newer than the start."""
    if len(content) == BIG // 2:  # read while cut in half, and unchanged meanwhile
        return False
    first, last = (int.from_bytes(content[i : i + 8], "little") for i in (0, BIG - END))
    return len(content) != BIG or last > first


@pytest.mark.parametrize(
    ("kind", "mode"), [("file", "rewrite"), ("folder member", "rewrite"), ("file", "truncate")]
)
def test_a_file_changed_during_a_save_fails_it(
    storage: Storage, tmp_path: Path, churn: Callable[..., None], mode: str, kind: str
) -> None:
    """A writer changes the file while it is saved and puts its mtime back: the save fails,
    naming the file, and stores nothing, rather than storing a copy torn between versions."""
    path = big_file(tmp_path / "src" / "big.bin")
    churn(mode, path)
    failures = 0
    for _ in range(10):
        try:
            if kind == "file":
                storage.put_file(path, ".bin")
            else:
                storage.put_folder(path.parent, "")
        except StorageError as exc:
            assert f"{str(path)!r} changed while it was being read" in str(exc)
            failures += 1
    assert failures > 0  # most saves overlap a change
    assert not any(torn(content) for content in stored_bytes(storage))
    assert leftovers(storage) == []
