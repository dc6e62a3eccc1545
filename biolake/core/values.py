"""Checks of plain values before they reach SQL, shared by the query layer and the features.

``DtypeError`` says what is wrong with one value; callers add the field or feature name and
raise it as biolake's ``ValidationError`` or ``InvalidArgument``.
"""

from __future__ import annotations

import math
from typing import Any

from biolake.errors import ValidationError, short_repr

INT64 = (-(2**63), 2**63 - 1)


class DtypeError(ValueError):
    """A value does not fit a dtype; the caller adds the feature name to the message."""


def text_problem(value: Any) -> str | None:
    """What no database stores faithfully in a text or JSON value (keys too), or None: NUL
    characters, or a lone surrogate (text that is not valid Unicode)."""
    if isinstance(value, str):
        if "\x00" in value:
            return "NUL characters (\\x00)"
        if not value.isascii():
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                return "a lone surrogate (text that is not valid Unicode)"
        return None
    if isinstance(value, dict):
        items: Any = (x for pair in value.items() for x in pair)
    elif isinstance(value, list | tuple | set | frozenset):
        items = value
    else:
        return None
    return next((p for p in map(text_problem, items) if p is not None), None)


def json_problem(value: Any) -> str | None:
    """Why ``value`` would not come back from a JSON column as it went in, or None: JSON is
    None, bool, int, finite float, str, and lists and str-keyed dicts of them (a tuple comes
    back as a list)."""
    if value is None or isinstance(value, bool | int | str):
        return None
    if isinstance(value, float):
        return (
            None if math.isfinite(value) else f"the float {value!r} (JSON has no NaN or infinity)"
        )
    if isinstance(value, list | tuple):
        return next((p for p in map(json_problem, value) if p is not None), None)
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                return f"the key {key!r}, which is not a str"
            problem = json_problem(item)
            if problem is not None:
                return problem
        return None
    return f"a {type(value).__name__} ({short_repr(value, 40)})"


def fits_int64(value: int) -> bool:
    """Whether an int fits the 64-bit columns that hold ints (stored values and queries)."""
    return INT64[0] <= value <= INT64[1]


def check_int64(value: int) -> int:
    """Integers are stored in 64 bits; a larger one in a query is a mistake, not a driver
    error."""
    if not fits_int64(value):
        raise DtypeError(f"{value} is outside the 64-bit integer range (-2**63 .. 2**63 - 1)")
    return value


def signless_zero(value: float) -> float:
    """``0.0`` for ``-0.0``: SQLite stores -0.0 as 0.0 and PostgreSQL keeps its sign, so biolake
    stores 0.0 on both (they compare equal anyway)."""
    return 0.0 if value == 0 else value


def signless_zeros(value: Any) -> Any:
    """A JSON value with every ``-0.0`` inside it made ``0.0`` (PostgreSQL's jsonb drops the
    sign, JSON text keeps it): the same value back on both backends."""
    if isinstance(value, float):
        return signless_zero(value)
    if isinstance(value, dict):
        return {k: signless_zeros(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [signless_zeros(v) for v in value]
    return value


def checked_params(params: Any) -> dict[str, Any] | None:
    """``params`` as stored: a dict with str keys of JSON values, ``-0.0`` made ``0.0``.

    NaN and infinity are refused: they are not JSON, PostgreSQL refuses them, and on SQLite one
    such row made every ``params__…`` filter fail ("malformed JSON").
    Example: ``checked_params({"lr": 0.01})`` is ``{"lr": 0.01}``.
    """
    if params is None:
        return None
    if not isinstance(params, dict) or not all(isinstance(k, str) for k in params):
        raise ValidationError(f"params must be a dict with str keys, not {params!r}.")
    for name, value in params.items():
        problem = json_problem(value)
        if problem is not None:
            raise ValidationError(
                f"params[{name!r}] = {short_repr(value, 40)} is not JSON (str, int, float, bool, "
                f"None, lists and dicts with str keys of them; no NaN or infinity): it holds "
                f"{problem}. "
                "Store it as a string, or as an artifact and pass its uid."
            )
    return {name: signless_zeros(value) for name, value in params.items()}
