"""The files a run keeps besides its outputs: its report and its environment.

Both are artifacts with ``visibility="hidden"``, so that ``load()`` works on them
(``run.report.load()``) while ordinary listings, searches and ``run.outputs`` leave them out.
Their keys lie under ``.biolake/``, which user keys cannot use:

- ``.biolake/reports/<run uid>.txt``: what the run's process printed (stdout and stderr);
- ``.biolake/environments/<fingerprint>.txt``: the installed packages, one artifact per
  environment fingerprint, shared by every run in that environment.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sqlalchemy import select

from biolake.core.instance import META_DIR, Instance
from biolake.errors import IntegrityError
from biolake.tracking import context
from biolake.tracking.environment import fingerprint, package_list

REPORTS = f"{META_DIR}/reports"
ENVIRONMENTS = f"{META_DIR}/environments"
_environment_ids: dict[tuple[str, str], int] = {}  # (instance root, fingerprint) -> artifact id


def report_path(instance: Instance, run_uid: str) -> Path:
    """Where the report of a run of this process is written while it runs."""
    return instance.root / META_DIR / "reports" / f"{run_uid}.log"


def save_report(model: Any, instance: Instance, run_uid: str, path: Path) -> int | None:
    """Register the report file of run ``run_uid`` and remove the file; the artifact's id, or
    None when the run printed nothing."""
    try:
        if path.stat().st_size == 0:
            path.unlink()
            return None
    except FileNotFoundError:
        return None
    key = f"{REPORTS}/{run_uid}.txt"  # no other save uses it: no earlier versions to look up
    artifact_id = _save_hidden(model, instance, path, key, "report", fresh_key=True)
    path.unlink(missing_ok=True)
    return artifact_id


def environment(model: Any, instance: Instance) -> tuple[int, str]:
    """The id of the artifact listing this process's environment, and its fingerprint: looked
    up by the fingerprint (a few ms); only for a new fingerprint is the package list built
    from the installed distributions' metadata, and saved."""
    found = fingerprint()
    cached = _environment_ids.get((str(instance.root), found))
    if cached is not None:
        return cached, found
    key = f"{ENVIRONMENTS}/{found.rpartition(':')[2]}.txt"  # the hex digits name it
    existing = _hidden_id(model, instance, key)
    if existing is not None:
        artifact_id = existing
    else:
        folder = instance.root / META_DIR / "staging"
        folder.mkdir(parents=True, exist_ok=True)
        import tempfile  # once per environment

        fd, name = tempfile.mkstemp(suffix=".txt", dir=folder)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(package_list())
            artifact_id = _save_hidden(model, instance, Path(name), key, "environment")
        except IntegrityError:  # another process of the same environment saved it first
            found_id = _hidden_id(model, instance, key)
            if found_id is None:
                raise
            artifact_id = found_id
        finally:
            os.unlink(name)
    _environment_ids[(str(instance.root), found)] = artifact_id
    return artifact_id, found


def _hidden_id(model: Any, instance: Instance, key: str) -> int | None:
    """The id of the hidden artifact under ``key`` (one indexed lookup)."""
    table = model.__table__
    found = instance.db.session.execute(
        select(table.c.id).where(
            table.c.key == key, table.c.is_latest.is_(True), table.c.visibility == "hidden"
        )
    ).scalar()
    instance.db.end_read()
    return None if found is None else int(found)


def _save_hidden(
    model: Any, instance: Instance, path: Path, key: str, kind: str, fresh_key: bool = False
) -> int:
    artifact = model(path)
    artifact.key = key  # under .biolake/: set here, where the constructor would refuse it
    artifact.kind = kind
    artifact.visibility = "hidden"
    with context.untracked():  # a run's own files are not its outputs
        saved = model._save_many(instance, [artifact], fresh_keys=fresh_key)[0]
    return int(saved.id)
