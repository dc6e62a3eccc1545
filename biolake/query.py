"""QuerySet: lazy, chainable queries over one registry, with Django-style lookups.

``field__relation__lookup=value`` keys are parsed by :func:`condition`. The lookup table
:data:`LOOKUPS` maps each lookup name to its SQL; only bound parameters reach SQL. Relations are
followed through ``IN (subquery)`` conditions, JSON columns by key path, and registries may resolve
further names (features) through ``_resolve_extra``. Anything unknown raises ``InvalidArgument``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload

from sqlalchemy import JSON, ColumnElement, Integer, Select, and_, false, func, not_, select
from sqlalchemy.orm import RelationshipDirection, RelationshipProperty, aliased

from biolake.errors import InvalidArgument, did_you_mean

if TYPE_CHECKING:
    import pandas as pd

    from biolake.instance import Instance
    from biolake.registries.base import Registry

T = TypeVar("T", bound="Registry")
# The instance a QuerySet builds its conditions for: hooks that read the database (feature
# names) use it, so a query on a non-current instance looks its features up in the right place.
_building_for: ContextVar[Instance | None] = ContextVar("_building_for", default=None)


def query_instance() -> Instance:
    """The instance whose query is being built, else the current instance."""
    instance = _building_for.get()
    if instance is None:
        from biolake.setup import current_instance

        instance = current_instance()
    return instance


Entity = Any  # a mapped class or an aliased class

# --- the lookup table -------------------------------------------------------------------------


def _exact(col: ColumnElement[Any], value: Any) -> ColumnElement[bool]:
    return col.is_(None) if value is None else col == value


def _in(col: ColumnElement[Any], value: Any) -> ColumnElement[bool]:
    if isinstance(value, QuerySet):
        if not isinstance(getattr(col, "type", None), Integer):
            name = getattr(col, "key", "field")
            raise InvalidArgument(
                f"`{name}__in` got a QuerySet, which stands for row ids: filter by id__in=... or "
                "by a relation, e.g. created_by__in=ln.User.filter(...)."
            )
        return col.in_(value._select_ids())
    if isinstance(value, str | bytes) or not hasattr(value, "__iter__"):
        raise InvalidArgument(f"`__in` takes a list or a QuerySet, not {value!r}.")
    return col.in_(list(value))


def _range(col: ColumnElement[Any], value: Any) -> ColumnElement[bool]:
    try:
        low, high = value
    except (TypeError, ValueError):
        raise InvalidArgument(f"`__range` takes a pair (low, high), not {value!r}.") from None
    return col.between(low, high)


def _text(value: Any, lookup: str) -> str:
    if not isinstance(value, str):
        raise InvalidArgument(f"`__{lookup}` takes a string, not {value!r}.")
    return value


LOOKUPS: dict[str, Callable[[ColumnElement[Any], Any], ColumnElement[bool]]] = {
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


def apply_lookup(col: ColumnElement[Any], lookup: str, value: Any) -> ColumnElement[bool]:
    return LOOKUPS[lookup](col, value)


# --- parsing keys into conditions -------------------------------------------------------------


def condition(
    model: type[Registry], key: str, value: Any, dialect: str, entity: Entity = None
) -> Any:
    """The SQL condition for one ``key=value`` lookup on ``model`` (or an alias of it)."""
    entity = model if entity is None else entity
    parts = key.split("__")
    name, rest = parts[0], parts[1:]
    name = "id" if name == "pk" else model._field_aliases.get(name, name)
    mapper = model.__mapper__
    if name in mapper.relationships:
        return _relation_condition(entity, mapper.relationships[name], rest, value, dialect)
    if name in mapper.column_attrs:
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
        return apply_lookup(column, lookup, value)
    extra = model._resolve_extra(entity, parts, value, dialect)
    if extra is not None:
        return extra
    known = model._filter_names()
    raise InvalidArgument(
        f"{model.__name__} has no field {name!r} (in {key}={value!r}).{did_you_mean(name, known)}"
        f" Fields: {', '.join(sorted(known))}."
    )


_NUMERIC = (int, float)


def _check_column_value(
    model: type[Registry], name: str, column: Any, lookup: str, value: Any
) -> None:
    """A number column compared with a string (``size="big"``) is a mistake, not "no rows"."""
    if lookup in ("isnull", "in", "range") or value is None:
        return
    try:
        python_type = column.type.python_type
    except NotImplementedError:
        return
    if python_type in _NUMERIC and not isinstance(value, _NUMERIC):
        raise InvalidArgument(
            f"{model.__name__}.{name} holds numbers: compare it with a number, not {value!r}."
        )


def _pk_of(value: Any, rel: RelationshipProperty[Any] | None = None) -> Any:
    from biolake.registries.base import Registry

    if isinstance(value, Registry):
        if value.id is None:
            raise InvalidArgument(
                f"{value!r} is not saved yet: call .save() before filtering by it."
            )
        return value.id
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
        ids = value if isinstance(value, QuerySet) else [_pk_of(v, rel) for v in value]
        return _through(entity, rel, target, _in(target.id, ids))
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
    from biolake.db import json_value

    path, lookup = split_lookup(rest)
    if not path:
        if lookup != "isnull":
            raise InvalidArgument(
                f"Filter a JSON field by key: {column.key}__<key>=value, "
                f"e.g. {column.key}__learning_rate=0.01."
            )
        return apply_lookup(column, "isnull", value)
    if lookup == "isnull":
        present = json_value(column, path, "any", dialect)
        return present.is_(None) if value else present.is_not(None)
    return apply_lookup(json_value(column, path, json_kind(value), dialect), lookup, value)


def json_kind(value: Any) -> str:
    """Which SQL type a JSON value compares as."""
    probe = value
    if isinstance(value, list | tuple | set) and value:
        probe = next(iter(value))
    if isinstance(probe, bool):
        return "bool"
    if isinstance(probe, int | float):
        return "number"
    if isinstance(probe, str):
        return "text"
    raise InvalidArgument(
        f"Cannot compare a JSON value with {value!r}: use a number, string or bool."
    )


# --- QuerySet ---------------------------------------------------------------------------------


class QuerySet(Generic[T]):
    """A lazy query over one registry; chain ``filter``/``exclude``/``order_by`` and read it.

    Example: ``ln.User.filter(handle__startswith="a").order_by("-created_at").to_list()``
    """

    def __init__(
        self,
        model: type[T],
        instance: Instance | None = None,
        *,
        where: tuple[Any, ...] = (),
        filtered: frozenset[str] = frozenset(),
        order: tuple[Any, ...] = (),
        window: tuple[int | None, int | None] = (None, None),
        distinct: bool = False,
        described: tuple[str, ...] = (),
    ) -> None:
        self.model = model
        self._instance_arg = instance
        self._where = where
        self._filtered = filtered  # first key parts filtered on (to skip default filters)
        self._order = order
        self._window = window
        self._distinct = distinct
        self._described = described  # the lookups as text, for error messages

    def _clone(self, **changes: Any) -> QuerySet[T]:
        state: dict[str, Any] = {
            "where": self._where,
            "filtered": self._filtered,
            "order": self._order,
            "window": self._window,
            "distinct": self._distinct,
            "described": self._described,
        }
        state.update(changes)
        return QuerySet(self.model, self._instance_arg, **state)

    @property
    def instance(self) -> Instance:
        if self._instance_arg is None:
            from biolake.setup import current_instance

            self._instance_arg = current_instance()
        return self._instance_arg

    # --- building ------------------------------------------------------------------------------

    def _conditions(self, lookups: dict[str, Any]) -> list[Any]:
        dialect = self.instance.db.dialect
        token = _building_for.set(self.instance)
        try:
            return [condition(self.model, key, value, dialect) for key, value in lookups.items()]
        finally:
            _building_for.reset(token)

    def filter(self, *queries: Any, **lookups: Any) -> QuerySet[T]:
        """Narrow to rows matching every lookup; positional SQLAlchemy conditions also work."""
        self._check_window()
        conds = [*queries, *self._conditions(lookups)]
        names = frozenset(k.split("__")[0] for k in lookups)
        texts = ["<SQL condition>"] * len(queries) + ([_format(lookups)] if lookups else [])
        described = (*self._described, *texts)
        return self._clone(
            where=(*self._where, *conds), filtered=self._filtered | names, described=described
        )

    def exclude(self, **lookups: Any) -> QuerySet[T]:
        """Drop rows matching all the lookups (rows where a compared value is NULL stay)."""
        self._check_window()
        conds = self._conditions(lookups)
        if not conds:
            return self
        excluded = not_(func.coalesce(and_(*conds), false()))
        described = (*self._described, f"exclude({_format(lookups)})")
        return self._clone(where=(*self._where, excluded), described=described)

    def order_by(self, *fields: str) -> QuerySet[T]:
        """Order by fields; ``-field`` sorts descending."""
        order = []
        for field in fields:
            name = field.lstrip("-")
            if name not in self.model.__mapper__.column_attrs:
                names = self.model._field_names()
                raise InvalidArgument(
                    f"Cannot order {self.model.__name__} by {name!r}.{did_you_mean(name, names)}"
                )
            col = getattr(self.model, name)
            order.append(col.desc() if field.startswith("-") else col.asc())
        return self._clone(order=tuple(order))

    def distinct(self) -> QuerySet[T]:
        return self._clone(distinct=True)

    def _check_window(self) -> None:
        if self._window != (None, None):
            raise InvalidArgument("Cannot filter a sliced QuerySet: filter first, then slice.")

    def _all_conditions(self) -> list[Any]:
        conds = list(self._where)
        for name, value in self.model._default_filters.items():
            if name not in self._filtered:
                conds.append(getattr(self.model, name) == value)
        return conds

    def _statement(self, *columns: Any) -> Select[Any]:
        stmt = select(*columns) if columns else select(self.model)
        stmt = stmt.where(*self._all_conditions())
        if self._distinct:
            stmt = stmt.distinct()
        stmt = stmt.order_by(*(self._order or (self.model.id.asc(),)))
        offset, limit = self._window
        if offset:
            stmt = stmt.offset(offset)
        if limit is not None:
            stmt = stmt.limit(limit)
        return stmt

    def _select_ids(self) -> Select[Any]:
        stmt = select(self.model.id).where(*self._all_conditions())
        offset, limit = self._window
        if limit is not None or offset:
            stmt = stmt.order_by(*(self._order or (self.model.id.asc(),)))
            stmt = stmt.offset(offset or 0).limit(limit)
        return stmt

    # --- reading -------------------------------------------------------------------------------

    def _execute(self, stmt: Select[Any]) -> Any:
        db = self.instance.db
        try:
            return db.session.execute(stmt)
        finally:
            db.end_read()

    def to_list(self) -> list[T]:
        """All matching rows as objects, with what the database holds now.

        Objects already loaded in this process are refreshed (``populate_existing``): another
        process may have changed them since, e.g. made another version the latest.
        """
        db = self.instance.db
        stmt = self._statement().execution_options(populate_existing=True)
        try:
            return list(db.session.scalars(stmt).all())
        finally:
            db.end_read()

    def __iter__(self) -> Iterator[T]:
        return iter(self.to_list())

    def __len__(self) -> int:
        return self.count()

    def __bool__(self) -> bool:
        return self.exists()

    @overload
    def __getitem__(self, index: int) -> T: ...
    @overload
    def __getitem__(self, index: slice) -> QuerySet[T]: ...
    def __getitem__(self, index: int | slice) -> T | QuerySet[T]:
        if isinstance(index, slice):
            if index.step not in (None, 1) or (index.start or 0) < 0 or (index.stop or 0) < 0:
                raise InvalidArgument("QuerySet slices take non-negative start:stop, no step.")
            start = index.start or 0
            limit = None if index.stop is None else max(index.stop - start, 0)
            base_offset, base_limit = self._window
            offset = (base_offset or 0) + start
            if base_limit is not None:
                limit = base_limit - start if limit is None else min(limit, base_limit - start)
            return self._clone(window=(offset, limit))
        if index < 0:
            raise InvalidArgument("Negative indexing is not supported; use .last() instead.")
        rows = self[index : index + 1].to_list()
        if not rows:
            raise IndexError(f"QuerySet index {index} out of range.")
        return rows[0]

    def count(self) -> int:
        """Number of matching rows, counted in the database."""
        inner = self._statement(self.model.id).order_by(None).subquery()
        return int(self._execute(select(func.count()).select_from(inner)).scalar_one())

    def exists(self) -> bool:
        return bool(self._execute(self._statement(self.model.id).limit(1)).first())

    def first(self) -> T | None:
        """The first row in the current order (by id when unordered), or None."""
        rows = self[:1].to_list() if self._window == (None, None) else self.to_list()[:1]
        return rows[0] if rows else None

    def last(self) -> T | None:
        """The last row in the current order (by id when unordered), or None."""
        order = self._order or (self.model.id.asc(),)
        reversed_order = tuple(_reverse(o) for o in order)
        rows = self._clone(order=reversed_order)[:1].to_list()
        return rows[0] if rows else None

    def one(self) -> T:
        """The single matching row; raises DoesNotExist or MultipleResultsFound."""
        rows = self[:2].to_list() if self._window == (None, None) else self.to_list()[:2]
        if not rows:
            raise self.model.DoesNotExist(
                f"No {self.model.__name__} matches {self._describe_filter()}."
            )
        if len(rows) > 1:
            raise self.model.MultipleResultsFound(
                f"More than one {self.model.__name__} matches {self._describe_filter()}: "
                "narrow the filter, or use .first() / .to_list()."
            )
        return rows[0]

    def one_or_none(self) -> T | None:
        """The single matching row or None; raises MultipleResultsFound for several."""
        try:
            return self.one()
        except self.model.DoesNotExist:
            return None

    def get(self, uid: str | None = None, /, **lookups: Any) -> T:
        """Exactly one row by uid, uid prefix or lookups (see ``Registry.get``)."""
        qs = self.filter(**lookups) if lookups else self
        if uid is not None:
            qs = qs.filter(self.model._uid_condition(uid))
            qs._filter_text = f"uid={uid!r}" + (f", {_format(lookups)}" if lookups else "")
        elif not lookups:
            raise InvalidArgument(
                f"{self.model.__name__}.get() needs a uid or lookups, e.g. "
                f"{self.model.__name__}.get(uid) or .get(name='x')."
            )
        else:
            qs._filter_text = _format(lookups)
        return qs.one()

    _filter_text: str | None = None

    def _describe_filter(self) -> str:
        if self._filter_text:
            return self._filter_text
        return ", ".join(self._described) if self._described else "no filter"

    def delete(self, permanent: bool = False) -> int:
        """Delete every matching row (trash, or for good with ``permanent=True``)."""
        rows = self.to_list()
        db = self.instance.db
        with db.write():
            for row in rows:
                row.delete(permanent=permanent)
        return len(rows)

    def to_dataframe(self, include: str | Sequence[str] | None = None) -> pd.DataFrame:
        """All matching rows as a pandas DataFrame indexed by id (no row cap)."""
        import pandas as pd

        names = self.model._field_names()
        columns = [getattr(self.model, n) for n in names]
        result = self._execute(self._statement(*columns))
        df = pd.DataFrame.from_records(list(result), columns=names)
        df = df.set_index("id")
        if include is not None:
            df = self.model._include_in_dataframe(self, df, include)
        return df

    df = to_dataframe

    def __repr__(self) -> str:
        rows = self[:11].to_list() if self._window == (None, None) else self.to_list()
        shown = ",\n  ".join(repr(r) for r in rows[:10])
        more = ",\n  ..." if len(rows) > 10 else ""
        return f"<QuerySet [\n  {shown}{more}\n]>" if rows else "<QuerySet []>"


def _reverse(order: Any) -> Any:
    from sqlalchemy.sql.operators import desc_op

    element = order.element
    return element.asc() if order.modifier is desc_op else element.desc()


def _format(lookups: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in lookups.items())
