"""Readable ``describe()`` output: a rich tree of a registry object's metadata."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from biolake.features.manager import describe_features  # [] for unsaved objects and non-hosts

if TYPE_CHECKING:
    from biolake.query.queryset import QuerySet
    from biolake.registries.artifact import Artifact
    from biolake.registries.record import Record


def human_size(n: int | None) -> str:
    """``1536`` -> ``"1.5 KiB"``."""
    if n is None:
        return "-"
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{int(size)} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"  # pragma: no cover


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
    lineage = [
        ("run", artifact.run.uid if artifact.run else None),
        ("transform", artifact.transform.key if artifact.transform else None),
    ]
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
    shown = [r.name for r in relatives.order_by("name")[: RELATIVES_SHOWN + 1]]
    if len(shown) <= RELATIVES_SHOWN:
        return ", ".join(shown) or None
    more = relatives.count() - RELATIVES_SHOWN
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
