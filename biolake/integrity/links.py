"""References to rows that do not exist.

The database enforces foreign keys (SQLite with ``PRAGMA foreign_keys=ON``, which biolake sets
on every connection), so these break only from outside: a tool that opens the SQLite file
without that pragma (the ``sqlite3`` shell, a script), a PostgreSQL session with triggers off
(``session_replication_role = replica``, as some restores run), or a restore of part of the
tables. Every foreign key of the schema is checked, plus the one reference the database cannot
enforce: a tracked function's stored result naming an artifact by uid (``runs.result``), which
a permanent delete of that artifact leaves dangling.

What a repair does depends on the row: a link row (a run's input, an artifact's project, a
record's parent) is deleted, since what it linked is gone; an optional reference is set to
NULL; a feature value whose host, feature or record is gone is deleted only with ``yes`` (it
is data); a required reference (a run's transform, a row's creator) cannot be repaired.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Column, ForeignKey, Table, delete, exists, select, update
from sqlalchemy.sql.elements import ColumnElement

from biolake.core.instance import Instance
from biolake.core.schema.base import Base
from biolake.errors import IntegrityError, join_capped
from biolake.integrity.report import Finding
from biolake.registries.artifact import Artifact
from biolake.registries.run import Run

__all__ = ["find_broken_links", "repair_links"]

MAX_IDS = 1000  # missing ids kept in a finding's details


def find_broken_links(instance: Instance) -> list[Finding]:
    findings = []
    for table in Base.metadata.sorted_tables:
        for fk in sorted(table.foreign_keys, key=lambda fk: fk.parent.name):
            finding = _dangling(instance, table, fk)
            if finding is not None:
                findings.append(finding)
    return findings + _dangling_results(instance)


def _broken(fk: ForeignKey) -> ColumnElement[bool]:
    column, target = fk.parent, fk.column
    return column.is_not(None) & ~exists().where(target == column)


def _dangling(instance: Instance, table: Table, fk: ForeignKey) -> Finding | None:
    column, target = fk.parent, fk.column
    session = instance.db.session
    missing = session.execute(select(column).where(_broken(fk))).scalars().all()
    instance.db.end_read()
    if not missing:
        return None
    ids = sorted(set(missing))
    rows, what_rows = len(missing), "row" if len(missing) == 1 else "rows"
    repair, fix = _repair_of(table, column, target.table.name)
    return Finding(
        kind="broken_link",
        what=(
            f"{rows} {what_rows} refer to {target.table.name} that do not exist "
            f"(id {join_capped(map(str, ids))})"
        ),
        where=f"{table.name}.{column.name}",
        fix=fix,
        repair=repair,
        details={
            "table": table.name,
            "column": column.name,
            "refers_to": target.table.name,
            "rows": rows,
            "missing_ids": ids[:MAX_IDS],
        },
    )


def _repair_of(table: Table, column: Column[Any], target: str) -> tuple[str, str]:
    if _is_link_table(table):
        return "safe", f"deletes these links: the {target} they link to are gone"
    if table.name.endswith("_feature_values"):
        return "yes", f"deletes these feature values: the {target} they belong to are gone"
    if column.nullable:
        return "safe", f"sets {column.name} to NULL on these rows: what it named is gone"
    return "none", (
        f"restore the missing {target} rows from a backup; or delete the {table.name} rows "
        "that need them"
    )


def _is_link_table(table: Table) -> bool:
    """A many-to-many table: nothing but the two ids it links (its primary key)."""
    return all(c.primary_key and c.foreign_keys for c in table.columns)


def _dangling_results(instance: Instance) -> list[Finding]:
    """Runs whose stored result (``@ln.tracked(cache=True)``) names an artifact that is gone."""
    session = instance.db.session
    runs = session.execute(select(Run.uid, Run.result).where(Run.result.is_not(None))).all()
    named = {uid: set(_artifact_uids(result)) for uid, result in runs}
    wanted = sorted(set().union(*named.values())) if named else []
    present: set[str] = set()
    for i in range(0, len(wanted), 500):
        chunk = wanted[i : i + 500]
        present.update(session.scalars(select(Artifact.uid).where(Artifact.uid.in_(chunk))))
    instance.db.end_read()
    findings = []
    for run_uid, uids in sorted(named.items()):
        gone = sorted(uids - present)
        if gone:
            findings.append(
                Finding(
                    kind="broken_link",
                    what=f"its stored result returns artifact {join_capped(gone)}, which is gone",
                    where=f"run {run_uid} (runs.result)",
                    fix="clears the stored result: the cached call runs again instead",
                    repair="safe",
                    details={"table": "runs", "column": "result", "run": run_uid, "missing": gone},
                )
            )
    return findings


def _artifact_uids(value: Any) -> list[str]:
    """The uids in a stored result: an artifact is stored as ``{"artifact": uid}``."""
    if isinstance(value, list):
        return [uid for item in value for uid in _artifact_uids(item)]
    if isinstance(value, dict):
        if set(value) == {"artifact"} and isinstance(value["artifact"], str):
            return [value["artifact"]]
        return [uid for item in value.values() for uid in _artifact_uids(item)]
    return []


def repair_links(instance: Instance, findings: list[Finding], yes: bool) -> None:
    """Repair the broken links that ``repair`` allows (``"yes"`` ones only with ``yes``), each
    in its own write: one that the database refuses stays reported, with the reason."""
    for finding in findings:
        if finding.kind != "broken_link" or finding.repair == "none":
            continue
        if finding.repair == "yes" and not yes:
            continue
        try:
            with instance.db.write() as session:
                session.execute(_repair_statement(finding))
        except IntegrityError as exc:
            finding.fix += f" (the database refused it: {exc})"
            continue
        finding.repaired = True


def _repair_statement(finding: Finding) -> Any:
    details = finding.details
    if details["column"] == "result":
        return update(Run).where(Run.uid == details["run"]).values(result=None)
    table = Base.metadata.tables[details["table"]]
    column = table.c[details["column"]]
    fk = next(iter(column.foreign_keys))
    if _is_link_table(table) or table.name.endswith("_feature_values"):
        return delete(table).where(_broken(fk))
    return update(table).where(_broken(fk)).values({column.name: None})
