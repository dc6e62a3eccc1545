"""Feature dtypes: parse a definition, validate values against it, coerce values for queries.

A dtype is written as a string and stored on the feature:

    int  float  bool  str  date  datetime  dict  list[int]  list[float]  list[str]
    cat[Record[<type name>]]      categorical: values are records of that Record type

``parse_dtype`` also accepts the Python types (``int``, ``datetime.date``, ``list[str]`` …) and a
Record type object. Values are validated strictly, with two documented conveniences: ISO strings
are accepted for ``date`` and ``datetime``, and ints are accepted for ``float`` when the float
holds them exactly. A naive datetime comes back naive, an aware one at the same instant with
its UTC offset; naive values compare as UTC wall time (see ``features.datetimes``). ``-0.0`` is
stored as ``0.0`` (in float features and in dicts); NaN and infinity are refused. numpy scalars
are accepted as the Python values they stand for; a float32 or float16 counts as its shortest
decimal form (``np.float32(0.55)`` is 0.55), in stored values and in filters alike.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import numbers
import sys
from dataclasses import dataclass
from typing import Any

from biolake.core.values import (
    DtypeError,
    check_int64,
    fits_int64,
    signless_zero,
    signless_zeros,
)
from biolake.errors import did_you_mean
from biolake.features.datetimes import as_utc
from biolake.features.models import models

SCALAR_KINDS = ("int", "float", "bool", "str", "date", "datetime", "dict")
LIST_KINDS = ("int", "float", "str")
DTYPE_NAMES = (*SCALAR_KINDS, *(f"list[{k}]" for k in LIST_KINDS), "cat[Record[<type name>]]")
MAX_STR_BYTES = 2000  # a btree index entry must fit a PostgreSQL page: long text is not a label
MAX_LIST_LENGTH = 10_000
MAX_DICT_BYTES = 1_000_000
MAX_DICT_DEPTH = 10

_PY_TYPES: dict[Any, str] = {
    int: "int",
    float: "float",
    bool: "bool",
    str: "str",
    dt.date: "date",
    dt.datetime: "datetime",
    dict: "dict",
}


@dataclass(frozen=True)
class Dtype:
    """A parsed dtype: ``kind`` of each value, whether the value is a list, the Record type."""

    kind: str
    is_list: bool = False
    record_type_id: int | None = None

    @classmethod
    def from_string(cls, dtype: str, record_type_id: int | None = None) -> Dtype:
        """The stored form back: ``"list[int]"`` -> Dtype("int", True)."""
        if dtype.startswith("cat["):
            return cls("cat", False, record_type_id)
        if dtype.startswith("list["):
            return cls(dtype[5:-1], True)
        return cls(dtype)


def parse_dtype(spec: Any) -> tuple[str, Any]:
    """``spec`` -> (dtype string, Record type or None); raises DtypeError for unknown specs."""
    if isinstance(spec, str):
        return _parse_string(spec.strip())
    if isinstance(spec, models.Record):
        return _record_type_dtype(spec), spec
    if spec in _PY_TYPES:
        return _PY_TYPES[spec], None
    origin, args = getattr(spec, "__origin__", None), tuple(getattr(spec, "__args__", ()))
    element = _PY_TYPES.get(args[0]) if origin is list and len(args) == 1 else None
    if element in LIST_KINDS:
        return f"list[{element}]", None
    if spec is list:
        raise DtypeError(
            "A list dtype needs its element type: list[int], list[float] or list[str]."
        )
    raise DtypeError(f"Unknown dtype {spec!r}. Use one of: {', '.join(DTYPE_NAMES)}.")


def _parse_string(spec: str) -> tuple[str, Any]:
    if spec in SCALAR_KINDS or spec in {f"list[{k}]" for k in LIST_KINDS}:
        return spec, None
    if spec.startswith("cat[Record[") and spec.endswith("]]"):
        return spec, _find_record_type(spec[len("cat[Record[") : -2])
    hint = did_you_mean(spec, [d for d in DTYPE_NAMES if "<" not in d])
    raise DtypeError(f"Unknown dtype {spec!r}.{hint} Use one of: {', '.join(DTYPE_NAMES)}.")


def _find_record_type(name: str) -> Any:
    types = models.Record.filter(name=name, is_type=True).to_list()
    if len(types) == 1:
        return types[0]
    if not types:
        known = [r.name for r in models.Record.filter(is_type=True).to_list()]
        raise DtypeError(
            f"No Record type named {name!r}.{did_you_mean(name, known)} Create it first: "
            f"ln.Record(name={name!r}, is_type=True).save()."
        )
    raise DtypeError(f"Several Record types are named {name!r}: pass the type record as dtype.")


def _record_type_dtype(record: Any) -> str:
    if not record.is_type:
        raise DtypeError(
            f"Record {record.name!r} is not a type: a categorical dtype needs a record saved "
            f"with is_type=True, e.g. ln.Record(name={record.name!r}, is_type=True).save()."
        )
    if record.id is None:
        raise DtypeError(f"Save the Record type {record.name!r} before using it as a dtype.")
    return f"cat[Record[{record.name}]]"


# --- validating values ------------------------------------------------------------------------


def check_value(dtype: Dtype, value: Any) -> list[Any]:
    """The values to store for ``value`` (one per list element), or raise DtypeError.

    Categorical values are returned as given (names or records); the caller resolves them.
    """
    if dtype.is_list:
        if not isinstance(value, list | tuple):
            raise DtypeError(f"expected a list of {dtype.kind}")
        if len(value) > MAX_LIST_LENGTH:
            raise DtypeError(f"lists hold at most {MAX_LIST_LENGTH} values, this one {len(value)}")
        if any(v is None for v in value):
            raise DtypeError("list elements cannot be None")
        return [_check_element(dtype.kind, i, v) for i, v in enumerate(value)]
    return [check_scalar(dtype.kind, value)]


def _check_element(kind: str, index: int, value: Any) -> Any:
    try:
        return check_scalar(kind, value)
    except DtypeError as exc:
        raise DtypeError(f"element {index} ({value!r}): {exc}") from None


def check_scalar(kind: str, value: Any) -> Any:
    """``value`` as stored for ``kind``, or raise DtypeError saying what was expected."""
    if value is None:
        raise DtypeError(f"expected {kind}, not None")
    return _CHECKS[kind](value)


def _check_int(value: Any) -> int:
    if not isinstance(value, numbers.Integral) or _is_bool(value):
        raise DtypeError("expected int")
    result = int(value)
    if not fits_int64(result):
        raise DtypeError("expected an int that fits 64 bits")
    return result


def _check_float(value: Any) -> float:
    if _is_bool(value) or not isinstance(value, numbers.Real):
        raise DtypeError("expected float")
    if isinstance(value, numbers.Integral):
        # Only ints the float represents exactly: 2**53 + 1 would silently change.
        as_int = int(value)
        if abs(as_int) > 2**53 and (abs(as_int) >= 2**1024 or int(float(as_int)) != as_int):
            raise DtypeError("expected float (this int has no exact float value)")
        return float(as_int)
    result = as_float(value)
    if not math.isfinite(result):
        raise DtypeError("expected a finite float (NaN and infinity are not stored)")
    return signless_zero(result)


def as_float(value: numbers.Real) -> float:
    """``float(value)``; numpy floats narrower than 64 bits by their shortest decimal form.

    ``float(np.float32(0.55))`` is 0.550000011920929, which no filter for 0.55 finds; its
    shortest form ``str()`` is "0.55", the value that was meant. (numpy is only looked up:
    importing biolake must not import it, and without it there are no numpy values.)
    """
    np = sys.modules.get("numpy")
    if np is not None and isinstance(value, np.floating) and value.itemsize < 8:
        return float(str(value))
    return float(value)


def _check_bool(value: Any) -> bool:
    if not _is_bool(value):
        raise DtypeError("expected bool")
    return bool(value)


def _is_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return True
    cls = type(value)
    return cls.__module__ == "numpy" and cls.__name__ in {"bool_", "bool"}


def _check_str(value: Any) -> str:
    if not isinstance(value, str):
        raise DtypeError("expected str")
    check_text(value)
    if len(value.encode("utf-8")) > MAX_STR_BYTES:
        raise DtypeError(
            f"expected a str of at most {MAX_STR_BYTES} bytes (UTF-8): store long text in a "
            "dict feature or as an artifact"
        )
    return value


def check_text(value: str) -> None:
    """Reject text no database stores faithfully: NUL characters and lone surrogates."""
    if "\x00" in value:
        raise DtypeError("text must not contain NUL characters (\\x00)")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise DtypeError("text must be valid Unicode (it contains a lone surrogate)") from None


def _check_date(value: Any) -> dt.date:
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            raise DtypeError("expected a date or an ISO date string like '2025-10-31'") from None
    if isinstance(value, dt.datetime) or not isinstance(value, dt.date):
        raise DtypeError("expected a date (pass datetime.date, or value.date() for a datetime)")
    return value


def _check_datetime(value: Any) -> dt.datetime:
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value.strip())
        except ValueError:
            raise DtypeError(
                "expected a datetime or an ISO string like '2025-10-31T14:30:00+00:00'"
            ) from None
    if not isinstance(value, dt.datetime):
        raise DtypeError("expected a datetime")
    as_utc(value)  # an aware value must have an instant in years 1-9999
    return value


def _check_dict(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise DtypeError("expected dict")
    _check_json(value, depth=1)
    value = signless_zeros(value)
    size = len(json.dumps(value, ensure_ascii=False).encode("utf-8"))
    if size > MAX_DICT_BYTES:
        raise DtypeError(
            f"expected a dict of at most 1 MB as JSON, got {size:,} bytes: store it as an artifact"
        )
    return value


def _check_json(value: Any, depth: int) -> None:
    if depth > MAX_DICT_DEPTH:
        raise DtypeError(f"expected a dict nested at most {MAX_DICT_DEPTH} levels deep")
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise DtypeError(f"dict keys must be str, not {key!r}")
            check_text(key)
            _check_json(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _check_json(item, depth + 1)
    elif isinstance(value, str):
        check_text(value)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise DtypeError("dict values must be finite numbers (no NaN or infinity)")
    elif isinstance(value, int) and not isinstance(value, bool):
        if not fits_int64(value):
            raise DtypeError("dict int values must fit 64 bits (store larger numbers as str)")
    elif value is not None and not isinstance(value, bool):
        raise DtypeError(
            f"dict values must be JSON: dict, list, str, int, float, bool or None, "
            f"not {type(value).__name__}"
        )


def _check_cat(value: Any) -> Any:
    if isinstance(value, str):
        check_text(value)
        return value
    if isinstance(value, models.Record):
        return value
    raise DtypeError("expected a record name (str) or a Record")


_CHECKS = {
    "int": _check_int,
    "float": _check_float,
    "bool": _check_bool,
    "str": _check_str,
    "date": _check_date,
    "datetime": _check_datetime,
    "dict": _check_dict,
    "cat": _check_cat,
}


def query_value(kind: str, value: Any) -> Any:
    """``value`` as compared in a filter: like :func:`check_scalar`, with numbers mixed freely.

    A float threshold on an int feature (``read_count__gt=1e6``) and a date bound on a datetime
    feature (midnight UTC) are fine in a query, though they are not valid stored values.
    """
    if kind in {"int", "float"} and not _is_bool(value):
        if isinstance(value, numbers.Integral):
            return check_int64(int(value))
        if isinstance(value, numbers.Real):
            if math.isnan(value):
                raise DtypeError("cannot compare with NaN (NaN is never stored)")
            return signless_zero(as_float(value))
    if kind == "datetime":
        if type(value) is dt.date:
            return dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)
        return as_utc(check_scalar(kind, value))
    if kind == "str" and isinstance(value, str):
        check_text(value)
        return value  # a long query string is fine: it matches nothing
    return check_scalar(kind, value)
