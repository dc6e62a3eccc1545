"""Django-style lookups: ``field__relation__lookup=value`` keys turned into SQL conditions.

:data:`LOOKUPS` maps each lookup name to its SQL; only bound parameters reach SQL. Relations are
followed through ``IN (subquery)`` conditions, JSON columns by key path (see
``core.db.json_value``), and registries may resolve further names (features) through
``_resolve_extra``. Anything unknown raises ``InvalidArgument`` with a suggestion.
"""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import JSON, ColumnElement, Integer, func, not_, select
from sqlalchemy.orm import RelationshipDirection, RelationshipProperty, aliased

from biolake.core.db import in_values, json_value
from biolake.core.schema.base import Base
from biolake.core.values import DtypeError, check_int64, text_problem
from biolake.errors import InvalidArgument, did_you_mean, short_repr

if TYPE_CHECKING:
    from biolake.registries.base import Registry


def _is_queryset(value: Any) -> bool:
    return hasattr(value, "_select_ids")  # a QuerySet (no import: queryset.py imports this module)


Entity = Any  # a mapped class or an aliased class

# --- the lookup table -------------------------------------------------------------------------


def _exact(col: ColumnElement[Any], value: Any) -> ColumnElement[bool]:
    return col.is_(None) if value is None else col == value


def _in(col: ColumnElement[Any], value: Any, dialect: str) -> ColumnElement[bool]:
    if _is_queryset(value):
        if not isinstance(getattr(col, "type", None), Integer):
            name = getattr(col, "key", "field")
            raise InvalidArgument(
                f"`{name}__in` got a QuerySet, which stands for row ids: filter by id__in=... or "
                "by a relation, e.g. created_by__in=ln.User.filter(...)."
            )
        return col.in_(value._select_ids())
    if isinstance(value, str | bytes) or not hasattr(value, "__iter__"):
        raise InvalidArgument(f"`__in` takes a list or a QuerySet, not {value!r}.")
    return in_values(col, list(value), dialect)


def _range(col: ColumnElement[Any], value: Any) -> ColumnElement[bool]:
    try:
        low, high = value
    except (TypeError, ValueError):
        raise InvalidArgument(
            f"`__range` takes a pair (low, high), not {short_repr(value)}."
        ) from None
    return col.between(low, high)


def _text(value: Any, lookup: str) -> str:
    if not isinstance(value, str):
        raise InvalidArgument(f"`__{lookup}` takes a string, not {value!r}.")
    return value


# "in" alone also takes the dialect (see apply_lookup)
LOOKUPS: dict[str, Callable[..., ColumnElement[bool]]] = {
    "exact": _exact,
    "iexact": lambda c, v: func.lower(c) == _text(v, "iexact").lower(),
    "contains": lambda c, v: c.contains(_text(v, "contains"), autoescape=True),
    "icontains": lambda c, v: c.icontains(_text(v, "icontains"), autoescape=True),
    "startswith": lambda c, v: c.startswith(_text(v, "startswith"), autoescape=True),
    "istartswith": lambda c, v: c.istartswith(_text(v, "istartswith"), autoescape=True),
    "endswith": lambda c, v: c.endswith(_text(v, "endswith"), autoescape=True),
    "iendswith": lambda c, v: c.iendswith(_text(v, "iendswith"), autoescape=True),
    "gt": lambda c, v: c > v,
    "gte": lambda c, v: c >= v,
    "lt": lambda c, v: c < v,
    "lte": lambda c, v: c <= v,
    "in": _in,
    "isnull": lambda c, v: c.is_(None) if v else c.is_not(None),
    "range": _range,
}
RELATION_LOOKUPS = ("exact", "in", "isnull")


def split_lookup(parts: Sequence[str]) -> tuple[list[str], str]:
    """``["a", "b", "gt"]`` -> (["a", "b"], "gt"); without a known lookup the lookup is exact."""
    if parts and parts[-1] in LOOKUPS:
        return list(parts[:-1]), parts[-1]
    return list(parts), "exact"


def apply_lookup(
    col: ColumnElement[Any], lookup: str, value: Any, dialect: str
) -> ColumnElement[bool]:
    if lookup == "in":
        return _in(col, value, dialect)
    return LOOKUPS[lookup](col, value)


# --- parsing keys into conditions -------------------------------------------------------------


def condition(
    model: type[Registry], key: str, value: Any, dialect: str, entity: Entity = None
) -> Any:
    """The SQL condition for one ``key=value`` lookup on ``model`` (or an alias of it)."""
    check_text(key, value)
    if key.endswith("__in") and isinstance(value, Iterator):
        value = list(value)  # a generator: read once, here, not once per check
    if _holds_nan(value):
        raise InvalidArgument(
            f"{key}={short_repr(value)}: NaN is equal to nothing, so this would match no row. "
            "To find missing values, use __isnull=True."
        )
    if key.endswith("__isnull") and not isinstance(value, bool):
        raise InvalidArgument(f"{key} takes True or False, not {short_repr(value)}.")
    entity = model if entity is None else entity
    parts = key.split("__")
    name, rest = parts[0], parts[1:]
    name = "id" if name == "pk" else model._field_aliases.get(name, name)
    mapper = model.__mapper__
    if name in mapper.relationships:
        return _relation_condition(entity, mapper.relationships[name], rest, value, dialect)
    if name in mapper.column_attrs:
        _check_none(key, value)  # (a feature says so in its own words)
        column = getattr(entity, name)
        if isinstance(column.type, JSON):
            return _json_condition(column, rest, value, dialect)
        if len(rest) > 1 or (rest and rest[0] not in LOOKUPS):
            bad = "__".join(rest)
            raise InvalidArgument(
                f"Unknown lookup {bad!r} in {key!r} for {model.__name__}.{name}."
                f"{did_you_mean(rest[-1], LOOKUPS)} Lookups: {', '.join(LOOKUPS)}."
            )
        lookup = rest[0] if rest else "exact"
        _check_column_value(model, name, column, lookup, value)
        if name == "visibility":
            _check_visibility(lookup, value)
        model._check_lookup_value(name, lookup, value)
        lookup, value = model._lookup_value(name, lookup, value)
        return apply_lookup(column, lookup, value, dialect)
    extra = model._resolve_extra(entity, parts, value, dialect)
    if extra is not None:
        return extra
    raise InvalidArgument(model._unknown_name_message(name, f"{key}={short_repr(value)}"))


def _check_none(key: str, value: Any) -> None:
    lookup = key.rsplit("__", 1)[-1] if "__" in key else "exact"
    if value is None and lookup in LOOKUPS and lookup not in ("exact", "isnull"):
        raise InvalidArgument(
            f"{key}=None: None has no order and holds no text, so it compares with nothing. "
            "To find missing values, use __isnull=True."
        )


def _holds_nan(value: Any) -> bool:
    if isinstance(value, decimal.Decimal):
        return value.is_nan()  # also a signalling NaN, which refuses to be compared at all
    if isinstance(value, float):
        return value != value  # NaN is the one value not equal to itself
    if isinstance(value, list | tuple | set | frozenset):
        return any(_holds_nan(v) for v in value)
    return False


def check_text(key: str, value: Any) -> None:
    """No stored text holds NUL or a lone surrogate (values are checked on save), and the
    drivers refuse them in a query with their own errors: say so on both backends instead."""
    if text_problem(key) is not None:
        raise InvalidArgument(
            f"The lookup {short_repr(key)} contains {text_problem(key)}: no field, feature or "
            "key is named so. Check the name."
        )
    problem = text_problem(value)
    if problem is not None:
        raise InvalidArgument(
            f"{key}={short_repr(value)}: text to compare must not contain {problem}; no stored "
            "value holds one."
        )


_NUMERIC = (int, float)


def _check_column_value(
    model: type[Registry], name: str, column: Any, lookup: str, value: Any
) -> None:
    """A value that cannot be compared with the column is a mistake, not "no rows" or a driver
    error: a number column compared with text (``size="big"``) or an int beyond 64 bits (also
    in an ``__in`` list), a text column with a dict or list, a flag with anything but a bool, a
    date with text that is no date. (``__in`` and ``__range`` check their values themselves.)"""
    if lookup == "isnull" or value is None or hasattr(value, "_select_ids"):  # a QuerySet
        return
    try:
        python_type = column.type.python_type
    except NotImplementedError:
        return
    where = f"{model.__name__}.{name}"
    if lookup in ("in", "range"):
        if isinstance(value, list | tuple | set | frozenset):
            for item in value:
                if isinstance(item, dict | list | tuple | set | frozenset):
                    raise InvalidArgument(
                        f"{where}__{lookup} takes single values, not {short_repr(item)}."
                    )
                if item is not None and not _fits(python_type, item):
                    raise InvalidArgument(
                        f"{where}__{lookup}: {short_repr(item)} cannot be compared with "
                        f"{where}, which holds {python_type.__name__} values."
                    )
                if python_type is int and isinstance(item, int):
                    _check_int64(where, item)
        return
    if python_type in _NUMERIC:
        if not isinstance(value, _NUMERIC):
            raise InvalidArgument(
                f"{where} holds numbers: compare it with a number, not {value!r}."
            )
        if python_type is int and isinstance(value, int):
            _check_int64(where, value)
        return
    problem = _mismatch(python_type, lookup, value)
    if problem is not None:
        raise InvalidArgument(f"{where} {problem}, not {short_repr(value)}.")


def _check_int64(where: str, value: int) -> None:
    try:
        check_int64(value)
    except DtypeError as exc:
        raise InvalidArgument(f"{where}: {exc}.") from None


def _mismatch(python_type: type, lookup: str, value: Any) -> str | None:
    """What is wrong with comparing a text, flag or date column with ``value``, or None."""
    if lookup in TEXT_LOOKUPS and python_type is not str:
        return f"holds {python_type.__name__} values: __{lookup} is for text fields"
    if python_type is str and lookup in LOOKUP_ORDER and not _fits(str, value):
        return "holds text: compare it with a str"
    if python_type is bool and not isinstance(value, bool):
        return "is True or False: compare it with a bool"
    if python_type is dt.datetime and lookup in LOOKUP_ORDER and not _is_date_like(value):
        return "holds dates and times: compare it with a datetime, a date or an ISO string"
    return None


LOOKUP_ORDER = ("exact", "gt", "gte", "lt", "lte")  # the lookups that compare one value
TEXT_LOOKUPS = frozenset(
    ("iexact", "contains", "icontains", "startswith", "istartswith", "endswith", "iendswith")
)


def _fits(python_type: type, item: Any) -> bool:
    """Whether one item of an ``__in`` or ``__range`` list can be compared with the column
    (numbers are checked where IN lists are built, ``core.db.in_values``)."""
    if python_type is str:  # an int is compared as its text (``uid__in=[...]`` of numbers)
        return isinstance(item, str) or (isinstance(item, int) and not isinstance(item, bool))
    if python_type is bool:
        return isinstance(item, bool)
    if python_type is dt.datetime:
        return _is_date_like(item)
    return True


def _is_date_like(value: Any) -> bool:
    if isinstance(value, dt.date):
        return True
    if isinstance(value, str):
        try:
            dt.datetime.fromisoformat(value)
        except ValueError:
            return False
        return True
    return False


VISIBILITIES = ("default", "trash", "hidden")


def _check_visibility(lookup: str, value: Any) -> None:
    """Rows are "default", "trash" or "hidden" (a run's report and environment): any other
    value would silently match nothing."""
    if lookup not in ("exact", "in"):
        return
    many = lookup == "in" and not isinstance(value, str) and hasattr(value, "__iter__")
    for item in list(value) if many else [value]:
        if item not in VISIBILITIES:
            raise InvalidArgument(
                f"visibility is 'default', 'trash' or 'hidden', not {short_repr(item)}: e.g. "
                "filter(visibility='trash') lists the trash, "
                "visibility__in=['default', 'trash'] everything."
            )


def _pk_of(value: Any, rel: RelationshipProperty[Any] | None = None) -> Any:
    if isinstance(value, Base):  # a registry object
        row_id = getattr(value, "id", None)
        if row_id is None:
            raise InvalidArgument(
                f"{value!r} is not saved yet: call .save() before filtering by it."
            )
        return row_id
    if isinstance(value, int) and not isinstance(value, bool):
        return value  # an id
    if rel is not None:
        target = rel.mapper.class_
        field = next((f for f in ("handle", "key", "name", "uid") if hasattr(target, f)), "uid")
        raise InvalidArgument(
            f"{rel.key!r} takes a {target.__name__} object or its id, not {value!r}. To match "
            f"one of its fields, name it: {rel.key}__{field}={value!r}."
        )
    return value


def _relation_condition(
    entity: Entity, rel: RelationshipProperty[Any], rest: list[str], value: Any, dialect: str
) -> Any:
    target_model = rel.mapper.class_
    target = aliased(target_model)
    if rest and not (len(rest) == 1 and rest[0] in RELATION_LOOKUPS):
        inner = condition(target_model, "__".join(rest), value, dialect, entity=target)
        return _through(entity, rel, target, inner)
    lookup = rest[0] if rest else "exact"
    if lookup == "isnull" or value is None:
        is_null = True if lookup == "exact" else bool(value)
        if rel.direction is RelationshipDirection.MANYTOONE:
            fk = getattr(entity, _attr_key(rel.parent.class_, _local_fk(rel)))
            return fk.is_(None) if is_null else fk.is_not(None)
        related = _through(entity, rel, target, target.id.is_not(None))
        return not_(related) if is_null else related
    if lookup == "in":
        ids = value if _is_queryset(value) else [_pk_of(v, rel) for v in value]
        return _through(entity, rel, target, _in(target.id, ids, dialect))
    if rel.direction is RelationshipDirection.MANYTOONE:
        fk = getattr(entity, _attr_key(rel.parent.class_, _local_fk(rel)))
        return fk == _pk_of(value, rel)
    return _through(entity, rel, target, target.id == _pk_of(value, rel))


def _local_fk(rel: RelationshipProperty[Any]) -> Any:
    ((_remote, local),) = rel.synchronize_pairs
    return local


def _through(entity: Entity, rel: RelationshipProperty[Any], target: Entity, inner: Any) -> Any:
    """``entity`` rows related through ``rel`` to a ``target`` row matching ``inner``."""
    if rel.direction is RelationshipDirection.MANYTOONE:
        ((remote, local),) = rel.synchronize_pairs
        fk = getattr(entity, _attr_key(rel.parent.class_, local))
        ids = select(getattr(target, _attr_key(rel.mapper.class_, remote))).where(inner)
        return fk.in_(ids.correlate(None).scalar_subquery())
    if rel.direction is RelationshipDirection.ONETOMANY:
        ((local, remote),) = rel.synchronize_pairs
        remote_key = getattr(target, _attr_key(rel.mapper.class_, remote))
        # Without NULL keys: `NOT (id IN (..., NULL))` is NULL, which would drop every row
        # from `runs__isnull=True` as soon as one related row has no parent.
        ids = select(remote_key).where(inner, remote_key.is_not(None))
        own = getattr(entity, _attr_key(rel.parent.class_, local))
        return own.in_(ids.correlate(None).scalar_subquery())
    assert rel.secondary_synchronize_pairs is not None  # many-to-many
    ((local, sec_local),) = rel.synchronize_pairs
    ((remote, sec_remote),) = rel.secondary_synchronize_pairs
    target_key = getattr(target, _attr_key(rel.mapper.class_, remote))
    ids = select(sec_local).join(target, target_key == sec_remote).where(inner)
    own = getattr(entity, _attr_key(rel.parent.class_, local))
    return own.in_(ids.correlate(None).scalar_subquery())


def _attr_key(model: type[Any], column: Any) -> str:
    return model.__mapper__.get_property_by_column(column).key


def _json_condition(column: Any, rest: list[str], value: Any, dialect: str) -> Any:
    path, lookup = split_lookup(rest)
    if not path:
        if lookup != "isnull":
            raise InvalidArgument(
                f"Filter a JSON field by key: {column.key}__<key>=value, "
                f"e.g. {column.key}__learning_rate=0.01."
            )
        return apply_lookup(column, "isnull", value, dialect)
    if lookup == "isnull":
        present = json_value(column, path, "any", dialect)
        return present.is_(None) if value else present.is_not(None)
    listed = isinstance(value, list | tuple | set | frozenset)
    scalars = value if lookup in ("in", "range") and listed else [value]
    if any(isinstance(v, list | tuple | set | frozenset | dict) for v in scalars):
        raise InvalidArgument(
            f"{column.key}__{'__'.join(rest)}={short_repr(value)}: a JSON value is compared "
            "with a number, string or bool (or None; a list only with __in or __range)."
        )
    if lookup in ORDERED and _holds(value, bool):
        raise InvalidArgument(
            f"{column.key}__{'__'.join(rest)}={short_repr(value)}: true and false have no order; "
            f"compare booleans with exact, e.g. {column.key}__{'__'.join(path)}=True."
        )
    at_path = json_value(column, path, json_kind(value), dialect)
    return apply_lookup(at_path, lookup, value, dialect)


ORDERED = ("gt", "gte", "lt", "lte", "range")


def _holds(value: Any, kind: type) -> bool:
    items = value if isinstance(value, list | tuple) else [value]
    return any(isinstance(item, kind) for item in items)


def json_kind(value: Any) -> str:
    """Which SQL type a JSON value compares as."""
    probe = value
    if isinstance(value, list | tuple | set | frozenset) and value:
        probe = next(iter(value))
    if isinstance(probe, bool):
        return "bool"
    if isinstance(probe, int | float):
        return "number"
    if isinstance(probe, str):
        return "text"
    raise InvalidArgument(
        f"Cannot compare a JSON value with {short_repr(value)}: use a number, string or bool."
    )
