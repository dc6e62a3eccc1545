"""QuerySet: lazy, chainable queries over one registry.

``filter(**lookups)`` turns each ``field__relation__lookup=value`` key into SQL with
:func:`biolake.query.lookups.condition`; the QuerySet combines them and reads rows, counts and
frames.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload

from sqlalchemy import Select, and_, bindparam, false, func, not_, select

from biolake.core.connect import current_instance
from biolake.core.values import text_problem
from biolake.errors import InvalidArgument, did_you_mean
from biolake.query.frames import fetch_raw, frame
from biolake.query.lookups import check_text, condition

if TYPE_CHECKING:
    import pandas as pd

    from biolake.core.instance import Instance
    from biolake.registries.base import Registry

T = TypeVar("T", bound="Registry")
# The instance a QuerySet builds its conditions for: hooks that read the database (feature
# names) use it, so a query on a non-current instance looks its features up in the right place.
_building_for: ContextVar[Instance | None] = ContextVar("_building_for", default=None)


# The feature conditions of the filter() call being built (see features.filters.plan_feature_terms).
_feature_terms: ContextVar[list[Any] | None] = ContextVar("_feature_terms", default=None)


def feature_terms() -> list[Any] | None:
    return _feature_terms.get()


def query_instance() -> Instance:
    """The instance whose query is being built, else the current instance."""
    instance = _building_for.get()
    if instance is None:
        instance = current_instance()
    return instance


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
        terms: tuple[Any, ...] = (),
    ) -> None:
        self.model = model
        self._instance_arg = instance
        self._where = where
        self._filtered = filtered  # first key parts filtered on (to skip default filters)
        self._order = order
        self._window = window
        self._distinct = distinct
        self._described = described  # the lookups as text, for error messages
        self._terms = terms  # the feature conditions among _where (see count_by_values)

    def _clone(self, **changes: Any) -> QuerySet[T]:
        state: dict[str, Any] = {
            "where": self._where,
            "filtered": self._filtered,
            "order": self._order,
            "window": self._window,
            "distinct": self._distinct,
            "described": self._described,
            "terms": self._terms,
        }
        state.update(changes)
        return QuerySet(self.model, self._instance_arg, **state)

    @property
    def instance(self) -> Instance:
        if self._instance_arg is None:
            self._instance_arg = current_instance()
        return self._instance_arg

    # --- building ------------------------------------------------------------------------------

    def _conditions(self, lookups: dict[str, Any]) -> tuple[list[Any], list[Any]]:
        """The SQL conditions of ``lookups``, and the feature terms among them."""
        dialect = self.instance.db.dialect
        terms: list[Any] = []
        token, terms_token = _building_for.set(self.instance), _feature_terms.set(terms)
        try:
            conds = [condition(self.model, key, value, dialect) for key, value in lookups.items()]
        finally:
            _building_for.reset(token)
            _feature_terms.reset(terms_token)
        if len(terms) > 1:
            conds = self.model._plan_terms(conds, terms)
        return conds, terms

    def filter(self, *queries: Any, **lookups: Any) -> QuerySet[T]:
        """Narrow to rows matching every lookup; positional SQLAlchemy conditions also work."""
        self._check_window()
        conds, terms = self._conditions(lookups)
        names = frozenset(k.split("__")[0] for k in lookups)
        texts = ["<SQL condition>"] * len(queries) + ([_format(lookups)] if lookups else [])
        return self._clone(
            where=(*self._where, *queries, *conds),
            filtered=self._filtered | names,
            described=(*self._described, *texts),
            terms=(*self._terms, *terms),
        )

    def exclude(self, **lookups: Any) -> QuerySet[T]:
        """Drop rows matching all the lookups (rows where a compared value is NULL stay)."""
        self._check_window()
        conds, _ = self._conditions(lookups)
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

    def _defaults(self) -> dict[str, Any]:
        """The default filters (``visibility="default"``) that this query did not override."""
        return {k: v for k, v in self.model._default_filters.items() if k not in self._filtered}

    def _all_conditions(self) -> list[Any]:
        conds = list(self._where)
        conds += [getattr(self.model, name) == value for name, value in self._defaults().items()]
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
        db = self.instance.db
        try:
            if self._terms and self._window == (None, None):
                stmt = self.model._count_terms(self._where, self._terms, self._defaults(), db)
                if stmt is not None:  # feature conditions only: counted from their indexes
                    db.roomy_hashes()
                    return int(db.session.execute(stmt).scalar_one())
            inner = self._statement(self.model.id).order_by(None).subquery()
            return int(db.session.execute(select(func.count()).select_from(inner)).scalar_one())
        finally:
            db.end_read()

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

    def get(self, uid: str | int | None = None, /, **lookups: Any) -> T:
        """Exactly one row by uid, uid prefix, id or lookups (see ``Registry.get``)."""
        if isinstance(uid, int) and not isinstance(uid, bool):
            uid, lookups = None, {"id": uid, **lookups}
        elif uid is not None and not isinstance(uid, str):
            raise InvalidArgument(
                f"{self.model.__name__}.get() takes a uid (str) or an id (int), not {uid!r}."
            )
        if uid is None and lookups and self._is_unfiltered():
            found = self._get_by_fields(lookups)
            if found is not None:
                return found
        qs = self.filter(**lookups) if lookups else self
        if uid is not None:
            check_text("uid", uid)
            qs = qs.filter(self.model._uid_condition(uid))
            qs._filter_text = f"uid={uid!r}" + (f", {_format(lookups)}" if lookups else "")
        elif not lookups:
            raise InvalidArgument(
                f"{self.model.__name__}.get() needs a uid or lookups, e.g. "
                f"{self.model.__name__}.get(uid) or .get(name='x')."
            )
        else:
            qs._filter_text = _format(lookups)
        try:
            return qs.one()
        except self.model.DoesNotExist as error:
            if uid is not None:
                raise
            hint = functools.partial(self.model._missing_hint, self, lookups)  # when shown, if ever
            raise self.model.DoesNotExist(str(error), hint=hint) from None

    def _is_unfiltered(self) -> bool:
        return not (self._where or self._filtered or self._order or self._distinct) and (
            self._window == (None, None)
        )

    def _get_by_fields(self, lookups: dict[str, Any]) -> T | None:
        """``get(key="x")`` and the like, when every lookup is a field equal to a plain value:
        a statement built once per registry and set of fields, run with the values bound.

        Building the query anew (parsing lookups, SQL expressions) was half the time of a
        ``get``. None when the lookups need more, or unless exactly one row matches (then the
        general path runs and raises its DoesNotExist / MultipleResultsFound).
        """
        fields = self.model.__mapper__.column_attrs
        for name, value in lookups.items():
            if name not in fields or not _plain_match(fields[name].columns[0].type, value):
                return None
        key = (self.model, tuple(lookups))
        stmt = _GET_STATEMENTS.get(key)
        if stmt is None:
            model = self.model
            conds = [getattr(model, name) == bindparam(f"get_{name}") for name in lookups]
            conds += [
                getattr(model, name) == value
                for name, value in model._default_filters.items()
                if name not in lookups
            ]
            stmt = select(model).where(*conds).limit(2)
            stmt = _GET_STATEMENTS[key] = stmt.execution_options(populate_existing=True)
        db = self.instance.db
        params = {f"get_{name}": value for name, value in lookups.items()}
        try:
            rows = db.session.scalars(stmt, params).all()
        finally:
            db.end_read()
        return rows[0] if len(rows) == 1 else None

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
        names = self.model._field_names()
        columns = [getattr(self.model, n) for n in names]
        rows = fetch_raw(self.instance, self._statement(*columns))
        df = frame(rows, names, [c.type for c in columns]).set_index("id")
        if include is not None:
            df = self.model._include_in_dataframe(self, df, include)
        return df

    df = to_dataframe

    def __repr__(self) -> str:
        rows = self[:11].to_list() if self._window == (None, None) else self.to_list()
        shown = ",\n  ".join(repr(r) for r in rows[:10])
        more = ",\n  ..." if len(rows) > 10 else ""
        return f"<QuerySet [\n  {shown}{more}\n]>" if rows else "<QuerySet []>"


def _plain_match(type_: Any, value: Any) -> bool:
    """Whether ``column == value`` needs no lookup logic: a str for a text column, an int for
    an integer column, a bool for a boolean one (exact types: no coercion to decide)."""
    from sqlalchemy import Boolean, Integer, String

    if type(value) is str:
        # NUL or a lone surrogate: the general path says why neither is ever stored
        return isinstance(type_, String) and text_problem(value) is None
    if type(value) is bool:
        return isinstance(type_, Boolean)
    return type(value) is int and isinstance(type_, Integer)


_GET_STATEMENTS: dict[tuple[type, tuple[str, ...]], Select[Any]] = {}


def _reverse(order: Any) -> Any:
    from sqlalchemy.sql.operators import desc_op

    element = order.element
    return element.asc() if order.modifier is desc_op else element.desc()


def _format(lookups: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in lookups.items())
