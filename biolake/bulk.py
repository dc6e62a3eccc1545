"""``ln.save(objects)``: save many objects in one transaction."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, TypeVar

from biolake.errors import InvalidArgument

if TYPE_CHECKING:
    from biolake.registries.base import Registry

R = TypeVar("R", bound="Registry")


def save(objects: Iterable[R]) -> list[R]:
    """Save every object in one transaction: all of them are stored, or none.

    Registries may prepare their objects in bulk first (artifacts store their bytes in
    parallel). Example: ``ln.save([ln.User(handle=h) for h in ["a", "b"]])``.
    """
    from biolake.registries.base import Registry

    items = list(objects)
    for obj in items:
        if not isinstance(obj, Registry):
            raise InvalidArgument(f"ln.save() takes registry objects, not {obj!r}.")
    if not items:
        return items
    instance = items[0]._instance
    by_type: dict[type[Registry], list[Registry]] = {}
    for obj in items:
        by_type.setdefault(type(obj), []).append(obj)
    with instance.db.write() as session:
        for model, group in by_type.items():
            model._save_many(instance, session, group)
    return items
