"""Keys whose live versions (not in the trash) have no latest version, or more than one.

The database allows one latest version per stem (a unique index), and saves and renames of a
key take the key's lock, so neither happens through biolake; both come from edits outside it,
e.g. an UPDATE of ``is_latest``, or rows of two stems given one key. A repair makes the newest
live version (the highest id) the only latest one, when the creation times agree that it is
the newest; otherwise which one is newest is a guess, and the finding stays for a person.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import case, func, select, update

from biolake.artifacts.versioning import KEY_LOCKS
from biolake.core.instance import Instance
from biolake.integrity.report import Finding
from biolake.registries.artifact import Artifact

__all__ = ["find_version_problems", "repair_versions"]


def _live() -> Any:
    return (Artifact.key.is_not(None), Artifact.visibility != "trash")


def find_version_problems(instance: Instance) -> list[Finding]:
    a = Artifact
    latest = func.sum(case((a.is_latest.is_(True), 1), else_=0))
    statement = (
        select(a.key, latest, func.count()).where(*_live()).group_by(a.key).having(latest != 1)
    )
    keys = instance.db.session.execute(statement.order_by(a.key)).all()
    instance.db.end_read()
    return [_finding(instance, key, int(n_latest)) for key, n_latest, _ in keys]


def _finding(instance: Instance, key: str, n_latest: int) -> Finding:
    versions = _versions(instance, key)
    newest = _newest(versions)
    latest = [v for v in versions if v["is_latest"]]
    if n_latest == 0:
        kind, what = "no_latest_version", f"none of its {len(versions)} live versions is latest"
    else:
        kind = "two_latest_versions"
        what = f"{n_latest} versions are latest: {', '.join(_name(v) for v in latest)}"
    if newest is None:
        repair = "none"
        fix = (
            "ids and creation times disagree on which version is newest: make one latest by "
            "hand (artifact.restore() of the one to keep, after deleting the others)"
        )
    else:
        repair, fix = "safe", f"makes the newest, {_name(newest)}, the only latest version"
    return Finding(
        kind=kind,
        what=what,
        where=f"key {key!r}",
        fix=fix,
        repair=repair,
        details={"key": key, "latest": [v["uid"] for v in latest], "versions": len(versions)},
    )


def _versions(instance: Instance, key: str) -> list[dict[str, Any]]:
    a = Artifact
    columns = (a.id, a.uid, a.version, a.is_latest, a.created_at)
    statement = select(*columns).where(a.key == key, *_live()).order_by(a.id)
    rows = [r._asdict() for r in instance.db.session.execute(statement)]
    instance.db.end_read()
    return rows


def _newest(versions: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The version with the highest id, if no other one was created later."""
    if not versions:
        return None
    last = versions[-1]
    if any(v["created_at"] > last["created_at"] for v in versions):
        return None
    return last


def _name(version: dict[str, Any]) -> str:
    return f"version {version['version']} ({version['uid']})"


def repair_versions(instance: Instance, findings: list[Finding]) -> None:
    """Make the newest live version of each key latest, under the key's lock (as saves,
    deletes and restores take it), deciding again there."""
    for finding in findings:
        if finding.kind not in ("no_latest_version", "two_latest_versions"):
            continue
        if finding.repair != "safe":
            continue
        key = finding.details["key"]
        with instance.db.write() as session:
            instance.db.lock(KEY_LOCKS, [key])
            newest = _newest(_versions(instance, key))
            if newest is None:
                continue
            a = Artifact
            others = update(a).where(a.key == key, a.id != newest["id"], a.is_latest.is_(True))
            session.execute(others.values(is_latest=False))
            session.execute(update(a).where(a.id == newest["id"]).values(is_latest=True))
        finding.repaired = True
