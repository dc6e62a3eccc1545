"""Lineage of artifacts and runs: ``ancestors()``, ``descendants()`` and ``view_lineage()``.

The queries and the picture are in ``biolake.tracking`` (``lineage`` builds the recursive SQL
and the graph, ``lineage_svg`` lays it out); this module applies them to the registries.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from sqlalchemy import false

from biolake.core.log import logger

if TYPE_CHECKING:
    from biolake.query.queryset import QuerySet
    from biolake.registries.artifact import Artifact
    from biolake.tracking.lineage_svg import LineagePicture


def ancestors(obj: Any, depth: int | None) -> QuerySet[Artifact]:
    """The artifacts ``obj`` (an artifact or run) derives from, within ``depth`` hops."""
    from biolake.registries.artifact import Artifact
    from biolake.registries.run import Run
    from biolake.tracking import lineage

    run_id = obj.id if isinstance(obj, Run) else obj.run_id
    lineage.check_depth(depth)
    if obj.id is None or run_id is None:  # unsaved, or made by no run: raw data
        return Artifact.filter(false())
    ids = lineage.ancestor_ids(Artifact, lineage.inputs_of(Artifact, run_id), depth)
    return Artifact.filter(Artifact.id.in_(ids))


def descendants(obj: Any, depth: int | None) -> QuerySet[Artifact]:
    """The artifacts derived from ``obj`` (an artifact or run), within ``depth`` hops."""
    from biolake.registries.artifact import Artifact
    from biolake.registries.run import Run
    from biolake.tracking import lineage

    lineage.check_depth(depth)
    if obj.id is None:
        return Artifact.filter(false())
    if isinstance(obj, Run):
        seeds = lineage.outputs_of(Artifact, obj.id)
    else:
        seeds = lineage.readers_outputs(Artifact, obj.id)
    ids = lineage.descendant_ids(Artifact, seeds, depth)
    return Artifact.filter(Artifact.id.in_(ids))


def view_lineage(
    obj: Any, hops: int, path: str | os.PathLike[str] | None, collapse: int
) -> LineagePicture:
    """The picture around ``obj``; written to ``path`` when given, else only returned (a
    notebook shows it inline)."""
    from biolake.registries.track import MODELS
    from biolake.tracking import lineage, lineage_svg

    found = lineage.graph(MODELS, obj, hops)
    picture = lineage_svg.LineagePicture(lineage_svg.collapse_runs(found, min_siblings=collapse))
    if path is not None:
        written = picture.save(path)
        logger.info(f"wrote the lineage of {obj.uid} to {written}")
    return picture
