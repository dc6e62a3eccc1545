"""Feature names in ``filter``/``exclude``/``get``: each key becomes one indexed SQL condition.

``read_count__gt=10**6`` becomes

    host.id IN (SELECT host_id FROM <host>_feature_values
                WHERE feature_id = :read_count AND value_int > :x)

answered by the partial index (feature_id, value_int, host_id), so a filter mixing fields,
relations and several features stays one SQL statement. ``__isnull=True`` (no value) is a
``NOT EXISTS`` on the primary key. Categorical features compare by record (``cell_type=rec``) or
by record name, with every string lookup; dict features compare a key path
(``study_metadata__assay__type="RNA-seq"``) with the JSON rules of ``biolake.core.db.json_value``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    ColumnElement,
    case,
    cast,
    exists,
    func,
    literal,
    null,
    or_,
    select,
    text,
    union_all,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.sql.util import ClauseAdapter
from sqlalchemy.sql.visitors import replacement_traverse

from biolake.core.db import Database, in_values, json_value
from biolake.core.values import DtypeError
from biolake.errors import InvalidArgument, did_you_mean, short_repr
from biolake.features.categories import category_hint
from biolake.features.dtypes import query_value
from biolake.features.models import models
from biolake.features.values import (
    EMPTY_LIST_IDX,
    INDEXED_COLUMNS,
    TRASHED_HOSTS,
    FeatureInfo,
    load_features,
    read,
)
from biolake.query.lookups import LOOKUPS, apply_lookup, json_kind, split_lookup
from biolake.query.queryset import feature_terms, query_instance

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
            f"Cannot filter by feature {info.name!r} ({info.dtype_str}) with "
            f"{short_repr(value)}: {exc}{end}"
        ) from None
    hosts = select(table.c.host_id).where(table.c.feature_id == info.id, inner)
    cond = entity.id.in_(hosts)
    terms = feature_terms()
    if terms is not None and entity is host:  # a top-level term of filter(): plan it with others
        terms.append(_Term(cond, table, info, inner, entity, lookup))
    return cond


SAMPLE_WINDOWS = 4  # id ranges of hosts whose values are counted to estimate a term's size
SAMPLE_SPAN = 2048  # hosts per range: 8,192 in all, read in well under 1 ms at 1M hosts
RARE_SAMPLED = 32  # values in the sample below which a term is counted exactly ...
RARE_CAP = 10_000  # ... up to this many (an index range of at most 10,000 entries: ~1 ms)


class _Term:
    """One feature condition of a ``filter()`` call, in both of its SQL forms: ``cond``
    (``host.id IN (…)``) and ``probe`` (``EXISTS (…)`` for one host)."""

    def __init__(
        self, cond: Any, table: Any, info: FeatureInfo, inner: Any, entity: Any, lookup: str
    ) -> None:
        self.cond, self.table, self.info = cond, table, info
        self.inner, self.entity, self.lookup = inner, entity, lookup
        self.probe = self.probe_for(entity.id)
        self.size: float | None = None  # estimated matching values, set by _estimate_sizes

    def hosts(self) -> Any:
        """The ids of hosts with a matching value: one range of the (feature_id, value_x)
        index."""
        t = self.table
        return select(t.c.host_id).where(t.c.feature_id == self.info.id, self.inner)

    def probe_for(self, host_id: Any) -> Any:
        """``EXISTS`` a matching value of the host ``host_id``: answered by the index
        (host_id, feature_id, value_x) of the value column (see ``features.values``)."""
        t = self.table
        match = (t.c.host_id == host_id, t.c.feature_id == self.info.id, self.inner)
        return exists(select(t.c.host_id).where(*match))

    def unindexed_match(self, table: Any) -> Any:
        """This term's condition on ``table`` (the value table or an alias of it), written so
        that only the index (host_id, feature_id, value_x) can answer it: the feature and the
        value are compared as ``coalesce(col, NULL)``, which no index can answer, while
        ``value_x IS NOT NULL`` stays plain, as the partial index requires it.

        Without ANALYZE statistics SQLite otherwise may start from the (feature_id, value_x)
        index and scan every value of the feature, e.g. to join the driver to it (0.5 s).
        """
        t = self.table
        condition = ClauseAdapter(table).traverse((t.c.feature_id == self.info.id) & self.inner)
        unindexed = [table.c.feature_id, *(table.c[name] for name in INDEXED_COLUMNS)]

        def hide(element: Any, **_: Any) -> Any:
            if any(element is c for c in unindexed):
                return func.coalesce(element, null())
            return None

        no_options: dict[str, Any] = {}
        present = table.c[self.info.column].is_not(None)
        return replacement_traverse(condition, no_options, hide) & present

    def count_in(self, windows: list[tuple[int, int]]) -> Any:
        """The matching values of the hosts with ids in ``windows``: ranges of the index
        (host_id, feature_id, value_x). The ranges are a small table joined to it, so the
        condition (maybe a long ``__in`` list) is bound once, not once per range."""
        t, match = self.table, self.unindexed_match(self.table)
        rows = [
            select(literal(low).label("low"), literal(high).label("high")) for low, high in windows
        ]
        ranges = union_all(*rows).subquery("ranges")
        joined = ranges.join(t, t.c.host_id.between(ranges.c.low, ranges.c.high))
        return select(func.count()).select_from(joined).where(match)

    def count_up_to(self, cap: int) -> Any:
        """The matching values, counted exactly up to ``cap`` (an index range of at most cap)."""
        return select(func.count()).select_from(self.hosts().limit(cap).subquery())


def _estimate_sizes(terms: list[_Term], db: Database) -> None:
    """Set each term's ``size``: its matching values among a sample of hosts (4 id ranges
    spread from the oldest to the newest), scaled up to all hosts; exact on instances with up
    to 8,192 host ids. A term with few values in the sample is counted exactly up to
    ``RARE_CAP`` instead: a rare value may miss the sample entirely.

    Capped counts of every term (the former estimate) took 25 ms for two terms of 100,000 and
    500,000 values; the sample takes under 1 ms and orders terms of such sizes correctly.
    """
    pending = [t for t in terms if t.size is None]
    if not pending:
        return
    host = pending[0].entity.__table__
    try:
        # Two subqueries: SQLite reads min() or max() alone from the index end, both together
        # by a scan of every row.
        ends = (select(f(host.c.id)).scalar_subquery() for f in (func.min, func.max))
        low, high = db.session.execute(select(*ends)).one()
        if low is None:
            for term in pending:
                term.size = 0
            return
        span = high - low + 1
        windows, scale = [(low, high)], 1.0
        if span > SAMPLE_WINDOWS * SAMPLE_SPAN:
            last = SAMPLE_WINDOWS - 1
            starts = [low + (span - SAMPLE_SPAN) * i // last for i in range(SAMPLE_WINDOWS)]
            windows = [(start, start + SAMPLE_SPAN - 1) for start in starts]
            scale = span / (SAMPLE_WINDOWS * SAMPLE_SPAN)
        for term in pending:
            sampled = int(db.session.execute(term.count_in(windows)).scalar_one())
            term.size = sampled * scale
            if scale > 1 and sampled < RARE_SAMPLED:
                exact = int(db.session.execute(term.count_up_to(RARE_CAP)).scalar_one())
                term.size = exact if exact < RARE_CAP else max(exact, term.size)
    finally:
        db.end_read()


def _smallest(terms: list[_Term], db: Database) -> _Term:
    _estimate_sizes(terms, db)
    return min(terms, key=lambda t: t.size or 0)


def plan_feature_terms(conds: list[Any], terms: list[_Term]) -> list[Any]:
    """Several feature conditions in one filter(): the smallest drives, the others probe.

    The driver stays ``host.id IN (…)``; every other term becomes an ``EXISTS`` probe of one
    host's value in the index (host_id, feature_id, value_x). As ``IN`` lists, SQLite
    materialises every subquery, whatever its size, and intersects them: 93 -> 85 ms for
    5,042 of 1M artifacts (50,000 x 100,000 values), 295 -> 234 ms for three terms of 125,000
    to 200,000+, 24 -> 12 ms when one term is small. PostgreSQL plans both forms as
    semi-joins. ``count()`` does better still: see ``count_by_values``.
    """
    driver = _smallest(terms, query_instance().db)  # the instance the filter is built for
    probes = {id(t.cond): t.probe for t in terms if t is not driver}
    return [probes.get(id(c), c) for c in conds]


def count_by_values(
    host: Any,
    where: tuple[Any, ...],
    terms: tuple[_Term, ...],
    defaults: dict[str, Any],
    db: Database,
) -> Any | None:
    """``count()`` of a filter made only of feature conditions, read from the value indexes
    without touching the host table; None when the filter has other conditions.

    The smallest term's values drive (an index range), every other term is a probe on the
    narrow index (host_id, feature_id, value_x): a join on SQLite when the driver is an
    equality and the probed feature a scalar, else EXISTS. Hosts in the trash are left out
    through a partial index of their ids. Reading each driver host's row to check its
    visibility was most of the time of the general plan: 220 -> 46 ms for
    ``filter(read_count__gt=10**6, cell_type="T cell").count()`` (50,000 of 1M artifacts,
    SQLite, planning included).
    """
    if defaults not in ({}, {"visibility": "default"}):  # a default filter unknown here
        return None
    by_form = {id(c): t for t in terms for c in (t.cond, t.probe)}
    used = [by_form.get(id(c)) for c in where]
    if not used or any(t is None for t in used):
        return None
    used_terms = list({id(t): t for t in used if t is not None}.values())
    driver = _smallest(used_terms, db) if len(used_terms) > 1 else used_terms[0]
    t = driver.table
    matching = driver.hosts()
    probed = [u for u in used_terms if u is not driver]
    if probed and db.is_sqlite and driver.lookup != "exact":
        # A range yields hosts in value order; sorted, the probes walk each index forward
        # instead of jumping around it: 240 -> 165 ms for 125,000 hosts probed twice.
        matching = matching.order_by(t.c.host_id)
    rows: Any = matching.subquery("driver")
    host_id = rows.c.host_id
    conds = []
    for i, term in enumerate(probed):
        if db.is_sqlite and driver.lookup == "exact" and not term.info.dtype.is_list:
            # A join reads each host's one value (a scalar) without the per-row cost of a
            # correlated subquery: 47 -> 35 ms for 100,000 driver rows. A range driver gains
            # more from sorting (above), which a join would undo.
            probe = term.table.alias(f"probe{i}")
            rows = rows.join(probe, (probe.c.host_id == host_id) & term.unindexed_match(probe))
        else:
            conds.append(term.probe_for(host_id))
    counted = func.count(host_id.distinct()) if driver.info.dtype.is_list else func.count()
    everything = select(counted).select_from(rows).where(*conds)
    if not defaults:  # visibility filtered explicitly: every host counts
        return everything
    # The hosts in the trash, from a partial index that holds only them (see features.manager).
    trashed = select(host.__table__.c.id).where(text(TRASHED_HOSTS))
    if not db.is_sqlite:  # an anti-join, whatever the size
        return everything.where(~exists(trashed.where(host.__table__.c.id == host_id)))
    # One statement (one snapshot): with nothing in the trash, no check at all (checking
    # 100,000 driver rows against an empty list cost 7 ms); else the trashed ids as one list.
    visible = everything.where(host_id.not_in(trashed))
    return select(
        case((exists(trashed), visible.scalar_subquery()), else_=everything.scalar_subquery())
    )


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
    dialect = instance.db.dialect
    if lookup == "in":
        return in_values(col, [_coerce(kind, v) for v in _as_list(value)], dialect)
    if lookup == "range":
        low, high = _as_pair(value)
        return col.between(_coerce(kind, low), _coerce(kind, high))
    if lookup in TEXT_LOOKUPS and not isinstance(value, str):
        raise DtypeError(f"`__{lookup}` takes a string")
    return apply_lookup(col, lookup, _coerce(kind, value), dialect)


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
    Record = models.Record

    dialect = instance.db.dialect
    if lookup in {"exact", "in"}:
        values = _as_list(value) if lookup == "in" else [value]
        return in_values(table.c.record_id, _category_ids(instance, info, values), dialect)
    if not isinstance(value, str | tuple | list):
        raise DtypeError(f"`__{lookup}` compares record names: pass a string")
    names = select(Record.id).where(
        Record.type_id == info.dtype.record_type_id,
        _name_lookup(Record.name, lookup, value, dialect),
    )
    return table.c.record_id.in_(names)


def _name_lookup(col: Any, lookup: str, value: Any, dialect: str) -> Any:
    if lookup == "range":
        low, high = _as_pair(value)
        return col.between(low, high)
    return apply_lookup(col, lookup, value, dialect)


def _category_ids(instance: Any, info: FeatureInfo, values: list[Any]) -> list[int]:
    """The ids of categories given by records or names, in one query; an unknown name raises
    with suggestions."""
    Record = models.Record

    type_id = info.dtype.record_type_id
    ids, names = [], []
    for value in values:
        if isinstance(value, Record):
            if value.id is None or value.type_id != type_id:
                raise DtypeError(f"{value.name!r} is not a saved record of this type")
            ids.append(value.id)
        elif isinstance(value, str):
            names.append(value)
        else:
            raise DtypeError("expected a record name (str) or a Record")
    if names:
        name_in = in_values(Record.name, list(dict.fromkeys(names)), instance.db.dialect)
        stmt = select(Record.name, Record.id).where(Record.type_id == type_id, name_in)
        found = dict(read(instance, stmt))
        unknown = next((name for name in names if name not in found), None)
        if unknown is not None:
            raise DtypeError(f"no category named {unknown!r}.{category_hint(unknown, type_id)}")
        ids.extend(int(found[name]) for name in names)
    return ids


# --- dict -------------------------------------------------------------------------------------


def _dict_condition(
    table: Any, entity: Any, info: FeatureInfo, rest: list[str], value: Any, dialect: str
) -> Any:
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
            f"Cannot compare a JSON value with {short_repr(value)}: use a number, string or bool "
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
    cond = apply_lookup(at_path, lookup, value, dialect)
    return entity.id.in_(select(table.c.host_id).where(table.c.feature_id == info.id, cond))
