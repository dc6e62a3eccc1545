"""The Feature and Record classes, as the features subsystem sees them.

The subsystem sits below the registries and may not import them (see docs/architecture.md):
``biolake.registries`` hands both classes over with ``bind`` when it is imported, which every
registry import does first. Features read them as ``models.Feature`` and ``models.Record``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from biolake.registries.feature import Feature as _Feature
    from biolake.registries.record import Record as _Record


class _Models:
    Feature: type[_Feature]
    Record: type[_Record]

    def __getattr__(self, name: str) -> Any:  # only reached before bind()
        raise AttributeError(
            f"biolake.features needs the {name} registry, and biolake.registries was not imported "
            "yet: use ln.Feature / ln.Record (or import biolake.registries) first."
        )


models = _Models()


def bind(*, feature: type[_Feature], record: type[_Record]) -> None:
    """Hand the features subsystem its model classes (called by ``biolake.registries``)."""
    models.Feature = feature
    models.Record = record
