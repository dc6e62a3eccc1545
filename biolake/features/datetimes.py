"""Datetime feature values come back as they went in: naive ones naive, aware ones aware.

A value is stored in two columns of its value row:

    value_datetime   the instant, in UTC; a naive value is taken at its wall time as if in UTC
    value_int        the UTC offset of an aware value, in microseconds (0 for UTC), or
                     ``NAIVE`` for a naive value; NULL in rows written before offsets were kept
                     (those come back in UTC, as they always did)

So ``value_datetime`` alone orders and compares every value of a feature, naive and aware
mixed, by one rule: a naive value counts as UTC wall time (``filter(at__gt=...)`` with a naive
or an aware bound compares the same way). An aware value comes back at the same instant with
the UTC offset it had, as a fixed ``datetime.timezone`` (a zone such as
``ZoneInfo("Europe/Berlin")`` comes back as its offset at that instant, e.g. ``+02:00``).

Example: ``split(datetime(2025, 1, 2, 3, 4))`` is ``(datetime(2025, 1, 2, 3, 4, tzinfo=UTC),
NAIVE)`` and ``join`` of that is the naive value again.
"""

from __future__ import annotations

import datetime as dt

from biolake.core.values import DtypeError

OFFSET_COLUMN = "value_int"
NAIVE = 86_400_000_000  # one day in microseconds: no UTC offset reaches it
_MICROSECOND = dt.timedelta(microseconds=1)


def as_utc(value: dt.datetime) -> dt.datetime:
    """The instant ``value`` stands for, aware in UTC (a naive value is UTC wall time)."""
    if value.tzinfo is None or value.utcoffset() is None:
        return value.replace(tzinfo=dt.UTC)
    try:
        return value.astimezone(dt.UTC)
    except OverflowError:
        raise DtypeError(
            f"{value.isoformat()} is outside years 1-9999 in UTC: store it as a naive value or in "
            "another offset"
        ) from None


def split(value: dt.datetime) -> tuple[dt.datetime, int]:
    """``value`` as stored: (the instant in UTC, the offset mark)."""
    offset = value.utcoffset()
    mark = NAIVE if offset is None else offset // _MICROSECOND
    return as_utc(value), mark


def join(utc: dt.datetime | None, mark: int | None) -> dt.datetime | None:
    """The stored value back: naive, or aware with its offset (UTC when ``mark`` is NULL)."""
    if utc is None:
        return None
    utc = utc.replace(tzinfo=dt.UTC) if utc.tzinfo is None else utc.astimezone(dt.UTC)
    if mark == NAIVE:
        return utc.replace(tzinfo=None)
    if not mark:
        return utc
    return utc.astimezone(dt.timezone(mark * _MICROSECOND))
