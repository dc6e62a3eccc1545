"""``ln.track``, ``ln.finish`` and ``ln.tracked``: lineage of scripts, notebooks and functions.

Thin entry points: the work is in ``biolake.tracking``, which gets the Run, Transform and Project
classes from here (it sits below the registries). See docs/tracking.md.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar

from biolake.registries.artifact import Artifact
from biolake.registries.project import Project
from biolake.registries.run import Run
from biolake.registries.transform import Transform
from biolake.tracking import functions, process, runs

F = TypeVar("F", bound=Callable[..., Any])
MODELS = runs.Models(run=Run, transform=Transform, project=Project, artifact=Artifact)


def track(
    params: dict[str, Any] | None = None,
    project: str | None = None,
    *,
    path: str | os.PathLike[str] | None = None,
) -> Run:
    """Start the run of this script or notebook; artifacts it saves and loads are linked to it.

    The calling script is found by itself; in a notebook, name its file with ``path=``.
    Example: ``ln.track(params={"learning_rate": 0.01}, project="Cancer Drug Screen 2025")``
    """
    run: Run = process.track(MODELS, params=params, project=project, path=path)
    return run


def finish() -> None:
    """Mark the run of this script or notebook ``completed``. Example: ``ln.finish()``"""
    process.finish()


def tracked(*, cache: bool = False) -> Callable[[F], F]:
    """Track each call of the decorated function as a run of its own transform.

    With ``cache=True``, a call whose earlier run had the same source, params, inputs and
    environment, and whose outputs are intact, returns that run's result without running
    (see docs/tracking.md).

    Example::

        @ln.tracked()
        def subset(key: str, n: int = 100) -> ln.Artifact:
            df = ln.Artifact.get(key=key).load()
            return ln.Artifact.from_dataframe(df.head(n), key=f"subsets/{n}.parquet").save()
    """
    return functions.tracked(MODELS, cache=cache)
