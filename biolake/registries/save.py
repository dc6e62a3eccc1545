"""``ln.save(objects)``: save many objects of any registries in one transaction."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from typing import TypeVar

from biolake.errors import InvalidArgument
from biolake.registries.base import Registry

R = TypeVar("R", bound=Registry)


def save(objects: Iterable[R]) -> list[R]:
    """Save every object in one transaction: all of them are stored, or none.

    Registries may prepare their objects in bulk first (artifacts store their bytes in
    parallel). The result is in input order; where a registry returns an existing object for a
    duplicate (an artifact with the same key and content), that object stands in.

    Example: ``ln.save([ln.User(handle=h) for h in ["a", "b"]])``.
    """
    items = list(objects)
    for obj in items:
        if not isinstance(obj, Registry):
            raise InvalidArgument(f"ln.save() takes registry objects, not {obj!r}.")
    if not items:
        return items
    instance = items[0]._instance
    positions: dict[type[Registry], list[int]] = {}
    for i, obj in enumerate(items):
        positions.setdefault(type(obj), []).append(i)
    result: list[R] = list(items)
    # One registry: it opens its own transaction (artifacts store bytes before taking the write
    # lock). Several: one outer transaction, which the registries' transactions join.
    outer = instance.db.write() if len(positions) > 1 else contextlib.nullcontext()
    with outer:
        for model, where in positions.items():
            saved = model._save_many(instance, [items[i] for i in where])
            for i, obj in zip(where, saved, strict=True):
                result[i] = obj
    return result
