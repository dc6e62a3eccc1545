"""Saving folders with symlinks, and files that change while they are saved, as artifacts.

The rule itself is tested in ``tests/storage/test_folders.py``; here: a refused or failed save
leaves no row, no stored object and no temp file, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

import biolake as ln
from biolake.errors import StorageError, ValidationError

OUTSIDE = b"outside bytes that must never be stored"
BIG = 16 * 1024 * 1024  # long enough to copy that the writer changes it meanwhile


def stored_files(instance) -> list[Path]:
    objects = instance.root / ".biolake" / "objects"
    return sorted(p for p in objects.rglob("*") if p.is_file()) if objects.exists() else []


def temp_files(instance) -> list[str]:
    tmp = instance.root / ".biolake" / "tmp"
    return os.listdir(tmp) if tmp.exists() else []


def folder_with(tmp_path: Path, link_target: str) -> Path:
    (tmp_path / "outside.txt").write_bytes(OUTSIDE)
    folder = tmp_path / "run.zarr"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_bytes(b"alpha")
    (folder / "sub" / "b.txt").write_bytes(b"beta")
    (folder / "link").symlink_to(link_target.format(tmp=tmp_path))
    return folder


def test_a_link_to_a_file_inside_is_saved_as_that_file(instance, tmp_path: Path) -> None:
    folder = folder_with(tmp_path, "sub/b.txt")
    artifact = ln.Artifact(folder, key="run.zarr").save()
    stored = artifact.cache()
    assert (stored / "link").read_bytes() == b"beta" and not (stored / "link").is_symlink()
    assert artifact.n_files == 3


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("../outside.txt", "points outside the folder, to '{tmp}/outside.txt'"),
        ("/dev/zero", "points outside the folder, to '/dev/zero'"),
        ("..", "points outside the folder"),
        (".", "is a loop"),
        ("link", "is a loop"),
        ("sub", "points to the folder"),
        ("fifo", "not a regular file"),
    ],
)
def test_a_refused_link_saves_nothing(instance, tmp_path: Path, target: str, message: str) -> None:
    """Refused before a byte is copied, with the link named, and never waiting on a FIFO or
    reading /dev/zero (the fuzzer's symlink loop escaped as a raw error)."""
    folder = folder_with(tmp_path, target)
    if target == "fifo":
        os.mkfifo(folder / "fifo")
    with pytest.raises(ValidationError, match=message.format(tmp=tmp_path)) as info:
        ln.Artifact(folder, key="run.zarr").save()
    assert repr(str(folder / "link")) in str(info.value) or target == "fifo"
    assert ln.Artifact.filter().count() == 0
    assert stored_files(instance) == [] and temp_files(instance) == []


def test_a_link_swapped_during_saves_never_stores_outside_bytes(
    instance, tmp_path: Path, churn: Callable[..., None]
) -> None:
    """Another process repoints a link between a file inside the folder and one outside while
    this one saves the folder again and again: each save stores the inside file or fails."""
    folder = folder_with(tmp_path, "a.txt")
    churn("swap-link", folder / "link", "a.txt", "../outside.txt")
    outcomes = {"saved": 0, "refused": 0}
    for i in range(100):
        try:
            ln.Artifact(folder, key=f"run{i}.zarr").save()
            outcomes["saved"] += 1
        except (ValidationError, StorageError):
            outcomes["refused"] += 1
    assert not any(OUTSIDE in path.read_bytes() for path in stored_files(instance)), outcomes
    assert ln.Artifact.filter().count() == outcomes["saved"]
    assert len({a.hash for a in ln.Artifact.filter()}) <= 1  # the folder with link -> a.txt
    assert temp_files(instance) == []


def test_a_file_rewritten_during_its_save_is_not_registered(
    instance, tmp_path: Path, churn: Callable[..., None]
) -> None:
    """A writer rewrites the file during the save and puts its mtime back: the save fails with
    the file named, and leaves no row, no object and no temp file."""
    path = tmp_path / "big.bin"
    with open(path, "wb") as f:
        f.truncate(BIG)
    churn("rewrite", path)
    failures = 0
    for _ in range(10):
        try:
            ln.Artifact(path, key="big.bin").save()
        except StorageError as exc:
            assert f"{str(path)!r} changed while it was being read" in str(exc)
            failures += 1
    assert failures > 0  # most saves overlap a change
    # Between two generations the first bytes are never older than the last ones.
    for artifact in ln.Artifact.filter():
        data = artifact.cache().read_bytes()
        assert int.from_bytes(data[:8], "little") >= int.from_bytes(data[-8:], "little")
    assert len(stored_files(instance)) <= ln.Artifact.filter().count()  # no orphan object
    assert temp_files(instance) == []
