"""Feature names in ``filter``/``exclude``/``get``: each key becomes one indexed SQL condition.

``read_count__gt=10**6`` becomes

    host.id IN (SELECT host_id FROM <host>_feature_values
                WHERE feature_id = :read_count AND value_int > :x)

answered by the partial index (feature_id, value_int, host_id), so a filter mixing fields,
relations and several features stays one SQL statement. ``__isnull=True`` (no value) is a
``NOT EXISTS`` on the primary key. Categorical features compare by record (``cell_type=rec``) or
by record name, with every string lookup; dict features compare a key path
(``study_metadata__assay__type="RNA-seq"``) with the JSON rules of ``biolake.db.json_value``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, cast, exists, func, null, or_, select
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.sql.visitors import replacement_traverse

from biolake.dtypes import DtypeError, query_value
from biolake.errors import InvalidArgument, did_you_mean
from biolake.feature_values import (
    EMPTY_LIST_IDX,
    INDEXED_COLUMNS,
    FeatureInfo,
    load_features,
    read,
)
from biolake.lookups import LOOKUPS, apply_lookup, json_kind, split_lookup
from biolake.query import feature_terms, query_instance

TEXT_LOOKUPS = {"iexact", "contains", "icontains", "startswith", "istartswith", "endswith"}
TEXT_LOOKUPS |= {"iendswith"}
ORDER_LOOKUPS = {"gt", "gte", "lt", "lte", "range"}
ALLOWED = {
    "int": {"exact", "in", *ORDER_LOOKUPS},
    "float": {"exact", "in", *ORDER_LOOKUPS},
    "bool": {"exact", "in"},
    "str": {"exact", "in", *ORDER_LOOKUPS, *TEXT_LOOKUPS},
    "date": {"exact", "in", *ORDER_LOOKUPS},
    "datetime": {"exact", "in", *ORDER_LOOKUPS},
    "cat": {"exact", "in", *ORDER_LOOKUPS, *TEXT_LOOKUPS},
}


def feature_condition(
    host: Any, entity: Any, parts: list[str], value: Any, dialect: str
) -> ColumnElement[bool] | None:
    """The condition for ``parts=value`` when ``parts[0]`` names a feature, else None."""
    instance = query_instance()
    info = load_features(instance, [parts[0]]).get(parts[0])
    if info is None:
        return None
    table = host._feature_values
    if info.dtype.kind == "dict":
        return _dict_condition(table, entity, info, parts[1:], value, dialect)
    lookup = _lookup(info, parts)
    if lookup == "isnull" or (lookup == "exact" and value is None):
        return _presence(table, entity, info, is_null=True if value is None else bool(value))
    try:
        inner = _value_condition(instance, table, info, lookup, value)
    except DtypeError as exc:
        end = "" if str(exc).endswith(("?", ".")) else "."
        raise InvalidArgument(
            f"Cannot filter by feature {info.name!r} ({info.dtype_str}) with {value!r}: {exc}{end}"
        ) from None
    hosts = select(table.c.host_id).where(table.c.feature_id == info.id, inner)
    cond = entity.id.in_(hosts)
    terms = feature_terms()
    if terms is not None and entity is host:  # a top-level term of filter(): plan it with others
        terms.append(_Term(cond, table, info.id, inner, entity, lookup))
    return cond


ESTIMATE_CAP = 10_000


class _Term:
    """One feature condition of a ``filter()`` call, in both of its SQL forms."""

    def __init__(
        self, cond: Any, table: Any, feature_id: int, inner: Any, entity: Any, lookup: str
    ) -> None:
        self.cond, self.table, self.feature_id = cond, table, feature_id
        self.inner, self.entity, self.lookup = inner, entity, lookup

    def estimate(self, cap: int) -> int:
        """How many values match, counted up to ``cap`` (an index-only scan of at most cap)."""
        t = self.table
        matching = select(t.c.host_id).where(t.c.feature_id == self.feature_id, self.inner)
        stmt = select(func.count()).select_from(matching.limit(cap).subquery())
        db = query_instance().db
        try:
            return int(db.session.execute(stmt).scalar_one())
        finally:
            db.end_read()

    def as_exists(self) -> Any:
        t = self.table
        inner = _by_primary_key(t, self.inner)
        match = (t.c.host_id == self.entity.id, t.c.feature_id == self.feature_id, inner)
        return exists(select(t.c.host_id).where(*match))


def _by_primary_key(table: Any, condition: Any) -> Any:
    """``condition`` with each value column as ``coalesce(col, NULL)``: the same values, but no
    longer a condition that implies ``col IS NOT NULL``, so SQLite cannot pick a partial value
    index for a probe and uses the primary key (host_id, feature_id).

    Without ANALYZE statistics (the usual case: nothing runs ANALYZE), SQLite picked the
    partial index for the EXISTS probe, scanning every value of the feature once per host
    (minutes at 1M hosts, against 0.6 s for 100,000 primary-key probes).
    """
    columns = [table.c[name] for name in INDEXED_COLUMNS]

    def replace(element: Any, **_: Any) -> Any:
        if any(element is c for c in columns):
            return func.coalesce(element, null())
        return None

    no_options: dict[str, Any] = {}
    return replacement_traverse(condition, no_options, replace)


HUGE_TERM = 200_000  # values: an IN list this long costs more than probing for it
UNCAPPED = 2**62


def plan_feature_terms(conds: list[Any], terms: list[_Term]) -> list[Any]:
    """Several feature conditions in one filter(): let the smallest drive, probe the others.

    As ``IN`` lists, SQLite materialises every subquery, whatever its size, and intersects
    them. When one term matches few values (a capped count, a few ms), it drives as the only
    ``IN`` and the others become ``EXISTS`` probes on the value table's primary key
    (host_id, feature_id): 24 -> 12 ms for 507 of 1M hosts. When every term is large, probing
    each driver row costs more than building the lists (130 -> 335 ms at 5 % x 10 %), unless
    one list would be huge: at 50 % x 10 % of 1M, the 500,000-entry list made the IN form
    3.7x slower than probing for the 10 % (1.9 s against 0.51 s, a slow day's figures).
    PostgreSQL plans both forms as semi-joins.
    """
    sizes = {id(t): t.estimate(ESTIMATE_CAP) for t in terms}
    if min(sizes.values()) >= ESTIMATE_CAP:  # all large: count further (index-only ranges)
        sizes = {id(t): t.estimate(HUGE_TERM) for t in terms}
        if max(sizes.values()) < HUGE_TERM:
            return conds
        if min(sizes.values()) >= HUGE_TERM:  # all huge: a full count tells them apart
            sizes = {id(t): t.estimate(UNCAPPED) for t in terms}
    driver = min(terms, key=lambda t: sizes[id(t)])
    probes = {id(t.cond): t.as_exists() for t in terms if t is not driver}
    return [probes.get(id(c), c) for c in conds]


def _lookup(info: FeatureInfo, parts: list[str]) -> str:
    rest = parts[1:]
    lookup = rest[0] if len(rest) == 1 else "exact"
    allowed = ALLOWED[info.dtype.kind] | {"isnull"}
    if len(rest) > 1 or (rest and lookup not in LOOKUPS):
        key = "__".join(parts)
        hint = did_you_mean(rest[-1], allowed)
        raise InvalidArgument(
            f"Unknown lookup {'__'.join(rest)!r} in {key!r}: feature {info.name!r} is "
            f"{info.dtype_str}.{hint} Lookups: {', '.join(sorted(allowed))}."
        )
    if lookup not in allowed:
        raise InvalidArgument(
            f"Lookup {lookup!r} does not apply to feature {info.name!r} ({info.dtype_str}); "
            f"use one of: {', '.join(sorted(allowed))}."
        )
    return lookup


def _presence(table: Any, entity: Any, info: FeatureInfo, *, is_null: bool) -> Any:
    col = table.c[info.column]
    present = col.is_not(None)
    if info.dtype.is_list:
        present = or_(present, table.c.idx == EMPTY_LIST_IDX)  # [] is a value
    if is_null:
        # NOT EXISTS, not NOT IN: PostgreSQL plans it as an anti-join at any size.
        has_value = exists().where(
            table.c.host_id == entity.id, table.c.feature_id == info.id, present
        )
        return ~has_value
    return entity.id.in_(select(table.c.host_id).where(table.c.feature_id == info.id, present))


def _value_condition(instance: Any, table: Any, info: FeatureInfo, lookup: str, value: Any) -> Any:
    kind = info.dtype.kind
    if kind == "cat":
        return _category_condition(instance, table, info, lookup, value)
    col = table.c[info.column]
    if lookup == "in":
        return col.in_([_coerce(kind, v) for v in _as_list(value)])
    if lookup == "range":
        low, high = _as_pair(value)
        return col.between(_coerce(kind, low), _coerce(kind, high))
    if lookup in TEXT_LOOKUPS and not isinstance(value, str):
        raise DtypeError(f"`__{lookup}` takes a string")
    return apply_lookup(col, lookup, _coerce(kind, value))


def _coerce(kind: str, value: Any) -> Any:
    coerced = query_value(kind, value)
    return int(coerced) if kind == "bool" else coerced


def _as_list(value: Any) -> list[Any]:
    if isinstance(value, str | bytes) or not hasattr(value, "__iter__"):
        raise DtypeError("`__in` takes a list")
    return list(value)


def _as_pair(value: Any) -> tuple[Any, Any]:
    try:
        low, high = value
    except (TypeError, ValueError):
        raise DtypeError("`__range` takes a pair (low, high)") from None
    return low, high


# --- categorical ------------------------------------------------------------------------------


def _category_condition(
    instance: Any, table: Any, info: FeatureInfo, lookup: str, value: Any
) -> Any:
    from biolake.registries.record import Record

    values = _as_list(value) if lookup == "in" else [value]
    if lookup in {"exact", "in"}:
        ids = [_category_id(instance, info, v) for v in values]
        return table.c.record_id.in_(ids)
    if not isinstance(value, str | tuple | list):
        raise DtypeError(f"`__{lookup}` compares record names: pass a string")
    names = select(Record.id).where(
        Record.type_id == info.dtype.record_type_id,
        _name_lookup(Record.name, lookup, value),
    )
    return table.c.record_id.in_(names)


def _name_lookup(col: Any, lookup: str, value: Any) -> Any:
    if lookup == "range":
        low, high = _as_pair(value)
        return col.between(low, high)
    return apply_lookup(col, lookup, value)


def _category_id(instance: Any, info: FeatureInfo, value: Any) -> int:
    """The id of a category given by record or name; unknown names raise with suggestions."""
    from biolake.registries.record import Record

    type_id = info.dtype.record_type_id
    if isinstance(value, Record):
        if value.id is None or value.type_id != type_id:
            raise DtypeError(f"{value.name!r} is not a saved record of this type")
        return value.id
    if not isinstance(value, str):
        raise DtypeError("expected a record name (str) or a Record")
    stmt = select(Record.id).where(Record.type_id == type_id, Record.name == value)
    found = read(instance, stmt)
    if not found:
        from biolake.features import category_hint

        raise DtypeError(f"no category named {value!r}.{category_hint(value, type_id)}")
    return int(found[0][0])


# --- dict -------------------------------------------------------------------------------------


def _dict_condition(
    table: Any, entity: Any, info: FeatureInfo, rest: list[str], value: Any, dialect: str
) -> Any:
    from biolake.db import json_value

    path, lookup = split_lookup(rest)
    if not path:
        if lookup == "isnull":
            return _presence(table, entity, info, is_null=bool(value))
        raise InvalidArgument(
            f"Filter the dict feature {info.name!r} by key: {info.name}__<key>=value, "
            f"e.g. {info.name}__assay__type='RNA-seq'."
        )
    # Stored as JSON text (exact round trips); PostgreSQL compares through jsonb.
    column = table.c.value_json if dialect == "sqlite" else cast(table.c.value_json, JSONB)
    if lookup == "exact" and value is None:
        lookup, value = "isnull", True
    if lookup not in {"in", "range"} and isinstance(value, list | tuple | set | dict):
        raise InvalidArgument(
            f"Cannot compare a JSON value with {value!r}: use a number, string or bool "
            f"(or {info.name}__{'__'.join(path)}__in=[...])."
        )
    if lookup == "isnull":
        present = json_value(column, path, "any", dialect).is_not(None)
        if value:
            return ~exists().where(
                table.c.host_id == entity.id, table.c.feature_id == info.id, present
            )
        return entity.id.in_(select(table.c.host_id).where(table.c.feature_id == info.id, present))
    at_path = json_value(column, path, json_kind(value), dialect)
    cond = apply_lookup(at_path, lookup, value)
    return entity.id.in_(select(table.c.host_id).where(table.c.feature_id == info.id, cond))
