"""``ln.export_openlineage``: runs as OpenLineage RunEvents, one JSON object a line (NDJSON).

The events themselves are made by ``tracking.openlineage``; this module picks the runs, reads
them in pages of ``PAGE`` with their transforms, datasets and parents (a few IN queries a
page, none per run) and writes the lines.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from sqlalchemy import Select, or_, select
from sqlalchemy.orm import selectinload

from biolake import __version__
from biolake.core.connect import current_instance
from biolake.core.db import in_values
from biolake.core.instance import Instance
from biolake.errors import InvalidArgument
from biolake.query.queryset import QuerySet
from biolake.registries.artifact import Artifact
from biolake.registries.run import Run, run_inputs
from biolake.registries.storage import Storage
from biolake.registries.transform import Transform
from biolake.tracking.openlineage import Dataset, Producer, RunRef, dataset, run_events

__all__ = ["export_openlineage", "openlineage_events"]

PAGE = 500  # runs read at once: bounded memory for any number of runs, few round trips

RunSelection = QuerySet[Run] | Iterable[Run] | Run | None
ArtifactSelection = QuerySet[Artifact] | Iterable[Artifact] | Artifact | None


def openlineage_events(
    *, runs: RunSelection = None, artifacts: ArtifactSelection = None
) -> Iterator[dict[str, Any]]:
    """The OpenLineage RunEvents of ``runs`` (a QuerySet, a list or one run), of the runs that
    made or read ``artifacts`` (the same), or of every run of the current instance: per run,
    in the order of the runs' ids, START and then COMPLETE, FAIL or ABORT once it has ended.

    Example: ``next(ln.openlineage_events(runs=ln.Run.filter(status="errored")))["eventType"]``
    """
    instance, condition = _selection(runs, artifacts)  # here: a wrong selection fails at once
    return _events(instance, condition)


def _events(instance: Instance, condition: Any) -> Iterator[dict[str, Any]]:
    if condition is None:
        return
    producer = Producer.of(instance.name, __version__)
    for ids in _pages(instance, condition):
        yield from _page_events(instance, producer, ids)


def export_openlineage(
    target: str | os.PathLike[str] | IO[str] | None = None,
    *,
    runs: RunSelection = None,
    artifacts: ArtifactSelection = None,
) -> int:
    """Write the OpenLineage RunEvents of runs as NDJSON to ``target`` and return how many.

    ``target`` is a file path (written whole or not at all: to a temporary file that then
    replaces it), a writable text stream, or None for standard output. Which runs and which
    events: see :func:`openlineage_events`.

    Example: ``ln.export_openlineage("lineage.ndjson", artifacts=[ln.Artifact.get(key="a.csv")])``
    """
    events = openlineage_events(runs=runs, artifacts=artifacts)
    if target is None:
        return _write_lines(sys.stdout, events)
    if isinstance(target, str | os.PathLike):
        return _write_file(Path(target), events)
    return _write_lines(target, events)


# --- which runs ---------------------------------------------------------------------------


def _selection(runs: RunSelection, artifacts: ArtifactSelection) -> tuple[Instance, Any]:
    """The instance and a condition on ``Run.id`` selecting the runs (None: no run at all)."""
    if runs is not None and artifacts is not None:
        raise InvalidArgument(
            "Pass runs= or artifacts=, not both: export_openlineage(runs=...) exports those "
            "runs, export_openlineage(artifacts=...) the runs that made or read the artifacts."
        )
    if artifacts is not None:
        instance, ids = _ids(artifacts, Artifact, "artifacts")
        if ids is None:
            return instance, None
        made = select(Artifact.run_id).where(ids(Artifact.id))
        read = select(run_inputs.c.run_id).where(ids(run_inputs.c.artifact_id))
        runs = Run.objects(instance).filter(or_(Run.id.in_(made), Run.id.in_(read)))
    if runs is None:
        runs = Run.objects()
    instance, ids = _ids(runs, Run, "runs")
    return instance, None if ids is None else ids(Run.id)


InIds = Callable[[Any], Any]  # a column -> the condition "column IN the ids"


def _ids(rows: Any, model: type, name: str) -> tuple[Instance, InIds | None]:
    """The instance of ``rows`` and a function making ``column IN <their ids>`` (None when
    ``rows`` is an empty list). A QuerySet stays a subquery; a list becomes its ids."""
    if isinstance(rows, QuerySet):
        if rows.model is not model:
            raise InvalidArgument(
                f"{name}= takes ln.{model.__name__} objects or a QuerySet of them, not a "
                f"QuerySet of {rows.model.__name__}."
            )
        subquery = rows._select_ids()
        return rows.instance, lambda column: column.in_(subquery)
    items: list[Any] = [rows] if isinstance(rows, model) else list(rows)  # one alone is fine
    wrong = [i for i in items if not isinstance(i, model) or getattr(i, "id", None) is None]
    if wrong:
        raise InvalidArgument(
            f"{name}= takes saved ln.{model.__name__} objects or a QuerySet of them; got "
            f"{wrong[0]!r}."
        )
    if not items:
        return current_instance(), None
    instance = items[0]._instance
    if not all(item._belongs_to(instance) for item in items):
        raise InvalidArgument(f"The {name} come from more than one instance: export each alone.")
    dialect = instance.db.dialect
    return instance, lambda column: in_values(column, sorted({i.id for i in items}), dialect)


def _pages(instance: Instance, condition: Any) -> Iterator[list[int]]:
    """The selected run ids in pages of ``PAGE``, by id: each page one short read."""
    db, last = instance.db, 0
    while True:
        stmt = select(Run.id).where(condition, Run.id > last).order_by(Run.id).limit(PAGE)
        try:
            ids = list(db.session.scalars(stmt))
        finally:
            db.end_read()
        if not ids:
            return
        yield ids
        last = ids[-1]


# --- one page of runs -----------------------------------------------------------------------


def _page_events(
    instance: Instance, producer: Producer, ids: list[int]
) -> Iterator[dict[str, Any]]:
    db = instance.db
    try:
        stmt = (
            select(Run)
            .where(Run.id.in_(ids))
            .order_by(Run.id)
            .options(selectinload(Run.transform))
            .execution_options(populate_existing=True)  # another process may have ended them
        )
        runs = list(db.session.scalars(stmt))
        inputs = _datasets(instance, _inputs_statement(ids))
        outputs = _datasets(instance, _outputs_statement(ids))
        parents = {r.initiated_by_run_id for r in runs if r.initiated_by_run_id is not None}
        ancestors = _ancestors(instance, parents)
    finally:
        db.end_read()
    for run in runs:
        parent, root = _parent_and_root(run.initiated_by_run_id, ancestors)
        yield from run_events(
            run,
            producer,
            inputs=inputs(run.id),
            outputs=outputs(run.id),
            parent=parent,
            root=root,
        )


Rows = Select[*tuple[Any, ...]]
_DATASET_COLUMNS = (Artifact.key, Artifact.uid, Artifact.hash, Storage.root)


def _outputs_statement(ids: list[int]) -> Rows:
    # Like run.outputs: the artifacts the run saved, trashed and hidden ones left out.
    return (
        select(Artifact.run_id, *_DATASET_COLUMNS)
        .join(Storage, Storage.id == Artifact.storage_id)
        .where(Artifact.run_id.in_(ids), Artifact.visibility == "default")
        .order_by(Artifact.id)
    )


def _inputs_statement(ids: list[int]) -> Rows:
    # Like run.inputs: the artifacts the run read.
    return (
        select(run_inputs.c.run_id, *_DATASET_COLUMNS)
        .join(Artifact, Artifact.id == run_inputs.c.artifact_id)
        .join(Storage, Storage.id == Artifact.storage_id)
        .where(run_inputs.c.run_id.in_(ids), Artifact.visibility == "default")
        .order_by(Artifact.id)
    )


def _datasets(instance: Instance, stmt: Rows) -> Callable[[int], list[Dataset]]:
    """The datasets of ``stmt``'s rows, as a function of the run id."""
    by_run: dict[int, list[Dataset]] = {}
    for run_id, key, uid, content_hash, root in instance.db.session.execute(stmt):
        by_run.setdefault(run_id, []).append(dataset(root, key, uid, content_hash))
    return lambda run_id: by_run.get(run_id, [])


def _ancestors(instance: Instance, ids: set[int]) -> dict[int, tuple[RunRef, int | None]]:
    """The runs ``ids`` and the runs that initiated them, up to their roots: by id, the run
    and its own parent's id. One query per generation, not per run."""
    found: dict[int, tuple[RunRef, int | None]] = {}
    wanted = ids
    while wanted:
        stmt = (
            select(Run.id, Run.uid, Run.started_at, Transform.key, Run.initiated_by_run_id)
            .join(Transform, Transform.id == Run.transform_id)
            .where(Run.id.in_(sorted(wanted)))
        )
        for run_id, uid, started_at, key, parent_id in instance.db.session.execute(stmt):
            found[run_id] = (RunRef(uid, started_at, key), parent_id)
        wanted = {p for _, p in found.values() if p is not None} - found.keys()
    return found


def _parent_and_root(
    parent_id: int | None, ancestors: dict[int, tuple[RunRef, int | None]]
) -> tuple[RunRef | None, RunRef | None]:
    if parent_id is None or parent_id not in ancestors:
        return None, None
    parent, up = ancestors[parent_id]
    root, seen = parent, {parent_id}
    while up is not None and up in ancestors and up not in seen:  # seen: a loop cannot hang
        seen.add(up)
        root, up = ancestors[up]
    return parent, root


# --- writing --------------------------------------------------------------------------------


def _write_lines(stream: IO[str], events: Iterable[dict[str, Any]]) -> int:
    count = 0
    for event in events:
        stream.write(json.dumps(event, ensure_ascii=False, separators=(",", ":")) + "\n")
        count += 1
    return count


def _write_file(path: Path, events: Iterable[dict[str, Any]]) -> int:
    """Write to a temporary file beside ``path``, then rename it over ``path``: a reader sees
    the old file or the whole new one, and a failed export leaves no partial file."""
    if path.is_dir():
        raise InvalidArgument(
            f"{path} is a folder: pass the path of a file to write, e.g. {path / 'lineage.ndjson'}"
        )
    if not path.parent.is_dir():
        raise InvalidArgument(f"Cannot write {path}: the folder {path.parent} does not exist.")
    # Created with open(..., "x"), not mkstemp: the file gets the usual permissions (umask).
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        with open(temporary, "x", encoding="utf-8", newline="\n") as stream:
            count = _write_lines(stream, events)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return count
