"""Categorical values: suggestions among the records of a Record type."""

from __future__ import annotations

import difflib

from biolake.features.models import models

SMALL_TYPE = 1000  # types up to this size offer all their records as suggestions


def category_hint(name: str, type_id: int | None) -> str:
    """ " Did you mean …?" among the records of a type: all of a small type, else search hits."""
    Record = models.Record

    of_type = Record.filter(type_id=type_id)
    candidates = [r.name for r in of_type[: SMALL_TYPE + 1]]
    if len(candidates) > SMALL_TYPE:
        candidates = [r.name for r in Record.search(name).filter(type_id=type_id)[:20]]
    # Case-insensitive: "s1" should suggest "S1".
    by_lower = {c.lower(): c for c in candidates}
    close = difflib.get_close_matches(name.lower(), list(by_lower), n=3, cutoff=0.6)
    return f" Did you mean {', '.join(repr(by_lower[c]) for c in close)}?" if close else ""
