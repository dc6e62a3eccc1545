"""Annotating objects with typed feature values: the ``HasFeatures`` mixin and ``obj.features``.

A registry opts in by listing the mixin first: ``class Run(HasFeatures, CreatedBy, Registry)``.
That declares its value table (see ``features.values``), adds ``obj.features`` and lets
``filter``/``exclude``/``get`` and ``to_dataframe(include="features")`` use feature names.

Semantics (documented in docs/records_features.md):

- ``add_values`` validates every value first and stores all of them or none; a value for a
  feature that already has one replaces it.
- ``add(feature)`` links a feature without a value and keeps existing values.
- ``get_values()`` returns ``{name: value}`` for features that have a value; categorical values
  come back as record names, naive datetimes naive, aware ones with their UTC offset.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from sqlalchemy import Index, Table, bindparam, delete, insert, inspect, select, text

from biolake.core.values import DtypeError
from biolake.errors import InvalidArgument, ValidationError, did_you_mean, join_capped
from biolake.features.categories import category_hint
from biolake.features.dtypes import Dtype, check_value
from biolake.features.models import models
from biolake.features.values import (
    EMPTY_LIST_IDX,
    TRASHED_HOSTS,
    VALUE_COLUMNS,
    FeatureInfo,
    blank_row,
    feature_names,
    load_features,
    read,
    set_stored_value,
    stored_value,
    value_table,
)
from biolake.query.queryset import query_instance

if TYPE_CHECKING:
    import pandas as pd

    from biolake.core.instance import Instance
    from biolake.query.queryset import QuerySet
    from biolake.registries.feature import Feature

_NO_VALUE = object()


class HasFeatures:
    """Mixin for registries whose objects carry feature values (runs, artifacts)."""

    _feature_values: ClassVar[Table]
    _hosts: ClassVar[list[type[Any]]] = []

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "__tablename__" in cls.__dict__:
            cls._feature_values = value_table(cls.__dict__["__tablename__"])
            # Counting by feature values leaves out the hosts in the trash through this index
            # of them alone (see features.filters.count_by_values).
            table: Any = cls.__dict__["__table__"]
            trashed = text(TRASHED_HOSTS)
            Index(
                f"ix_{table.name}_trashed",
                table.c.id,
                sqlite_where=trashed,
                postgresql_where=trashed,
            )
            HasFeatures._hosts.append(cls)

    @staticmethod
    def hosts() -> list[type[Any]]:
        """Every registry class that carries features."""
        return list(HasFeatures._hosts)

    @property
    def features(self) -> FeatureManager:
        """Add, read and remove this object's feature values."""
        return FeatureManager(self)

    @classmethod
    def _reserved_names(cls) -> set[str]:
        """Names a feature may not take: fields, relations and their aliases."""
        aliases = getattr(cls, "_field_aliases", {})
        return {*inspect(cls).attrs.keys(), *aliases, "pk", "features"}

    @classmethod
    def _resolve_extra(cls, entity: Any, parts: list[str], value: Any, dialect: str) -> Any:
        # Loaded by the first filter on a feature, not by `import biolake.registries`: the
        # filter planning and frame code is a fifth of the registries' import time.
        from biolake.features.filters import feature_condition

        return feature_condition(cls, entity, parts, value, dialect)

    @classmethod
    def _plan_terms(cls, conds: list[Any], terms: list[Any]) -> list[Any]:
        from biolake.features.filters import plan_feature_terms  # see _resolve_extra

        return plan_feature_terms(conds, terms)

    @classmethod
    def _count_terms(
        cls, where: tuple[Any, ...], terms: tuple[Any, ...], defaults: dict[str, Any], db: Any
    ) -> Any:
        from biolake.features.filters import count_by_values  # see _resolve_extra

        return count_by_values(cls, where, terms, defaults, db)

    @classmethod
    def _unknown_name_message(cls, name: str, lookup: str) -> str:
        """Neither a field nor a feature: suggest both, list them apart, say how to define it."""
        instance = query_instance()
        if name in feature_names(instance, trashed=True):
            return (
                f"Feature {name!r} is in the trash (in {lookup}): restore it with "
                f"{restore_call(name)} to filter by it."
            )
        fields: list[str] = sorted(cls._filter_names())  # type: ignore[attr-defined]
        features = sorted(feature_names(instance))
        return (
            f"{name!r} is neither a field of {cls.__name__} nor a defined feature (in {lookup})."
            f"{did_you_mean(name, [*fields, *features])} Fields: {', '.join(fields)}. "
            f"Features: {join_capped(features) if features else '(none defined)'}. "
            f"To filter by a new feature, define it first: "
            f"ln.Feature(name={name!r}, dtype=...).save()."
        )

    @classmethod
    def _include_in_dataframe(
        cls, queryset: QuerySet[Any], df: pd.DataFrame, include: Any
    ) -> pd.DataFrame:
        from biolake.features.frame import include_features  # see _resolve_extra

        return include_features(cls, queryset, df, include)


class FeatureManager:
    """``obj.features``: the feature values of one saved object."""

    def __init__(self, host: Any) -> None:
        self._host = host

    def __repr__(self) -> str:
        return f"<features of {type(self._host).__name__} {self._host.uid}>"

    def _context(self) -> tuple[Instance, Table, int]:
        host = self._host
        if host.id is None:
            raise InvalidArgument(
                f"Save this {type(host).__name__} before annotating it: call .save() first."
            )
        return host._instance, type(host)._feature_values, host.id

    def add_values(self, values: Mapping[str, Any]) -> None:
        """Validate and store values by feature name: all of them, or none on any error.

        Example: ``run.features.add_values({"read_count": 1200, "cell_type": "T cell"})``
        """
        if not isinstance(values, Mapping):
            raise InvalidArgument(
                f"add_values takes a dict of {{feature name: value}}, not {values!r}."
            )
        if not values:
            return
        instance, table, host_id = self._context()
        # Looked up and validated inside the transaction: one round trip fewer on PostgreSQL.
        with instance.db.write() as session:
            infos = _defined(instance, list(values))
            rows = _rows(instance, host_id, infos, values)
            feature_ids = [info.id for info in infos.values()]
            session.execute(_replace_statement(table), {"host": host_id, "features": feature_ids})
            session.execute(insert(table), rows)

    def add(self, *features: Feature | str) -> None:
        """Link features without a value; features that have values keep them."""
        instance, table, host_id = self._context()
        infos = _defined(instance, _names(features))
        with instance.db.write() as session:
            present = set(
                session.scalars(
                    select(table.c.feature_id).where(
                        table.c.host_id == host_id,
                        table.c.feature_id.in_([i.id for i in infos.values()]),
                    )
                )
            )
            rows = [blank_row(host_id, i.id) for i in infos.values() if i.id not in present]
            if rows:
                session.execute(insert(table), rows)

    def remove_values(self, *features: Feature | str) -> None:
        """Remove the values (and links) of the given features."""
        instance, table, host_id = self._context()
        if not features:
            raise InvalidArgument("remove_values needs feature names, e.g. remove_values('x').")
        infos = _defined(instance, _names(features))
        ids = [info.id for info in infos.values()]
        with instance.db.write() as session:
            session.execute(
                delete(table).where(table.c.host_id == host_id, table.c.feature_id.in_(ids))
            )

    def get_values(self) -> dict[str, Any]:
        """``{feature name: value}`` for every feature with a value."""
        return {
            name: value for name, (_dtype, value) in self._read().items() if value is not _NO_VALUE
        }

    def _read(self) -> dict[str, tuple[str, Any]]:
        """name -> (dtype, value or _NO_VALUE) for every linked feature, in definition order."""
        Feature = models.Feature
        Record = models.Record

        instance, table, host_id = self._context()
        f, r = Feature.__table__, Record.__table__
        values = [table.c[c] for c in VALUE_COLUMNS if c != "record_id"]
        stmt = (
            select(f.c.id, f.c.name, f.c.dtype, f.c.record_type_id, table.c.idx, *values, r.c.name)
            .select_from(table.join(f, f.c.id == table.c.feature_id))
            .outerjoin(r, r.c.id == table.c.record_id)
            .where(table.c.host_id == host_id, f.c.visibility == "default")
            .order_by(f.c.id, table.c.idx)
        )
        result: dict[str, tuple[str, Any]] = {}
        for row in read(instance, stmt):
            info = FeatureInfo(row[0], row[1], row[2], Dtype.from_string(row[2], row[3]))
            value = row[-1] if info.column == "record_id" else stored_value(info, row)
            _collect(result, info, row.idx, value)
        return result


def _collect(result: dict[str, tuple[str, Any]], info: FeatureInfo, idx: int, value: Any) -> None:
    _, current = result.get(info.name, (info.dtype_str, _NO_VALUE))
    if info.dtype.is_list and (idx == EMPTY_LIST_IDX or value is not None):
        current = [] if current is _NO_VALUE else current
        if value is not None:
            current.append(value)
    elif value is not None:
        current = value
    result[info.name] = (info.dtype_str, current)


def _names(features: Iterable[Any]) -> list[str]:
    """Names from features and names, also given as one list: f("a", "b") or f(["a", "b"])."""
    Feature = models.Feature

    features = list(features)
    if len(features) == 1 and isinstance(features[0], list | tuple | set):
        features = list(features[0])
    names = []
    for feature in features:
        if isinstance(feature, Feature):
            names.append(feature.name)
        elif isinstance(feature, str):
            names.append(feature)
        else:
            raise InvalidArgument(f"Expected a Feature or a feature name, not {feature!r}.")
    return names


@functools.cache
def _replace_statement(table: Table) -> Any:
    """DELETE one host's values of some features (before new ones go in); built once."""
    return delete(table).where(
        table.c.host_id == bindparam("host"),
        table.c.feature_id.in_(bindparam("features", expanding=True)),
    )


def _defined(instance: Instance, names: list[str]) -> dict[str, FeatureInfo]:
    """The features named ``names``; raises ValidationError naming every undefined one."""
    infos = load_features(instance, names)
    missing = [n for n in names if n not in infos]
    if missing:
        trashed = feature_names(instance, trashed=True)
        raise ValidationError(unknown_feature_message(missing, feature_names(instance), trashed))
    return infos


def _rows(
    instance: Instance, host_id: int, infos: dict[str, FeatureInfo], values: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """Validated rows for every value; one ValidationError lists every bad value."""
    errors: list[str] = []
    rows: list[dict[str, Any]] = []
    categories: list[tuple[dict[str, Any], FeatureInfo, Any]] = []
    for name, value in values.items():
        info = infos[name]
        if value is None:
            errors.append(
                f"feature {name!r} ({info.dtype_str}): None is not a value (to remove the "
                f"value, use .features.remove_values({name!r}))"
            )
            continue
        try:
            items = check_value(info.dtype, value)
        except DtypeError as exc:
            errors.append(f"feature {name!r} ({info.dtype_str}): {exc}, got {_show(value)}")
            continue
        if info.dtype.is_list and not items:
            rows.append(blank_row(host_id, info.id, EMPTY_LIST_IDX))
        for idx, item in enumerate(items):
            row = blank_row(host_id, info.id, idx)
            rows.append(row)
            if info.dtype.kind == "cat":
                categories.append((row, info, item))
            else:
                set_stored_value(row, info, item)
    errors += _resolve_categories(instance, categories)
    if errors:
        raise ValidationError("Nothing was stored: " + "; ".join(errors) + ".")
    return rows


def _show(value: Any) -> str:
    text = repr(value)
    text = text if len(text) <= 80 else text[:77] + "..."
    return f"{text} ({type(value).__name__})"


def _resolve_categories(
    instance: Instance, pending: list[tuple[dict[str, Any], FeatureInfo, Any]]
) -> list[str]:
    """Set ``record_id`` of categorical rows from names or records; return the errors."""
    Record = models.Record

    wanted: dict[int | None, set[str]] = {}
    for _row, info, item in pending:
        if isinstance(item, str):
            wanted.setdefault(info.dtype.record_type_id, set()).add(item)
    ids: dict[tuple[int | None, str], int] = {}
    for type_id, names in wanted.items():
        stmt = select(Record.id, Record.name).where(
            Record.type_id == type_id, Record.name.in_(names), Record.visibility == "default"
        )
        ids.update({(type_id, name): rid for rid, name in read(instance, stmt)})
    errors = []
    for row, info, item in pending:
        type_id = info.dtype.record_type_id
        if isinstance(item, str):
            row["record_id"] = ids.get((type_id, item))
            if row["record_id"] is None:
                errors.append(_unknown_category(info, item))
        elif item.id is None or item.type_id != type_id:
            errors.append(
                f"feature {info.name!r} ({info.dtype_str}) takes records of that type; "
                f"{item.name!r} is {'not saved' if item.id is None else 'of another type'}"
            )
        else:
            row["record_id"] = item.id
    return errors


def _unknown_category(info: FeatureInfo, name: str) -> str:
    hint = category_hint(name, info.dtype.record_type_id)
    return (
        f"feature {info.name!r} ({info.dtype_str}) has no category {name!r}.{hint} "
        f"Create it with ln.Record(name={name!r}, type=<the type record>).save()"
    )


def describe_features(obj: Any) -> list[tuple[str, str]]:
    """(name, "value  [dtype]") rows for ``describe()``; linked features show "(no value)"."""
    if getattr(obj, "id", None) is None or not isinstance(obj, HasFeatures):
        return []
    rows = []
    for name, (dtype, value) in obj.features._read().items():
        shown = "(no value)" if value is _NO_VALUE else _format(value)
        rows.append((name, f"{shown}  [{dtype}]"))
    return rows


def _format(value: Any) -> str:
    import datetime as dt

    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    text = repr(value) if not isinstance(value, str) else value
    return text if len(text) <= 100 else text[:97] + "..."


def unknown_feature_message(names: list[str], known: list[str], trashed: list[str]) -> str:
    """Each name is undefined (with close names) or in the trash (with how to restore it)."""
    sentences = [
        f"Feature {n!r} is in the trash: restore it with {restore_call(n)}."
        if n in trashed
        else f"Feature {n!r} is not defined.{did_you_mean(n, known)}"
        for n in names
    ]
    undefined = [n for n in names if n not in trashed]
    if undefined:
        sentences.append(f"Define it with ln.Feature(name={undefined[0]!r}, dtype=...).save().")
    return " ".join(sentences)


def restore_call(name: str) -> str:
    return f"ln.Feature.filter(name={name!r}, visibility='trash').one().restore()"
