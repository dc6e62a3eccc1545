"""Objects that carry features, for the feature tests: runs, and artifacts once they have features.

``host`` is a fixture over every host registry (on every backend of ``instance``); ``host.new()``
saves a fresh object and ``host.model`` is its registry.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import biolake as ln


def host_kinds() -> list[str]:
    from biolake.features.manager import HasFeatures
    from biolake.registries.artifact import Artifact

    return ["run", "artifact"] if issubclass(Artifact, HasFeatures) else ["run"]


class Host:
    def __init__(self, model: Any, new: Callable[[], Any]) -> None:
        self.model = model
        self.new = new


def make_host(kind: str, tmp_path: Path) -> Host:
    counter = itertools.count()
    if kind == "run":
        transform = ln.Transform(key="feature_test.py").save()
        return Host(ln.Run, lambda: ln.Run(transform=transform).save())

    def new_artifact() -> Any:
        i = next(counter)
        path = tmp_path / f"file{i}.txt"
        path.write_text(f"content {i}\n")
        return ln.Artifact(path, key=f"data/file{i}.txt").save()

    return Host(ln.Artifact, new_artifact)


@pytest.fixture(params=host_kinds())
def host(request: pytest.FixtureRequest, instance: Any, tmp_path: Path) -> Host:
    return make_host(request.param, tmp_path)
