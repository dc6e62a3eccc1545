"""Stored bytes cannot change unnoticed: the corruption matrix of cache(), load() and open(),
re-saves that repair a damaged object, and rows without a fingerprint — on SQLite and
PostgreSQL."""

from __future__ import annotations

import contextlib
import os
import re
import stat
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

import biolake as ln
from biolake.errors import CorruptObjectError, StorageError
from biolake.storage.hashing import hash_bytes, hash_path

CONTENT = b"hello stored world\n"


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def object_path(artifact: ln.Artifact) -> Path:
    return artifact._instance.storage.local_path(artifact.storage_key)


@contextlib.contextmanager
def writable(path: Path) -> Iterator[Path]:
    """Write access to a read-only stored file (root has it anyway), modes restored after;
    a chmod changes the ctime only, which fingerprints leave out."""
    targets = [path, path.parent]
    modes = [stat.S_IMODE(os.stat(p).st_mode) for p in targets]
    for target in targets:
        os.chmod(target, 0o755)
    try:
        yield path
    finally:
        for target, mode in zip(targets, modes, strict=True):
            if target.exists():
                os.chmod(target, mode)


def recorded_fingerprints(instance, key: str) -> list[str | None]:
    """The fingerprints on the rows of ``key``, read from the database, not the session."""
    with instance.db.engine.connect() as conn:
        query = text("SELECT storage_fingerprint FROM artifacts WHERE storage_key = :k")
        return [row[0] for row in conn.execute(query, {"k": key})]


def forget_fingerprints(instance) -> None:
    """Rows as saved before migration 0007."""
    with instance.db.engine.begin() as conn:
        conn.execute(text("UPDATE artifacts SET storage_fingerprint = NULL"))
    instance.db.session.expire_all()


# --- damage, as programs and people do it --------------------------------------------------------


def flip_in_place(path: Path) -> bytes:
    """One byte changed, same size, same inode (an editor saving in place, a bad sector)."""
    with writable(path), open(path, "r+b") as f:
        f.write(b"J")
    return b"J" + CONTENT[1:]


def flip_by_rewrite(path: Path) -> bytes:
    """One byte changed by a program that writes a new file and renames it over the old one."""
    damaged = b"J" + CONTENT[1:]
    with writable(path):
        tmp = write(path.with_name("rewrite.tmp"), damaged)
        os.replace(tmp, path)
    return damaged


def truncate(path: Path) -> bytes:
    with writable(path):
        os.truncate(path, 5)
    return CONTENT[:5]


def edit_through_cache(path: Path) -> bytes:
    """h5py.File(a.cache(), "r+") style: the path cache() returned, opened for writing."""
    with writable(path), open(path, "r+b") as f:
        f.seek(6)
        f.write(b"STORED")
    return CONTENT[:6] + b"STORED" + CONTENT[12:]


DAMAGE: dict[str, Callable[[Path], bytes]] = {
    "flip-in-place": flip_in_place,
    "flip-by-rewrite": flip_by_rewrite,
    "truncated": truncate,
    "edit-through-cache": edit_through_cache,
}


def saved(tmp_path: Path, key: str = "x.txt") -> tuple[ln.Artifact, Path]:
    source = write(tmp_path / "src" / key, CONTENT)
    return ln.Artifact(source, key=key).save(), source


# --- the corruption matrix ----------------------------------------------------------------------


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_damaged_object_is_refused_by_every_read(instance, tmp_path: Path, damage: str) -> None:
    artifact, _ = saved(tmp_path)
    other, _ = saved(tmp_path, "other/x.txt")  # another row sharing the object
    assert other.storage_key == artifact.storage_key
    path = artifact.cache() if damage == "edit-through-cache" else object_path(artifact)
    damaged = DAMAGE[damage](path)
    found = hash_bytes(damaged)
    for reader in (artifact, other):
        for read in (reader.cache, reader.load, lambda r=reader: r.open().__enter__()):
            with pytest.raises(CorruptObjectError) as caught:
                read()
            message = str(caught.value)
            assert f"artifact {reader.uid} (key {reader.key!r}, version 1)" in message
            assert f"expected hash {reader.hash}, found {found}" in message
            assert "artifact.versions" in message and ".save()" in message
    assert isinstance(caught.value, StorageError) and isinstance(caught.value, OSError)
    assert path.read_bytes() == damaged  # nothing was "fixed" behind the user's back


def test_missing_object_is_refused_by_every_read(instance, tmp_path: Path) -> None:
    artifact, _ = saved(tmp_path)
    path = object_path(artifact)
    with writable(path):
        path.unlink()
    for read in (artifact.cache, artifact.load, lambda: artifact.open().__enter__()):
        with pytest.raises(StorageError, match=r"\(key 'x.txt', version 1\) is missing") as caught:
            read()
        assert not isinstance(caught.value, CorruptObjectError)


def test_a_touch_is_not_corruption(instance, tmp_path: Path) -> None:
    artifact, _ = saved(tmp_path)
    path = object_path(artifact)
    saved_fingerprint = artifact.storage_fingerprint
    assert saved_fingerprint == instance.storage.fingerprint(artifact.storage_key)
    os.utime(path)  # now: too fresh to vouch for, so it is hashed on every read, not recorded
    for _ in range(2):
        assert artifact.load() == CONTENT.decode()
        assert artifact.cache() == path
        with artifact.open() as f:
            assert f.read() == CONTENT
        assert recorded_fingerprints(instance, artifact.storage_key) == [saved_fingerprint]
    hour_ago = time.time() - 3600
    os.utime(path, (hour_ago, hour_ago))  # an old time: hashed once, then recorded
    assert artifact.load() == CONTENT.decode()
    now = instance.storage.fingerprint(artifact.storage_key)
    assert now != saved_fingerprint
    assert artifact.storage_fingerprint == now
    assert recorded_fingerprints(instance, artifact.storage_key) == [now]


def test_an_edit_that_restores_the_mtime_is_seen_by_a_full_hash_only(
    instance, tmp_path: Path
) -> None:
    """The limit of a stat fingerprint, as in git: same size, inode and mtime."""
    artifact, _ = saved(tmp_path)
    path = object_path(artifact)
    before = os.stat(path)
    damaged = flip_in_place(path)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert artifact.load() == damaged.decode()  # served: nothing a stat can see changed
    check = instance.storage.check(artifact.storage_key, artifact.hash, None)  # a full hash
    assert (check.intact, check.found_hash) == (False, hash_bytes(damaged))


def test_damaged_folder_member_is_refused(instance, tmp_path: Path) -> None:
    src = tmp_path / "tree"
    write(src / "a.txt", b"alpha")
    write(src / "sub" / "b.txt", b"beta")
    artifact = ln.Artifact(src, key="tree").save()
    root = object_path(artifact)
    assert artifact.cache() == root
    flip = root / "sub" / "b.txt"
    with writable(flip), open(flip, "r+b") as f:
        f.write(b"B")
    with pytest.raises(CorruptObjectError, match=f"found {re.escape(hash_path(root))}"):
        artifact.cache()
    with writable(flip), open(flip, "r+b") as f:
        f.write(b"b")  # put back: intact again, the edit's mtime is recorded after a hash
    assert artifact.cache() == root
    with writable(root / "sub"):
        write(root / "sub" / "extra.txt", b"new")  # a member added
    with pytest.raises(CorruptObjectError):
        artifact.cache()


# --- re-saves repair ----------------------------------------------------------------------------


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_resave_of_the_original_repairs_the_object(instance, tmp_path: Path, damage: str) -> None:
    artifact, source = saved(tmp_path)
    other, _ = saved(tmp_path, "other/x.txt")
    DAMAGE[damage](object_path(artifact))
    again = ln.Artifact(source, key="x.txt").save()
    assert again == artifact and ln.Artifact.filter(key="x.txt").count() == 1
    path = object_path(artifact)
    assert path.read_bytes() == CONTENT
    assert not os.stat(path).st_mode & 0o222  # read-only again
    fingerprint = instance.storage.fingerprint(artifact.storage_key)
    assert recorded_fingerprints(instance, artifact.storage_key) == [fingerprint, fingerprint]
    assert artifact.load() == other.load() == CONTENT.decode()


def test_bulk_resave_repairs_a_damaged_object_among_new_ones(instance, tmp_path: Path) -> None:
    artifact, source = saved(tmp_path)
    flip_in_place(object_path(artifact))
    news = [write(tmp_path / "new" / f"n{i}.txt", b"new %d" % i) for i in range(5)]
    batch = [ln.Artifact(source, key="x.txt")]
    batch += [ln.Artifact(p, key=f"new/n{i}.txt") for i, p in enumerate(news)]
    saved_batch = ln.save(batch)
    assert saved_batch[0] == artifact
    assert artifact.load() == CONTENT.decode()
    assert [a.load() for a in saved_batch[1:]] == [f"new {i}" for i in range(5)]
    for a in saved_batch:
        assert a.storage_fingerprint == instance.storage.fingerprint(a.storage_key)


def test_resave_under_a_new_key_repairs_the_shared_object(instance, tmp_path: Path) -> None:
    artifact, source = saved(tmp_path)
    flip_in_place(object_path(artifact))
    copy = ln.Artifact(source, key="copies/x.txt").save()
    assert copy != artifact and copy.storage_key == artifact.storage_key
    assert artifact.load() == copy.load() == CONTENT.decode()


def test_resave_of_a_damaged_folder_repairs_it(instance, tmp_path: Path) -> None:
    src = tmp_path / "tree"
    write(src / "a.txt", b"alpha")
    artifact = ln.Artifact(src, key="tree").save()
    member = object_path(artifact) / "a.txt"
    with writable(member):
        os.truncate(member, 2)
    assert ln.Artifact(src, key="tree").save() == artifact
    assert member.read_bytes() == b"alpha"
    assert artifact.cache() == object_path(artifact)


def test_resave_of_an_intact_touched_object_keeps_it(instance, tmp_path: Path) -> None:
    artifact, source = saved(tmp_path)
    path = object_path(artifact)
    inode = os.stat(path).st_ino
    hour_ago = time.time() - 3600
    os.utime(path, (hour_ago, hour_ago))
    assert ln.Artifact(source, key="x.txt").save() == artifact
    assert os.stat(path).st_ino == inode  # hashed and found intact: not stored again
    assert artifact.storage_fingerprint == instance.storage.fingerprint(artifact.storage_key)


# --- rows without a fingerprint (saved before migration 0007) -------------------------------------


def test_rows_without_a_fingerprint_are_hashed_once_then_recorded(instance, tmp_path: Path) -> None:
    artifact, _ = saved(tmp_path)
    fingerprint = artifact.storage_fingerprint
    forget_fingerprints(instance)
    assert recorded_fingerprints(instance, artifact.storage_key) == [None]
    assert artifact.load() == CONTENT.decode()
    assert recorded_fingerprints(instance, artifact.storage_key) == [fingerprint]


def test_rows_without_a_fingerprint_still_refuse_damaged_bytes(instance, tmp_path: Path) -> None:
    artifact, source = saved(tmp_path)
    damaged = flip_in_place(object_path(artifact))
    forget_fingerprints(instance)
    with pytest.raises(CorruptObjectError, match=re.escape(hash_bytes(damaged))):
        artifact.load()
    assert recorded_fingerprints(instance, artifact.storage_key) == [None]
    assert ln.Artifact(source, key="x.txt").save() == artifact  # and a re-save repairs it
    assert artifact.load() == CONTENT.decode()


def test_a_link_added_inside_a_stored_folder_is_damage_and_a_resave_repairs_it(
    instance, tmp_path: Path
) -> None:
    src = tmp_path / "f.zarr"
    src.mkdir()
    (src / "a.txt").write_text("a")
    folder = ln.Artifact(src, key="f.zarr").save()
    stored = instance.storage.local_path(folder.storage_key)
    os.chmod(stored, 0o755)
    os.symlink("/etc/passwd", stored / "evil")
    with pytest.raises(CorruptObjectError, match=r"f\.zarr"):
        folder.cache()
    assert ln.Artifact(src, key="f.zarr").save() == folder
    assert sorted(p.name for p in folder.cache().iterdir()) == ["a.txt"]
