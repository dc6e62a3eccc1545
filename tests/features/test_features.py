"""Features: definition, annotation, validation, all-or-nothing storage; SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path
from typing import Any

import pytest
from feature_hosts import Host, host_kinds, make_host

import biolake as ln
from biolake.errors import InvalidArgument, ValidationError
from biolake.features.manager import describe_features

UTC = dt.UTC


@pytest.fixture(params=host_kinds())
def host(request: pytest.FixtureRequest, instance: Any, tmp_path: Path) -> Host:
    return make_host(request.param, tmp_path)


# --- the API contract --------------------------------------------------------------------------


def test_seed_features_snippets(host: Host) -> None:
    """The Features section of the contract, on each host registry (Artifact when it has them)."""
    from datetime import date

    ln.Feature(name="gc_content", dtype=float).save()
    ln.Feature(name="read_count", dtype=int).save()
    ln.Feature(name="experiment_date", dtype=date).save()
    ln.Feature(name="cell_type", dtype=str).save()
    ln.Feature(name="treatment", dtype=str).save()
    ln.Feature(name="study_metadata", dtype=dict).save()

    artifact = host.new()
    artifact.features.add_values({"gc_content": 0.55, "experiment_date": "2025-10-31"})
    gc_content_feature = ln.Feature.get(name="gc_content")
    artifact.features.add(gc_content_feature)
    artifact.features.add_values(
        {
            "read_count": 2_000_000,
            "cell_type": "T cell",
            "treatment": "DMSO",
            "study_metadata": {"detail1": "123", "assay": {"type": "RNA-seq"}},
        }
    )
    other = host.new()
    other.features.add_values({"gc_content": 0.7, "read_count": 10})

    Model = host.model
    ids = lambda qs: list(qs.to_dataframe().index)  # noqa: E731
    assert ids(Model.filter(gc_content=0.55)) == [artifact.id]
    assert ids(Model.filter(experiment_date="2025-10-31")) == [artifact.id]
    assert ids(Model.filter(read_count__gt=1000000)) == [artifact.id]
    assert ids(Model.filter(gc_content__gte=0.5, gc_content__lte=0.6)) == [artifact.id]
    assert ids(Model.filter(cell_type__isnull=False)) == [artifact.id]
    df = Model.filter(treatment="DMSO").to_dataframe(include="features")
    assert df.loc[artifact.id, "cell_type"] == "T cell"
    assert df.loc[artifact.id, "experiment_date"] == date(2025, 10, 31)
    assert ids(Model.filter(study_metadata__detail1="123")) == [artifact.id]
    assert ids(Model.filter(study_metadata__assay__type="RNA-seq")) == [artifact.id]


# --- defining features -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "stored"),
    [
        (int, "int"),
        (float, "float"),
        (bool, "bool"),
        (str, "str"),
        (dt.date, "date"),
        (dt.datetime, "datetime"),
        (dict, "dict"),
        (list[int], "list[int]"),
        (list[float], "list[float]"),
        (list[str], "list[str]"),
        ("int", "int"),
        ("date", "date"),
        (" list[str] ", "list[str]"),
    ],
)
def test_dtypes(instance, spec: Any, stored: str) -> None:
    feature = ln.Feature(name="f", dtype=spec).save()
    assert ln.Feature.get(name="f").dtype == stored == feature.dtype


def test_categorical_dtype(instance) -> None:
    sample = ln.Record(name="Sample", is_type=True).save()
    by_record = ln.Feature(name="sample", dtype=sample).save()
    assert by_record.dtype == "cat[Record[Sample]]"
    assert by_record.record_type_id == sample.id
    by_string = ln.Feature(name="sample", dtype="cat[Record[Sample]]").save()
    assert by_string.id == by_record.id
    with pytest.raises(ValidationError, match="is not a type"):
        ln.Feature(name="x", dtype=ln.Record(name="plain").save())
    with pytest.raises(
        ValidationError, match=r"No Record type named 'Sampel'\. Did you mean 'Sample'"
    ):
        ln.Feature(name="x", dtype="cat[Record[Sampel]]")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("integer", "Did you mean 'int'"),
        ("list", "Unknown dtype"),
        (list, "needs its element type"),
        (list[dict], "Unknown dtype"),
        (complex, "Unknown dtype"),
        (None, "Unknown dtype"),
    ],
)
def test_unknown_dtype_raises(instance, spec: Any, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        ln.Feature(name="f", dtype=spec)


def test_redefining_a_feature(instance) -> None:
    first = ln.Feature(name="read_count", dtype=int).save()
    assert ln.Feature(name="read_count", dtype="int").save().id == first.id
    with pytest.raises(ValidationError, match="already defined with dtype 'int', not 'float'"):
        ln.Feature(name="read_count", dtype=float).save()
    assert ln.Feature.filter(name="read_count").count() == 1


def test_a_saved_definition_cannot_change(instance) -> None:
    feature = ln.Feature(name="x", dtype=int).save()
    feature.dtype = "str"
    with pytest.raises(ValidationError, match="dtype of feature 'x' cannot change"):
        feature.save()
    feature.dtype = "int"
    feature.description = "descriptions may change"
    assert feature.save().description == "descriptions may change"


@pytest.mark.parametrize("name", ["status", "params", "transform", "project", "created_by", "id"])
def test_feature_name_colliding_with_a_run_field_is_rejected(instance, name: str) -> None:
    with pytest.raises(ValidationError, match="is a field of"):
        ln.Feature(name=name, dtype=int)


def test_feature_name_colliding_with_an_artifact_field_is_rejected(instance) -> None:
    from feature_hosts import host_kinds

    if "artifact" not in host_kinds():
        pytest.skip("Artifact does not carry features yet")
    for name in ["key", "suffix", "size", "description"]:
        with pytest.raises(ValidationError, match="is a field of Artifact"):
            ln.Feature(name=name, dtype=int)


@pytest.mark.parametrize("name", ["a__b", "", " x", 3])
def test_invalid_feature_names(instance, name: Any) -> None:
    with pytest.raises(ValidationError):
        ln.Feature(name=name, dtype=int)


# --- annotating --------------------------------------------------------------------------------

MICRO = dt.datetime(2025, 1, 2, 3, 4, 5, 6, tzinfo=UTC)
PLUS_2 = dt.timezone(dt.timedelta(hours=2))
NESTED = {"a": {"b": [1, 2.5, None, True]}, "c": "x"}
ROUND_TRIPS = [
    ("int", 42, 42),
    ("int", -(2**63), -(2**63)),
    ("float", 0.1, 0.1),
    ("float", 3, 3.0),  # ints are accepted for float when exactly representable
    ("bool", True, True),
    ("bool", False, False),
    ("str", "T cell", "T cell"),
    ("str", "ünïcødé ✓", "ünïcødé ✓"),
    ("str", "", ""),
    ("date", dt.date(2025, 10, 31), dt.date(2025, 10, 31)),
    ("date", "2025-10-31", dt.date(2025, 10, 31)),
    ("datetime", MICRO, MICRO),
    ("datetime", dt.datetime(2025, 1, 2, 3, 4), dt.datetime(2025, 1, 2, 3, 4)),  # stays naive
    ("datetime", "2025-01-02T05:04:00+02:00", dt.datetime(2025, 1, 2, 5, 4, tzinfo=PLUS_2)),
    ("dict", NESTED, NESTED),
    ("dict", {"big": 1e300, "small": 5e-324}, {"big": 1e300, "small": 5e-324}),
    ("dict", {}, {}),
    ("list[int]", [3, 1, 3], [3, 1, 3]),
    ("list[float]", [1, 0.5], [1.0, 0.5]),
    ("list[str]", ("b", "a"), ["b", "a"]),
    ("list[str]", [], []),
]


@pytest.mark.parametrize(("dtype", "value", "expected"), ROUND_TRIPS)
def test_values_round_trip(host: Host, dtype: str, value: Any, expected: Any) -> None:
    ln.Feature(name="f", dtype=dtype).save()
    obj = host.new()
    obj.features.add_values({"f": value})
    got = obj.features.get_values()["f"]
    assert got == expected and type(got) is type(expected)
    if isinstance(expected, dt.datetime):  # naive stays naive, aware keeps its offset
        assert got.tzinfo == expected.tzinfo and got.utcoffset() == expected.utcoffset()


def test_numpy_values(host: Host) -> None:
    """numpy scalars are stored as the Python values they stand for, and filters find them."""
    import numpy as np

    for name, dtype in [("gc_content", float), ("n", int), ("ok", bool), ("xs", list[float])]:
        ln.Feature(name=name, dtype=dtype).save()
    obj = host.new()
    values = {"gc_content": np.float32(0.55), "n": np.int64(7), "ok": np.bool_(True)}
    obj.features.add_values({**values, "xs": [np.float16(0.1), np.float32(2.5), np.float64(0.3)]})
    got = obj.features.get_values()
    assert got == {"gc_content": 0.55, "n": 7, "ok": True, "xs": [0.1, 2.5, 0.3]}
    assert [type(got[k]) for k in ["gc_content", "n", "ok"]] == [float, int, bool]
    assert all(type(x) is float for x in got["xs"])
    for lookups in [
        {"gc_content": 0.55},
        {"gc_content": np.float32(0.55)},
        {"gc_content__in": [np.float32(0.55)]},
        {"gc_content__gte": np.float32(0.55), "gc_content__lte": np.float16(0.55)},
        {"xs": np.float16(0.1)},
        {"n": np.int64(7)},
        {"n__gt": np.int32(6)},
        {"ok": np.bool_(True)},
    ]:
        assert [o.id for o in host.model.filter(**lookups)] == [obj.id], lookups
    assert not host.model.filter(ok=np.bool_(False)).exists()
    obj.features.add_values({"gc_content": np.float16(0.1), "n": np.uint8(255)})
    assert obj.features.get_values()["gc_content"] == 0.1
    assert obj.features.get_values()["n"] == 255
    with pytest.raises(ValidationError, match="finite"):
        obj.features.add_values({"gc_content": np.float32("nan")})
    with pytest.raises(ValidationError, match="expected int"):
        obj.features.add_values({"n": np.float32(1.0)})
    with pytest.raises(ValidationError, match="expected bool"):
        obj.features.add_values({"ok": np.int64(1)})


def test_categorical_values(host: Host) -> None:
    sample = ln.Record(name="Sample", is_type=True).save()
    s1 = ln.Record(name="S1", type=sample).save()
    ln.Record(name="S2", type=sample).save()
    ln.Feature(name="sample", dtype=sample).save()
    a, b = host.new(), host.new()
    a.features.add_values({"sample": "S1"})
    b.features.add_values({"sample": ln.Record.get(name="S2")})
    assert a.features.get_values() == {"sample": "S1"}
    assert b.features.get_values() == {"sample": "S2"}
    with pytest.raises(ValidationError, match=r"no category 'S3'\. Create it"):
        a.features.add_values({"sample": "S3"})
    ln.Record(name="Macrophage", type=sample).save()
    with pytest.raises(ValidationError, match=r"'macrophag'\. Did you mean 'Macrophage'"):
        a.features.add_values({"sample": "macrophag"})
    with pytest.raises(ValidationError, match="of another type"):
        a.features.add_values({"sample": ln.Record(name="S1").save()})
    assert a.features.get_values() == {"sample": "S1"}
    assert host.model.filter(sample=s1).one().id == a.id


def test_adding_a_value_again_replaces_it(host: Host) -> None:
    ln.Feature(name="x", dtype=int).save()
    ln.Feature(name="tags", dtype=list[str]).save()
    ln.Feature(name="y", dtype=str).save()
    obj = host.new()
    obj.features.add_values({"x": 1, "tags": ["a", "b", "c"], "y": "keep"})
    obj.features.add_values({"x": 2, "tags": ["d"]})
    assert obj.features.get_values() == {"x": 2, "tags": ["d"], "y": "keep"}
    assert host.model.filter(x=1).count() == 0
    assert host.model.filter(tags="a").count() == 0


def test_add_links_a_feature_without_a_value(host: Host) -> None:
    x = ln.Feature(name="x", dtype=int).save()
    ln.Feature(name="y", dtype=float).save()
    obj = host.new()
    obj.features.add_values({"x": 1})
    obj.features.add(x)  # keeps the value
    obj.features.add("y")
    obj.features.add("y")  # twice is fine
    assert obj.features.get_values() == {"x": 1}
    assert describe_features(obj) == [("x", "1  [int]"), ("y", "(no value)  [float]")]
    assert host.model.filter(y__isnull=True).one().id == obj.id
    obj.features.add_values({"y": 0.5})
    assert obj.features.get_values() == {"x": 1, "y": 0.5}


def test_remove_values(host: Host) -> None:
    ln.Feature(name="x", dtype=int).save()
    ln.Feature(name="y", dtype=int).save()
    obj = host.new()
    obj.features.add_values({"x": 1, "y": 2})
    obj.features.remove_values("x")
    assert obj.features.get_values() == {"y": 2}
    obj.features.remove_values(ln.Feature.get(name="y"))
    assert obj.features.get_values() == {}
    assert describe_features(obj) == []
    with pytest.raises(InvalidArgument):
        obj.features.remove_values()
    obj.features.add_values({"x": 3, "y": 4})
    obj.features.remove_values(["x", "y"])  # also as one list
    assert obj.features.get_values() == {}


def test_runs_carry_features(instance) -> None:
    ln.Feature(name="learning_rate", dtype=float).save()
    run = ln.Run(transform=ln.Transform(key="train.py").save()).save()
    run.features.add_values({"learning_rate": 0.01})
    assert ln.Run.get(learning_rate=0.01).id == run.id
    assert describe_features(run) == [("learning_rate", "0.01  [float]")]


# --- bad input ---------------------------------------------------------------------------------


def _nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {"leaf": 1}
    for _ in range(depth - 1):
        value = {"k": value}
    return value


BAD_VALUES = [
    ("int", "1", "expected int"),
    ("int", True, "expected int"),
    ("int", 1.5, "expected int"),
    ("int", 2**63, "fits 64 bits"),
    ("float", "0.5", "expected float"),
    ("float", math.nan, "finite"),
    ("float", math.inf, "finite"),
    ("float", True, "expected float"),
    ("float", 2**53 + 1, "no exact float"),
    ("bool", 1, "expected bool"),
    ("bool", "true", "expected bool"),
    ("str", 3, "expected str"),
    ("str", "a\x00b", "NUL"),
    ("str", "\ud800", "surrogate"),
    ("str", "x" * 2001, "at most 2000 bytes"),
    ("date", "2025-13-01", "ISO date"),
    ("date", "31/10/2025", "ISO date"),
    ("date", dt.datetime(2025, 1, 1), "expected a date"),
    ("date", 20251031, "expected a date"),
    ("datetime", "not a date", "ISO string"),
    ("datetime", dt.date(2025, 1, 1), "expected a datetime"),
    ("dict", [1, 2], "expected dict"),
    ("dict", {1: "a"}, "dict keys must be str, not 1, got {1: 'a'} (dict)"),
    ("dict", _nested(11), "at most 10 levels"),
    ("dict", {"a": "x" * 1_000_001}, "at most 1 MB"),
    ("dict", {"a": math.nan}, "finite"),
    ("dict", {"a": {1, 2}}, "must be JSON"),
    ("dict", {"a": 2**70}, "64 bits"),
    ("list[int]", 5, "expected a list"),
    ("list[int]", [1, "2"], "element 1 ('2'): expected int, got [1, '2'] (list)"),
    ("list[float]", [0.5, None], "list elements cannot be None, got [0.5, None] (list)"),
    ("int", None, "None is not a value (to remove the value, use .features.remove_values("),
]


@pytest.mark.parametrize(("dtype", "bad", "message"), BAD_VALUES)
def test_bad_values_raise_and_store_nothing(host: Host, dtype: str, bad: Any, message: str) -> None:
    ln.Feature(name="good", dtype=int).save()
    ln.Feature(name="bad_one", dtype=dtype).save()
    obj = host.new()
    obj.features.add_values({"good": 1})
    with pytest.raises(ValidationError) as info:
        obj.features.add_values({"good": 2, "bad_one": bad})
    text = str(info.value)
    assert message in text
    assert "'bad_one'" in text and f"({dtype})" in text  # names the feature and its dtype
    assert "Nothing was stored" in text
    assert obj.features.get_values() == {"good": 1}


def test_error_lists_every_bad_value(host: Host) -> None:
    ln.Feature(name="a", dtype=int).save()
    ln.Feature(name="b", dtype=dt.date).save()
    obj = host.new()
    with pytest.raises(ValidationError) as info:
        obj.features.add_values({"a": "one", "b": "2025-02-30"})
    assert "'a' (int): expected int, got 'one' (str)" in str(info.value)
    assert "'b' (date)" in str(info.value) and "'2025-02-30'" in str(info.value)


def test_none_is_not_a_value(host: Host) -> None:
    ln.Feature(name="gc_content", dtype=float).save()
    ln.Feature(name="sample", dtype=ln.Record(name="Sample", is_type=True).save()).save()
    obj = host.new()
    obj.features.add_values({"gc_content": 0.5})
    with pytest.raises(ValidationError) as info:
        obj.features.add_values({"gc_content": None})
    assert str(info.value) == (
        "Nothing was stored: feature 'gc_content' (float): None is not a value (to remove the "
        "value, use .features.remove_values('gc_content'))."
    )
    with pytest.raises(ValidationError, match=r"'sample' \(cat\[Record\[Sample\]\]\): None is"):
        obj.features.add_values({"sample": None})
    assert obj.features.get_values() == {"gc_content": 0.5}
    with pytest.raises(InvalidArgument) as query_info:  # a filter cannot order by None
        host.model.filter(gc_content__gt=None)
    assert str(query_info.value) == (
        "Cannot filter by feature 'gc_content' (float) with None: expected float, not None."
    )


def test_undefined_feature_suggests_close_names(host: Host) -> None:
    ln.Feature(name="cell_type", dtype=str).save()
    ln.Feature(name="x", dtype=int).save()
    obj = host.new()
    with pytest.raises(
        ValidationError, match=r"'cell_typ' is not defined\. Did you mean 'cell_type'"
    ):
        obj.features.add_values({"x": 1, "cell_typ": "T cell"})
    assert obj.features.get_values() == {}
    with pytest.raises(ValidationError, match="not defined"):
        obj.features.add("nope")


def test_annotating_needs_a_saved_object(instance) -> None:
    ln.Feature(name="x", dtype=int).save()
    run = ln.Run(transform=ln.Transform(key="t.py").save())
    with pytest.raises(InvalidArgument, match="Save this Run"):
        run.features.add_values({"x": 1})
    with pytest.raises(InvalidArgument, match="dict"):
        ln.Run(transform=run.transform).save().features.add_values([("x", 1)])  # type: ignore[arg-type]


def test_trashed_features_are_not_used(host: Host) -> None:
    feature = ln.Feature(name="x", dtype=int).save()
    obj = host.new()
    obj.features.add_values({"x": 1})
    feature.delete()
    assert obj.features.get_values() == {}
    restore = "ln.Feature.filter(name='x', visibility='trash').one().restore()"
    with pytest.raises(ValidationError) as info:
        obj.features.add_values({"x": 2})
    assert str(info.value) == f"Feature 'x' is in the trash: restore it with {restore}."
    with pytest.raises(InvalidArgument) as info:
        host.model.filter(x=1)
    assert str(info.value) == (
        f"Feature 'x' is in the trash (in x=1): restore it with {restore} to filter by it."
    )
    with pytest.raises(ValidationError, match="trash"):
        ln.Feature(name="x", dtype=int).save()
    feature.restore()
    assert obj.features.get_values() == {"x": 1}


def test_permanent_delete_of_the_object_removes_its_values(instance, host: Host) -> None:
    from sqlalchemy import func, select

    ln.Feature(name="x", dtype=int).save()
    obj = host.new()
    obj.features.add_values({"x": 1})
    table = host.model._feature_values
    count = select(func.count()).select_from(table)
    assert instance.db.session.execute(count).scalar() == 1
    instance.db.end_read()
    obj.delete(permanent=True)
    assert instance.db.session.execute(count).scalar() == 0
    instance.db.end_read()
