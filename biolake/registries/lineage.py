"""Lineage of artifacts and runs: ``ancestors()``, ``descendants()`` and ``view_lineage()``.

The queries and the picture are in ``biolake.tracking`` (``lineage`` builds the recursive SQL
and the graph, ``lineage_svg`` lays it out); this module applies them to the registries, whose
classes the callers pass (``Artifact`` and ``Run`` both import this module).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from sqlalchemy import false

from biolake.core.log import logger
from biolake.tracking import lineage, lineage_svg

if TYPE_CHECKING:
    from biolake.query.queryset import QuerySet
    from biolake.registries.artifact import Artifact


def ancestors(artifact_model: Any, obj: Any, depth: int | None) -> QuerySet[Artifact]:
    """The artifacts ``obj`` (an artifact or run) derives from, within ``depth`` hops."""
    lineage.check_depth(depth)
    run_id = obj.id if not isinstance(obj, artifact_model) else obj.run_id
    if obj.id is None or run_id is None:  # unsaved, or made by no run: raw data
        return artifact_model.filter(false())
    ids = lineage.ancestor_ids(artifact_model, lineage.inputs_of(artifact_model, run_id), depth)
    return artifact_model.filter(artifact_model.id.in_(ids))


def descendants(artifact_model: Any, obj: Any, depth: int | None) -> QuerySet[Artifact]:
    """The artifacts derived from ``obj`` (an artifact or run), within ``depth`` hops."""
    lineage.check_depth(depth)
    if obj.id is None:
        return artifact_model.filter(false())
    if isinstance(obj, artifact_model):
        seeds = lineage.readers_outputs(artifact_model, obj.id)
    else:
        seeds = lineage.outputs_of(artifact_model, obj.id)
    ids = lineage.descendant_ids(artifact_model, seeds, depth)
    return artifact_model.filter(artifact_model.id.in_(ids))


def view_lineage(
    artifact_model: Any,
    run_model: Any,
    obj: Any,
    hops: int,
    path: str | os.PathLike[str] | None,
    collapse: int,
) -> lineage_svg.LineagePicture:
    """The picture around ``obj``; written to ``path`` when given, else only returned (a
    notebook shows it inline)."""
    found = lineage.graph(artifact_model, run_model, obj, hops)
    picture = lineage_svg.LineagePicture(lineage_svg.collapse_runs(found, min_siblings=collapse))
    if path is not None:
        written = picture.save(path)
        logger.info(f"wrote the lineage of {obj.uid} to {written}")
    return picture
