"""Readable ``describe()`` output: a rich tree of a registry object's metadata."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from biolake.core.units import human_size
from biolake.features.manager import describe_features  # [] for unsaved objects and non-hosts

if TYPE_CHECKING:
    from biolake.query.queryset import QuerySet
    from biolake.registries.artifact import Artifact
    from biolake.registries.record import Record
    from biolake.registries.run import Run
    from biolake.registries.transform import Transform


def _fmt(value: Any) -> str:
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S UTC")
    return "-" if value is None else str(value)


def render(title: str, sections: dict[str, list[tuple[str, Any]]], return_str: bool) -> str | None:
    """Print ``sections`` as a tree under ``title``, or return the text."""
    from rich.console import Console
    from rich.markup import escape
    from rich.tree import Tree

    tree = Tree(f"[bold]{title}[/bold]")
    for section, rows in sections.items():
        if not rows:
            continue
        branch = tree.add(f"[bold dim]{section}[/bold dim]")
        width = max(len(name) for name, _ in rows)
        for name, value in rows:
            # Escaped: values such as "[int]" would otherwise be read as rich markup and vanish.
            branch.add(escape(f"{name.ljust(width)}  {_fmt(value)}"), highlight=False)
    import io

    console = Console(record=True, width=110, file=io.StringIO() if return_str else None)
    console.print(tree)
    return console.export_text() if return_str else None


def describe_artifact(artifact: Artifact, return_str: bool = False) -> str | None:
    general = [
        ("uid", artifact.uid),
        ("key", artifact.key),
        ("description", artifact.description),
        ("kind", artifact.kind),
        ("suffix", artifact.suffix or "-"),
        (
            "size",
            f"{human_size(artifact.size)} ({artifact.size:,} bytes)"
            if artifact.size
            else human_size(artifact.size),
        ),
        ("n_files", artifact.n_files) if artifact.n_files is not None else None,
        ("hash", artifact.hash),
        ("version", f"{artifact.version}" + (" (latest)" if artifact.is_latest else "")),
        ("visibility", artifact.visibility) if artifact.visibility != "default" else None,
        ("storage", artifact.storage.root if artifact.storage_id else None),
        ("created_at", artifact.created_at),
        ("created_by", artifact.created_by.handle if artifact.created_by_id else None),
    ]
    lineage = _artifact_lineage(artifact)
    sections: dict[str, list[tuple[str, Any]]] = {
        "General": [row for row in general if row is not None],
        "Lineage": lineage,
    }
    features = _feature_rows(artifact)
    if features:
        sections["Features"] = features
    return render(f"Artifact {artifact.key or artifact.uid}", sections, return_str)


def describe_registry(obj: Any, return_str: bool = False) -> str | None:
    """The generic tree: every field, related rows by their label, then features."""
    sections: dict[str, list[tuple[str, Any]]] = {"General": _field_rows(obj)}
    features = _feature_rows(obj)
    if features:
        sections["Features"] = features
    return render(_title(obj), sections, return_str)


RELATIVES_SHOWN = 10  # names per row; the rest are counted


def describe_record(record: Record, return_str: bool = False) -> str | None:
    """The generic tree, then the record's parents and children (by name)."""
    sections: dict[str, list[tuple[str, Any]]] = {"General": _field_rows(record)}
    if record.id is not None:
        parents, children = _names(record.parents), _names(record.children)
        if parents or children:
            sections["Parents and children"] = [("parents", parents), ("children", children)]
    features = _feature_rows(record)
    if features:
        sections["Features"] = features
    return render(_title(record), sections, return_str)


def _names(relatives: QuerySet[Record]) -> str | None:
    """``"A, B, … and 5 more"``: the first names in name order, and how many more there are."""
    return _first(relatives, "name", lambda r: r.name)


def _first(rows: QuerySet[Any], order: str, label: Callable[[Any], str]) -> str | None:
    """The labels of the first rows in ``order``, and how many more there are."""
    shown = [label(row) for row in rows.order_by(order)[: RELATIVES_SHOWN + 1]]
    if len(shown) <= RELATIVES_SHOWN:
        return ", ".join(shown) or None
    more = rows.count() - RELATIVES_SHOWN
    return ", ".join(shown[:RELATIVES_SHOWN]) + f", … and {more} more"


def _title(obj: Any) -> str:
    label = getattr(obj, "name", None) or getattr(obj, "key", None) or obj.uid
    return f"{type(obj).__name__} {label}"


def _field_rows(obj: Any) -> list[tuple[str, Any]]:
    """Every field but the id; foreign keys as the related row's label."""
    from sqlalchemy import inspect

    mapper = inspect(type(obj))
    labels = {
        next(iter(rel.local_columns)).key: rel.key
        for rel in mapper.relationships
        if rel.direction.name == "MANYTOONE"
    }
    rows: list[tuple[str, Any]] = []
    for name in obj._field_names():
        value = getattr(obj, name)
        if name == "id" or (name == "visibility" and value == "default"):
            continue
        if name in labels:
            related = getattr(obj, labels[name]) if value is not None else None
            rows.append((labels[name], None if related is None else _label(related)))
        else:
            rows.append((name, value))
    return rows


def _label(related: Any) -> str:
    for field in ("handle", "key", "name"):
        value = getattr(related, field, None)
        if value:
            return f"{value} ({related.uid})"
    return str(related.uid)


def _feature_rows(obj: Any) -> list[tuple[str, Any]]:
    return list(describe_features(obj))


# --- lineage ----------------------------------------------------------------------------------

REPORT_LINES = 8  # the head of a run's report that describe() shows


def _artifact_lineage(artifact: Artifact) -> list[tuple[str, Any]]:
    run = artifact.run
    rows: list[tuple[str, Any]] = [
        ("run", f"{run.uid} ({run.status})" if run else None),
        ("transform", _transform_label(artifact.transform) if artifact.transform else None),
    ]
    if run is not None:
        rows.append(("run inputs", _keys(run.inputs)))
    if artifact.id is not None:
        run_model = type(artifact).input_of_runs.property.mapper.class_
        readers = run_model.filter(inputs=artifact).count()
        rows.append(("read by", f"{readers} run{'s' if readers != 1 else ''}" if readers else None))
    return [row for row in rows if row[1] is not None]


def _transform_label(transform: Transform) -> str:
    return f"{transform.key} (version {transform.version}, {transform.kind})"


def _keys(artifacts: QuerySet[Artifact]) -> str | None:
    """The first keys (uids for keyless artifacts), and how many more."""
    return _first(artifacts, "id", lambda a: a.key or a.uid)


def describe_run(run: Run, return_str: bool = False) -> str | None:
    """The run's transform, end, params, inputs and outputs, where it ran, an earlier identical
    run, and the head of its report."""
    ended = run.status + (f" (exit code {run.exit_code})" if run.exit_code else "")
    if run.finished_implicitly:
        ended += ", finished implicitly"
    general = [
        ("uid", run.uid),
        ("transform", _transform_label(run.transform)),
        ("status", ended),
        ("reason", _head(run.status_reason, 3)),
        ("started_at", run.started_at),
        ("finished_at", run.finished_at),
        ("created_by", run.created_by.handle if run.created_by_id else None),
        ("initiated_by", run.initiated_by_run.uid if run.initiated_by_run else None),
        ("projects", ", ".join(p.name for p in run.projects) or None),
        ("same as", _identical(run)),
    ]
    sections = {
        "General": [row for row in general if row[1] is not None],
        "Params": sorted((run.params or {}).items()),
        "Lineage": [
            row
            for row in (("inputs", _keys(run.inputs)), ("outputs", _keys(run.outputs)))
            if row[1] is not None
        ],
        "Where": [row for row in _place(run) if row[1] is not None],
    }
    report = _report_head(run)
    if report:
        sections["Report"] = [(f"{i:>2}", line) for i, line in enumerate(report, 1)]
    return render(f"Run {run.uid} of {run.transform.key}", sections, return_str)


def _place(run: Run) -> list[tuple[str, Any]]:
    git = None
    if run.git_commit:
        git = run.git_commit[:12] + (f" on {run.git_branch}" if run.git_branch else "")
        git += " (uncommitted changes)" if run.git_dirty else ""
    scheduler = run.scheduler or {}
    job = None
    if scheduler:
        job = f"{scheduler.get('scheduler')} job {scheduler.get('job_id')}"
        if scheduler.get("array_task_id") is not None:
            job += f" (array {scheduler.get('array_job_id')}, task {scheduler['array_task_id']})"
    return [
        ("host", f"{run.host} (pid {run.pid})" if run.host else None),
        ("command", run.entrypoint),
        ("git", git),
        ("git remote", run.git_remote),
        ("job", job),
        ("environment", _environment_label(run)),
    ]


def _environment_label(run: Run) -> str | None:
    """The environment's fingerprint, short: ``run.environment.load()`` lists its packages."""
    key = run.environment.key if run.environment is not None else None
    return key.rsplit("/", 1)[-1].removesuffix(".txt")[:16] if key else None


def _identical(run: Run) -> str | None:
    """The first earlier completed run with the same fingerprint (source, inputs, params,
    environment), if any."""
    if not run.fingerprint:
        return None
    same = type(run).filter(fingerprint=run.fingerprint, status="completed", id__lt=run.id)
    earlier = same.order_by("id").first()
    if earlier is None:
        return None
    when = f"{earlier.started_at:%Y-%m-%d %H:%M}"
    return f"run {earlier.uid} of {when} (same source, inputs, params and environment)"


def _head(text: str | None, lines: int) -> str | None:
    if not text:
        return None
    head = text.strip().splitlines()
    return " / ".join(head[:lines]) + (" …" if len(head) > lines else "")


def _report_head(run: Run) -> list[str]:
    if run.report is None:
        return []
    try:
        with open(run.report.cache(), encoding="utf-8", errors="replace") as handle:
            head = [handle.readline().rstrip("\n") for _ in range(REPORT_LINES + 1)]
    except Exception:  # describe() shows what it can
        return ["(the report cannot be read)"]
    head = [line for line in head if line]
    return head[:REPORT_LINES] + (["…"] if len(head) > REPORT_LINES else [])


RUN_STATUSES = ("started", "completed", "errored", "aborted", "crashed")


def describe_transform(transform: Transform, return_str: bool = False) -> str | None:
    """The transform, how its runs ended, and the latest run."""
    runs = type(transform).runs.property.mapper.class_.filter(transform=transform)
    counts = [(status, runs.filter(status=status).count()) for status in RUN_STATUSES]
    latest = runs.order_by("-started_at").first()
    general = [
        ("uid", transform.uid),
        ("key", transform.key),
        ("kind", transform.kind),
        ("version", transform.version),
        ("description", transform.description),
        ("source hash", transform.source_hash),
        ("created_at", transform.created_at),
    ]
    latest_label = None
    if latest is not None:
        latest_label = f"{latest.uid} ({latest.status}, {latest.started_at:%Y-%m-%d %H:%M})"
    lineage = [
        ("runs", ", ".join(f"{n} {status}" for status, n in counts if n) or None),
        ("latest run", latest_label),
    ]
    sections: dict[str, list[tuple[str, Any]]] = {
        "General": [row for row in general if row[1] is not None],
        "Lineage": [row for row in lineage if row[1] is not None],
    }
    return render(f"Transform {transform.key}", sections, return_str)
