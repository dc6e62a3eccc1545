"""Where feature values live: one typed, indexed value table per host registry.

``<host>_feature_values`` has one row per (host object, feature, list position):

    host_id, feature_id, idx        primary key; idx is 0 for scalars, 0..n-1 for list elements,
                                    -1 marks an empty list
    value_int                       int and bool (0/1) features
    value_float                     float features
    value_str                       str features (PostgreSQL collation "C": code-point order)
    value_date, value_datetime      date and datetime (the instant in UTC) features; a
                                    datetime's value_int holds its UTC offset or marks it
                                    naive (``features.datetimes``)
    value_json                      dict features
    record_id                       categorical features (the record)

A row whose value columns are all NULL links a feature without a value. Each typed column has two
partial indexes ``WHERE value_x IS NOT NULL``:

- ``(feature_id, value_x, host_id)``: a feature condition is an index range scan that yields host
  ids, with no table lookup;
- ``(host_id, feature_id, value_x)``: checking one host's value (the probe of a filter with
  several feature conditions) reads one entry of a narrow index that holds only that column's
  values. Probing the primary key instead also read the table row: 3x slower at 1M hosts.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Date,
    Double,
    ForeignKey,
    Index,
    Integer,
    Table,
    Text,
    bindparam,
    select,
)

from biolake.core.schema.base import Base, UTCDateTime
from biolake.core.values import text_problem
from biolake.features import datetimes
from biolake.features.dtypes import Dtype
from biolake.features.models import models

if TYPE_CHECKING:
    from biolake.core.instance import Instance

VALUE_COLUMN = {
    "int": "value_int",
    "bool": "value_int",
    "float": "value_float",
    "str": "value_str",
    "date": "value_date",
    "datetime": "value_datetime",
    "dict": "value_json",
    "cat": "record_id",
}
VALUE_COLUMNS = tuple(dict.fromkeys(VALUE_COLUMN.values()))
INDEXED_COLUMNS = tuple(c for c in VALUE_COLUMNS if c != "value_json")
# The hosts that filters leave out by default (in the trash). Each host table has a partial
# index of their ids with exactly this condition, which a query must repeat word for word for
# SQLite to use it. (An index of all visibilities would mislead SQLite: see registries.base.)
TRASHED_HOSTS = "visibility <> 'default'"
EMPTY_LIST_IDX = -1


def value_table(host_table: str) -> Table:
    """Declare the value table of the host registry stored in ``host_table``."""
    name = f"{host_table.removesuffix('s')}_feature_values"
    text_c = Text().with_variant(Text(collation="C"), "postgresql")
    table = Table(
        name,
        Base.metadata,
        Column("host_id", ForeignKey(f"{host_table}.id", ondelete="CASCADE"), primary_key=True),
        Column("feature_id", ForeignKey("features.id", ondelete="CASCADE"), primary_key=True),
        Column("idx", Integer, primary_key=True, autoincrement=False),
        Column("value_int", BigInteger),
        Column("value_float", Double),
        Column("value_str", text_c),
        Column("value_date", Date),
        Column("value_datetime", UTCDateTime()),
        Column("value_json", JSON(none_as_null=True)),
        Column("record_id", ForeignKey("records.id", ondelete="CASCADE")),
    )
    for col in INDEXED_COLUMNS:
        present = table.c[col].is_not(None)
        Index(
            f"ix_{name}_{col}",
            table.c.feature_id,
            table.c[col],
            table.c.host_id,
            sqlite_where=present,
            postgresql_where=present,
        )
        Index(
            f"ix_{name}_{col}_by_host",
            table.c.host_id,
            table.c.feature_id,
            table.c[col],
            sqlite_where=present,
            postgresql_where=present,
        )
    present = table.c.value_json.is_not(None)
    Index(
        f"ix_{name}_value_json",
        table.c.feature_id,
        table.c.host_id,
        sqlite_where=present,
        postgresql_where=present,
    )
    return table


@dataclass(frozen=True)
class FeatureInfo:
    """What the value layer needs to know about a feature (read without the ORM)."""

    id: int
    name: str
    dtype_str: str
    dtype: Dtype

    @property
    def column(self) -> str:
        return VALUE_COLUMN[self.dtype.kind]


def _features_table() -> Any:
    Feature = models.Feature

    return Feature.__table__


@functools.cache
def _features_statement(by_name: bool) -> Any:
    """Built once: building it anew was a fifth of the time of annotating one value."""
    t = _features_table()
    stmt = select(t.c.id, t.c.name, t.c.dtype, t.c.record_type_id).where(
        t.c.visibility == "default"
    )
    if by_name:
        stmt = stmt.where(t.c.name.in_(bindparam("names", expanding=True)))
    return stmt.order_by(t.c.id)


def load_features(instance: Instance, names: Iterable[str] | None = None) -> dict[str, FeatureInfo]:
    """Features by name (all of them when ``names`` is None); trashed features are left out."""
    if names is None:
        rows = read(instance, _features_statement(by_name=False))
    else:
        # A name no feature can have (not text, NUL, a lone surrogate) is simply not found:
        # the drivers would refuse it with their own errors.
        names = [n for n in names if isinstance(n, str) and text_problem(n) is None]
        rows = read(instance, _features_statement(by_name=True), {"names": names})
    return {
        name: FeatureInfo(fid, name, dtype, Dtype.from_string(dtype, type_id))
        for fid, name, dtype, type_id in rows
    }


def feature_names(instance: Instance, *, trashed: bool = False) -> list[str]:
    """Names of the features (of those in the trash with ``trashed=True``)."""
    t = _features_table()
    visibility = "trash" if trashed else "default"
    return [r[0] for r in read(instance, select(t.c.name).where(t.c.visibility == visibility))]


def read(instance: Instance, stmt: Any, params: dict[str, Any] | None = None) -> list[Any]:
    """All rows of a read-only Core statement, ending the read transaction (see ``Database``).

    Runs on the session's connection, skipping the ORM's result layer: several times faster
    for the large reads of ``to_dataframe``.
    """
    db = instance.db
    try:
        return list(db.session.connection().execute(stmt, params).all())
    finally:
        db.end_read()


def blank_row(host_id: int, feature_id: int, idx: int = 0) -> dict[str, Any]:
    """A row with every value column NULL (insertmany needs the same keys in every row)."""
    row: dict[str, Any] = dict.fromkeys(VALUE_COLUMNS)
    row.update(host_id=host_id, feature_id=feature_id, idx=idx)
    return row


def stored_value(info: FeatureInfo, row: Any) -> Any:
    """The Python value a value row holds for ``info``'s kind (bools are stored as 0/1,
    datetimes as an instant and an offset)."""
    value = getattr(row, info.column)
    if value is not None and info.dtype.kind == "bool":
        return bool(value)
    if info.dtype.kind == "datetime":
        return datetimes.join(value, getattr(row, datetimes.OFFSET_COLUMN))
    return value


def set_stored_value(row: dict[str, Any], info: FeatureInfo, item: Any) -> None:
    """Put a checked value into the columns of a value row (see :func:`stored_value`)."""
    if info.dtype.kind == "datetime":
        row[info.column], row[datetimes.OFFSET_COLUMN] = datetimes.split(item)
    else:
        row[info.column] = int(item) if info.dtype.kind == "bool" else item
