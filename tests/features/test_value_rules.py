"""Values come back as they went in: naive and aware datetimes, -0.0, NaN; SQLite and PostgreSQL.

The rules (docs/records_features.md): a naive datetime comes back naive and equal, an aware one
at the same instant with the UTC offset it had; filters compare naive values as UTC wall time.
``-0.0`` is stored as ``0.0`` (float features, dicts, params); NaN and infinity are refused.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import insert

import biolake as ln
from biolake.errors import InvalidArgument, ValidationError

UTC = dt.UTC
PLUS_2 = dt.timezone(dt.timedelta(hours=2))
MINUS_5_30 = dt.timezone(-dt.timedelta(hours=5, minutes=30))
NOON = dt.datetime(2025, 6, 1, 12, 0)
BERLIN = ZoneInfo("Europe/Berlin")


@pytest.fixture
def new_run(instance: Any) -> Any:
    transform = ln.Transform(key="values.py").save()
    for name, dtype in {"at": dt.datetime, "x": float, "xs": list[float], "meta": dict}.items():
        ln.Feature(name=name, dtype=dtype).save()
    return lambda: ln.Run(transform=transform).save()


# --- datetimes ---------------------------------------------------------------------------------

# value stored -> (value back, its UTC offset or None for naive)
DATETIMES = [
    (NOON, NOON, None),
    (dt.datetime(2025, 6, 1, 12, 0, 0, 123456), dt.datetime(2025, 6, 1, 12, 0, 0, 123456), None),
    (NOON.replace(tzinfo=UTC), NOON.replace(tzinfo=UTC), dt.timedelta(0)),
    (NOON.replace(tzinfo=PLUS_2), NOON.replace(tzinfo=PLUS_2), dt.timedelta(hours=2)),
    (NOON.replace(tzinfo=MINUS_5_30), NOON.replace(tzinfo=MINUS_5_30), -dt.timedelta(hours=5.5)),
    # A zone comes back as its offset at that instant (summer time in Berlin: +02:00).
    (NOON.replace(tzinfo=BERLIN), NOON.replace(tzinfo=PLUS_2), dt.timedelta(hours=2)),
    ("2025-06-01T12:00:00", NOON, None),
    ("2025-06-01T12:00:00+02:00", NOON.replace(tzinfo=PLUS_2), dt.timedelta(hours=2)),
    ("2025-06-01T12:00:00Z", NOON.replace(tzinfo=UTC), dt.timedelta(0)),
    (dt.datetime(1, 1, 1), dt.datetime(1, 1, 1), None),  # naive: no UTC conversion to overflow
    (dt.datetime(9999, 12, 31, 23, 59), dt.datetime(9999, 12, 31, 23, 59), None),
]  # fmt: skip


@pytest.mark.parametrize(("value", "back", "offset"), DATETIMES)
def test_datetimes_come_back_as_they_went_in(
    new_run: Any, value: Any, back: dt.datetime, offset: dt.timedelta | None
) -> None:
    run = new_run()
    run.features.add_values({"at": value})
    got = run.features.get_values()["at"]
    assert got == back and got.utcoffset() == offset
    assert (got.tzinfo is None) == (offset is None)
    assert ln.Run.filter(id=run.id, at=value).count() == 1


# bound -> hosts found by at__gt, among values stored naive and aware
GT_BOUNDS = [
    (dt.datetime(2025, 6, 1, 11, 59), ["naive noon", "noon UTC"]),
    (dt.datetime(2025, 6, 1, 11, 59, tzinfo=UTC), ["naive noon", "noon UTC"]),  # the same bound
    (dt.datetime(2025, 6, 1, 13, 59, tzinfo=PLUS_2), ["naive noon", "noon UTC"]),  # ... again
    (dt.datetime(2025, 6, 1, 9, 59), ["10:00 UTC as +02:00", "naive noon", "noon UTC"]),
    (dt.datetime(2025, 6, 1, 12, 0), []),
    (dt.date(2025, 6, 1), ["10:00 UTC as +02:00", "naive noon", "noon UTC"]),  # midnight UTC
]


@pytest.mark.parametrize(("bound", "found"), GT_BOUNDS)
def test_naive_values_compare_as_utc_wall_time(new_run: Any, bound: Any, found: list[str]) -> None:
    stored = {
        "naive noon": NOON,
        "noon UTC": NOON.replace(tzinfo=UTC),
        "10:00 UTC as +02:00": NOON.replace(tzinfo=PLUS_2),
    }
    labels = {}
    for label, value in stored.items():
        run = new_run()
        run.features.add_values({"at": value})
        labels[run.id] = label
    got = sorted(labels[r.id] for r in ln.Run.filter(at__gt=bound))
    assert got == found
    # Equality follows the same rule: naive noon is noon UTC.
    assert sorted(labels[r.id] for r in ln.Run.filter(at=NOON)) == ["naive noon", "noon UTC"]


def test_an_aware_value_outside_the_utc_range_is_refused(new_run: Any) -> None:
    run = new_run()
    late = dt.datetime(9999, 12, 31, 23, 0, tzinfo=MINUS_5_30)  # 04:30 in year 10000 in UTC
    with pytest.raises(ValidationError, match="outside years 1-9999 in UTC"):
        run.features.add_values({"at": late})
    assert run.features.get_values() == {}


def test_values_saved_before_offsets_were_kept_come_back_in_utc(
    instance: Any, new_run: Any
) -> None:
    """A row without an offset (written by an earlier biolake) reads as aware UTC, as it did."""
    run = new_run()
    feature = ln.Feature.get(name="at")
    row = {"host_id": run.id, "feature_id": feature.id, "idx": 0, "value_datetime": NOON}
    with instance.db.write() as session:
        session.execute(insert(type(run)._feature_values), [row])
    assert run.features.get_values()["at"] == NOON.replace(tzinfo=UTC)
    assert run.features.get_values()["at"].tzinfo is not None


def test_dataframe_datetime_columns(new_run: Any) -> None:
    """All naive: a naive column; any aware value: a UTC column (naive as UTC wall time)."""
    ln.Feature(name="n", dtype=int).save()
    naive_run, aware_run = new_run(), new_run()
    naive_run.features.add_values({"at": NOON, "n": 7})  # an int too: SQLite reads one column
    aware_run.features.add_values({"at": NOON.replace(tzinfo=PLUS_2), "n": 8})
    only_naive = ln.Run.filter(id=naive_run.id).to_dataframe(include=["n", "at"])
    assert str(only_naive["at"].dtype) == "datetime64[ns]"
    assert only_naive.at[naive_run.id, "at"] == NOON and only_naive.at[naive_run.id, "n"] == 7
    both = ln.Run.filter(id__in=[naive_run.id, aware_run.id]).to_dataframe(include=["at", "n"])
    assert str(both["at"].dtype) == "datetime64[ns, UTC]"
    assert both.at[naive_run.id, "at"] == NOON.replace(tzinfo=UTC)
    assert both.at[aware_run.id, "at"] == NOON.replace(tzinfo=PLUS_2)
    assert both["n"].tolist() == [7, 8]


# --- -0.0 and NaN ------------------------------------------------------------------------------

NEGATIVE_ZERO = [
    ({"x": -0.0}, {"x": 0.0}),
    ({"xs": [-0.0, 1.5, -0.0]}, {"xs": [0.0, 1.5, 0.0]}),
    ({"meta": {"z": -0.0, "deep": [{"z": -0.0}]}}, {"meta": {"z": 0.0, "deep": [{"z": 0.0}]}}),
]


@pytest.mark.parametrize(("values", "back"), NEGATIVE_ZERO)
def test_negative_zero_is_stored_as_zero(new_run: Any, values: Any, back: Any) -> None:
    run = new_run()
    run.features.add_values(values)
    got = run.features.get_values()
    assert got == back
    assert all(math.copysign(1, z) == 1 for z in _floats(got))


def test_negative_zero_is_found_by_zero_and_by_negative_zero(new_run: Any) -> None:
    run = new_run()
    run.features.add_values({"x": -0.0, "xs": [-0.0], "meta": {"z": -0.0}})
    for key in ["x", "xs", "meta__z"]:
        assert ln.Run.filter(**{key: 0.0}).count() == 1, key
        assert ln.Run.filter(**{key: -0.0}).count() == 1, key
    assert ln.Run.filter(x__lt=0.0).count() == 0 and ln.Run.filter(x__gte=0.0).count() == 1


def test_params_negative_zero_is_stored_as_zero(new_run: Any) -> None:
    transform = ln.Transform.get(key="values.py")
    run = ln.Run(transform=transform, params={"z": -0.0, "zs": [-0.0]}).save()
    params = ln.Run.get(id=run.id).params
    assert params == {"z": 0.0, "zs": [0.0]} and math.copysign(1, params["z"]) == 1
    assert ln.Run.filter(params__z=0.0).count() == 1


NOT_FINITE = [
    {"x": math.nan},
    {"x": math.inf},
    {"xs": [1.0, -math.inf]},
    {"meta": {"a": [math.nan]}},
]


@pytest.mark.parametrize("values", NOT_FINITE)
def test_nan_and_infinity_are_refused_and_nothing_is_stored(new_run: Any, values: Any) -> None:
    run = new_run()
    with pytest.raises(ValidationError, match=r"Nothing was stored.*(NaN|finite)"):
        run.features.add_values({**values, "at": NOON})
    assert run.features.get_values() == {}


@pytest.mark.parametrize("key", ["x", "x__gt", "xs", "x__in"])
def test_filters_refuse_nan(new_run: Any, key: str) -> None:
    value = [math.nan] if key.endswith("__in") else math.nan
    with pytest.raises(InvalidArgument, match="NaN"):
        ln.Run.filter(**{key: value}).count()


def test_infinite_filter_bounds_are_fine(new_run: Any) -> None:
    run = new_run()
    run.features.add_values({"x": -1e308, "xs": [1e308]})
    assert ln.Run.filter(x__lt=math.inf).count() == 1 and ln.Run.filter(x__gt=-math.inf).count()
    assert ln.Run.filter(xs__lt=math.inf).count() == 1 and ln.Run.filter(x=math.inf).count() == 0


@pytest.mark.parametrize("params", [{"z": math.nan}, {"z": [math.inf]}, {"z": {"a": -math.inf}}])
def test_params_refuse_nan_and_infinity(new_run: Any, params: dict[str, Any]) -> None:
    """Refused at construction and on assignment: a NaN row used to break every params filter
    on SQLite ("malformed JSON") and was a raw error on PostgreSQL."""
    transform = ln.Transform.get(key="values.py")
    with pytest.raises(ValidationError, match="NaN or infinity"):
        ln.Run(transform=transform, params=params)
    run = ln.Run(transform=transform, params={"z": 1}).save()
    with pytest.raises(ValidationError, match="NaN or infinity"):
        run.params = params
    assert ln.Run.get(id=run.id).params == {"z": 1}
    assert ln.Run.filter(params__z=1).count() == 1


def _floats(value: Any) -> list[float]:
    if isinstance(value, float):
        return [value]
    if isinstance(value, dict):
        return [f for v in value.values() for f in _floats(v)]
    if isinstance(value, list):
        return [f for v in value for f in _floats(v)]
    return []
