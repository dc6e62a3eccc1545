"""Rows against stored objects, both ways: rows whose object is missing, objects no row
references, temp files of killed saves, and rows whose hash does not name their storage key.

The storage side goes through the storage contract only (``iter_keys``, ``exists``, ``size``,
``stale_temp``, ``remove_stale_temp``), so a backend that can list its objects is checked too.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from sqlalchemy import select

from biolake.artifacts.versioning import IN_CHUNK, delete_unreferenced_now
from biolake.core.instance import META_DIR, Instance
from biolake.integrity.report import Finding
from biolake.registries.artifact import Artifact
from biolake.registries.describe import human_size
from biolake.storage.base import hash_of_key, is_object_key
from biolake.storage.temp_owners import STALE_AFTER

__all__ = ["ArtifactRow", "find_object_problems", "read_rows", "repair_objects"]

STAGING = f"{META_DIR}/staging"  # DataFrames and environment lists written before their save


class ArtifactRow(NamedTuple):
    id: int
    uid: str
    key: str | None
    version: str
    storage_key: str
    hash: str


def read_rows(instance: Instance) -> list[ArtifactRow]:
    """Every artifact row (trash and hidden ones too: they keep their bytes)."""
    a = Artifact
    columns = (a.id, a.uid, a.key, a.version, a.storage_key, a.hash)
    rows = [ArtifactRow(*r) for r in instance.db.session.execute(select(*columns).order_by(a.id))]
    instance.db.end_read()
    return rows


def label(row: ArtifactRow) -> str:
    """``artifact <uid> (key 'a.csv', version 2)``: where a finding about a row is."""
    key = f"key {row.key!r}" if row.key is not None else "no key"
    return f"artifact {row.uid} ({key}, version {row.version})"


def find_object_problems(
    instance: Instance, rows: list[ArtifactRow]
) -> tuple[list[Finding], set[str], int]:
    """The findings, the keys of the stored objects that rows reference (for rehashing), and
    how many objects the storage holds.

    Rows are read before the storage is listed: a save stores its bytes before its row, so an
    object a read row references was stored before the listing began.
    """
    storage = instance.storage
    stored = set(storage.iter_keys())
    referenced = {row.storage_key for row in rows}
    gone = [row for row in rows if row.storage_key not in stored]
    gone = _still_there(instance, [r for r in gone if not storage.exists(r.storage_key)])
    findings = [_missing(row) for row in gone]
    findings += [_unnamed(row) for row in rows if not is_object_key(row.storage_key, row.hash)]
    unreferenced = _unreferenced(instance, sorted(stored - referenced))
    findings += [_stray(instance, key) for key in unreferenced]
    findings += [_temp(key, size, "that was killed") for key, size in storage.stale_temp()]
    findings += [
        _temp(key, size, "that started a day ago or more") for key, size in _old_staging(instance)
    ]
    return findings, referenced & stored, len(stored)


def _still_there(instance: Instance, rows: list[ArtifactRow]) -> list[ArtifactRow]:
    """The rows among ``rows`` that still exist: a permanent delete removes the row first."""
    ids = {r.id for r in rows}
    present: set[int] = set()
    for chunk in _chunks(sorted(ids)):
        present.update(
            instance.db.session.scalars(select(Artifact.id).where(Artifact.id.in_(chunk)))
        )
    instance.db.end_read()
    return [r for r in rows if r.id in present]


def _unreferenced(instance: Instance, keys: list[str]) -> list[str]:
    """The keys among ``keys`` that no row references, asked again after the listing (a save
    may have registered its row meanwhile)."""
    used: set[str] = set()
    for chunk in _chunks(keys):
        rows = instance.db.session.scalars(
            select(Artifact.storage_key).where(Artifact.storage_key.in_(chunk))
        )
        used.update(rows)
    instance.db.end_read()
    return [key for key in keys if key not in used]


def _missing(row: ArtifactRow) -> Finding:
    again = f"ln.Artifact(path, key={row.key!r}).save()" if row.key else "ln.Artifact(path).save()"
    return Finding(
        kind="missing_object",
        what=f"its object {row.storage_key} is not in the storage",
        where=label(row),
        fix=(
            f"save the original file again ({again}): identical bytes restore the object; or "
            "use another version (artifact.versions), or delete the row "
            f"(ln.Artifact.filter(uid={row.uid!r}, visibility__in=['default', 'hidden', "
            "'trash']).one().delete(permanent=True))"
        ),
        repair="none",
        details={"uid": row.uid, "key": row.key, "storage_key": row.storage_key},
    )


def _unnamed(row: ArtifactRow) -> Finding:
    return Finding(
        kind="hash_mismatch",
        what=f"its hash {row.hash} does not name its storage key {row.storage_key}",
        where=label(row),
        fix="the row was changed outside biolake: restore it from a backup, or save the file again",
        repair="none",
        details={"uid": row.uid, "hash": row.hash, "storage_key": row.storage_key},
    )


def _stray(instance: Instance, key: str) -> Finding:
    size = _size(instance, key)
    hash_ = hash_of_key(key)
    details = {"storage_key": key, "size": size}
    if hash_ is None:
        return Finding(
            kind="stray_object",
            what=f"a file no save wrote ({human_size(size)}): its name is no content hash",
            where=key,
            fix="move it out of the objects folder by hand; check never deletes it",
            repair="none",
            details=details,
        )
    return Finding(
        kind="stray_object",
        what=f"{human_size(size)} that no artifact row references",
        where=key,
        fix="deletes it (a later save of the same bytes stores them again)",
        repair="yes",
        details={**details, "hash": hash_},
    )


def _size(instance: Instance, key: str) -> int | None:
    try:
        return instance.storage.size(key)
    except OSError:  # deleted meanwhile
        return None


def _temp(key: str, size: int, why: str) -> Finding:
    return Finding(
        kind="temp_file",
        what=f"{human_size(size)} left by a save {why}",
        where=key,
        fix="removes it",
        repair="safe",
        details={"path": key, "size": size},
    )


def _old_staging(instance: Instance) -> list[tuple[str, int]]:
    """Entries of the staging folder older than a day: the files a DataFrame or AnnData save
    writes before storing them, left by a process that died (younger ones may be in use)."""
    folder = instance.root / STAGING
    try:
        names = sorted(os.listdir(folder))
    except FileNotFoundError:
        return []
    cutoff = time.time() - STALE_AFTER
    found = []
    for name in names:
        path = folder / name
        try:
            if os.lstat(path).st_mtime < cutoff:
                found.append((f"{STAGING}/{name}", _tree_size(path)))
        except FileNotFoundError:
            continue
    return found


def _tree_size(path: Path) -> int:
    if not path.is_dir():
        return os.lstat(path).st_size
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def repair_objects(instance: Instance, findings: Sequence[Finding], yes: bool) -> None:
    """Remove stale temp files; with ``yes``, delete the stray objects (under the same bytes
    locks a save takes, so bytes a save has just registered stay)."""
    temps = {f.where: f for f in findings if f.kind == "temp_file"}
    if temps:
        instance.storage.remove_stale_temp()
        _remove_old_staging(instance, temps)
        # Asked again: another process's sweep may have removed some first.
        left = {key for key, _ in instance.storage.stale_temp()}
        left.update(key for key, _ in _old_staging(instance))
        for where, finding in temps.items():
            finding.repaired = where not in left
    strays = [f for f in findings if f.kind == "stray_object" and f.repair == "yes"]
    if yes and strays:
        pairs = [(f.where, f.details["hash"]) for f in strays]
        deleted = set(delete_unreferenced_now(Artifact, instance, pairs))
        for finding in strays:
            finding.repaired = finding.where in deleted


def _remove_old_staging(instance: Instance, temps: dict[str, Finding]) -> None:
    for key, _ in _old_staging(instance):  # still old, as of now
        if key in temps:
            path = instance.root / key
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)


def _chunks(items: Sequence[Any]) -> Iterable[Sequence[Any]]:
    return (items[i : i + IN_CHUNK] for i in range(0, len(items), IN_CHUNK))
