"""Property tests: any valid value survives add_values -> get_values, is found by filter, and
comparison lookups agree with Python's comparisons; on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import operator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import biolake as ln
from biolake.query.lookups import LOOKUPS

UTC = dt.UTC
INT64 = st.integers(-(2**63), 2**63 - 1)
FLOATS = st.floats(allow_nan=False, allow_infinity=False)
TEXT = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=40)
OFFSETS = st.builds(
    dt.timezone, st.timedeltas(min_value=dt.timedelta(hours=-23), max_value=dt.timedelta(hours=23))
)
DATETIMES = st.datetimes(
    min_value=dt.datetime(2, 1, 1),
    max_value=dt.datetime(9998, 12, 31),
    timezones=st.none() | st.just(UTC) | OFFSETS | st.timezones(),
)
KEYS = st.from_regex(r"[a-z][a-z0-9]{0,7}", fullmatch=True).filter(lambda k: k not in LOOKUPS)
JSON_SCALARS = st.none() | st.booleans() | INT64 | FLOATS | TEXT
JSON = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=10,
)
DICTS = st.dictionaries(KEYS, JSON, max_size=4)
VALUES = {
    "int": INT64,
    "float": FLOATS | st.integers(-(2**53), 2**53),
    "bool": st.booleans(),
    "str": TEXT,
    "date": st.dates(),
    "datetime": DATETIMES,
    "dict": DICTS,
    "list[int]": st.lists(INT64, max_size=4),
    "list[float]": st.lists(FLOATS, max_size=4),
    "list[str]": st.lists(TEXT, max_size=4),
}
PROPERTY = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def expected(dtype: str, value: Any) -> Any:
    """What get_values returns for a stored ``value``."""
    if dtype == "float":
        return float(value)
    if dtype.startswith("list["):
        return [float(v) for v in value] if dtype == "list[float]" else list(value)
    return value


def comparable(dtype: str, value: Any) -> Any:
    """What filters compare: a naive datetime counts as UTC wall time."""
    if dtype == "datetime" and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return expected(dtype, value)


def _new_run() -> Any:
    return ln.Run(transform=ln.Transform.get(key="prop.py")).save()


@pytest.fixture
def setup_features(instance: Any) -> None:
    ln.Transform(key="prop.py").save()
    for dtype in VALUES:
        ln.Feature(name=_name(dtype), dtype=dtype).save()


def _name(dtype: str) -> str:
    return f"f_{dtype.replace('[', '_').replace(']', '')}"


@pytest.mark.parametrize("dtype", list(VALUES))
@PROPERTY
@given(data=st.data())
def test_round_trip_and_found_by_filter(setup_features: None, dtype: str, data: Any) -> None:
    value = data.draw(VALUES[dtype])
    name = _name(dtype)
    run = _new_run()
    run.features.add_values({name: value})
    got = run.features.get_values()[name]
    assert got == expected(dtype, value)
    assert type(got) is type(expected(dtype, value))
    if dtype == "datetime":  # naive stays naive; aware is the same instant at the same offset
        assert (got.tzinfo is None) == (value.tzinfo is None)
        assert got.utcoffset() == value.utcoffset()
    mine = ln.Run.filter(id=run.id)
    if dtype == "dict":
        for key, item in value.items():
            if isinstance(item, bool | int | float | str):
                assert mine.filter(**{f"{name}__{key}": item}).exists()
        return
    for item in value if dtype.startswith("list[") else [value]:
        assert mine.filter(**{name: item}).exists()
    if not dtype.startswith("list["):
        assert mine.filter(**{f"{name}__in": [value]}).exists()


@PROPERTY
@given(value=st.floats(width=32, allow_nan=False, allow_infinity=False))
def test_numpy_float32_is_stored_by_its_shortest_form(setup_features: None, value: float) -> None:
    """np.float32(x) is stored as the shortest decimal that is that float32 (0.55, not
    0.550000011920929), and found by the same float32 or by that decimal."""
    import numpy as np

    name = _name("float")
    x = np.float32(value)
    run = _new_run()
    run.features.add_values({name: x})
    got = run.features.get_values()[name]
    assert got == float(str(x)) and np.float32(got) == x
    mine = ln.Run.filter(id=run.id)
    assert mine.filter(**{name: x}).exists() and mine.filter(**{name: got}).exists()


OPS = {"exact": operator.eq, "gt": operator.gt, "gte": operator.ge, "lt": operator.lt}
OPS["lte"] = operator.le
ORDERED = {
    "int": INT64,
    "float": FLOATS,
    "str": TEXT,
    "date": st.dates(),
    "datetime": DATETIMES,
}


@pytest.mark.parametrize("dtype", list(ORDERED))
@PROPERTY
@given(data=st.data())
def test_comparisons_agree_with_python(setup_features: None, dtype: str, data: Any) -> None:
    values = data.draw(st.lists(ORDERED[dtype], min_size=1, max_size=5))
    pivot = data.draw(st.sampled_from(values) | ORDERED[dtype])
    name = _name(dtype)
    runs = []
    for value in values:
        run = _new_run()
        run.features.add_values({name: value})
        runs.append((run.id, comparable(dtype, value)))
    ours = ln.Run.filter(id__in=[run_id for run_id, _ in runs])
    target = comparable(dtype, pivot)
    for lookup, op in OPS.items():
        want = sorted(run_id for run_id, value in runs if op(value, target))
        got = sorted(r.id for r in ours.filter(**{f"{name}__{lookup}": pivot}))
        assert got == want, (lookup, pivot)
    subset = values[: len(values) // 2 + 1]
    want = sorted(i for i, v in runs if v in [comparable(dtype, s) for s in subset])
    assert sorted(r.id for r in ours.filter(**{f"{name}__in": subset})) == want
