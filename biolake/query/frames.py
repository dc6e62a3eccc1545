"""DataFrames from driver rows: fetched without SQLAlchemy's per-value result processing, then
converted a whole column at a time (a 100,000-row ``to_dataframe()`` spent most of its time
turning each timestamp and boolean into Python objects one by one)."""

from __future__ import annotations

import datetime as dt
import json
from typing import TYPE_CHECKING, Any

from sqlalchemy import JSON, Boolean, Date, DateTime

if TYPE_CHECKING:
    import pandas as pd

    from biolake.core.instance import Instance


def fetch_raw(instance: Instance, stmt: Any) -> list[tuple[Any, ...]]:
    """Rows of ``stmt`` as the driver returns them (SQLite: timestamps and JSON as text)."""
    db = instance.db
    try:
        result = db.session.connection().execute(stmt)
        try:
            return list(result.cursor.fetchall())
        finally:
            result.close()
    finally:
        db.end_read()


def frame(rows: list[tuple[Any, ...]], names: list[str], types: list[Any]) -> pd.DataFrame:
    """A DataFrame of driver ``rows`` whose columns hold what the ORM would give: UTC
    timestamps, bools, dates, parsed JSON."""
    import pandas as pd

    df = pd.DataFrame.from_records(rows, columns=names)
    for name, type_ in zip(names, types, strict=True):
        df[name] = _convert(df[name], type_)
    return df


def _convert(column: pd.Series, type_: Any) -> pd.Series:
    import pandas as pd

    type_ = getattr(type_, "impl", type_)  # a TypeDecorator (UTCDateTime): its stored type
    if isinstance(type_, DateTime):
        return pd.to_datetime(column, utc=True)
    if isinstance(type_, Boolean):
        return column.astype(bool) if column.notna().all() else column.map(_bool_or_none)
    if isinstance(type_, Date):
        return column.map(_date_or_same)
    if isinstance(type_, JSON):
        return column.map(_json_or_same)
    return column


def _bool_or_none(value: Any) -> bool | None:
    return None if value is None else bool(value)


def _date_or_same(value: Any) -> Any:
    return dt.date.fromisoformat(value) if isinstance(value, str) else value


def _json_or_same(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value
