"""Filtering by features and exporting them, as tables of lookups -> expected objects.

Each test builds one small lab on every host registry and backend:

    h1  read_count=2e6  gc=0.55  flag  cell_type="T cell"  day=2025-10-31  at=2025-10-31 12:00Z
        meta={detail1: "123", assay: {type: RNA-seq, n: 3}}  tags=[a, b]  sample=S1
    h2  read_count=500  gc=0.45  !flag cell_type="B cell"  day=2025-01-01  at=2025-01-01 00:00Z
        meta={detail1: 123, assay: {type: ATAC}}  tags=[]  sample=S2
    h3  read_count=1e7  cell_type="T cell"  meta={assay: {type: RNA-seq, n: 10}}  tags=[b]
    h4  no values; gc linked without a value
"""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from feature_hosts import Host, host_kinds, make_host

import biolake as ln
from biolake.errors import InvalidArgument

UTC = dt.UTC
FEATURES = {
    "read_count": int,
    "gc": float,
    "flag": bool,
    "cell_type": str,
    "day": dt.date,
    "at": dt.datetime,
    "meta": dict,
    "tags": list[str],
}


class Lab:
    def __init__(self, host: Host) -> None:
        self.model = host.model
        sample = ln.Record(name="Sample", is_type=True).save()
        for name in ["S1", "S2"]:
            ln.Record(name=name, type=sample).save()
        for name, dtype in FEATURES.items():
            ln.Feature(name=name, dtype=dtype).save()
        ln.Feature(name="sample", dtype=sample).save()
        self.objects = {label: host.new() for label in ["h1", "h2", "h3", "h4"]}
        h = self.objects
        h["h1"].features.add_values(
            {
                "read_count": 2_000_000,
                "gc": 0.55,
                "flag": True,
                "cell_type": "T cell",
                "day": "2025-10-31",
                "at": dt.datetime(2025, 10, 31, 12, tzinfo=UTC),
                "meta": {"detail1": "123", "assay": {"type": "RNA-seq", "n": 3}},
                "tags": ["a", "b"],
                "sample": "S1",
            }
        )
        h["h2"].features.add_values(
            {
                "read_count": 500,
                "gc": 0.45,
                "flag": False,
                "cell_type": "B cell",
                "day": dt.date(2025, 1, 1),
                "at": "2025-01-01T00:00:00Z",
                "meta": {"detail1": 123, "assay": {"type": "ATAC"}},
                "tags": [],
                "sample": "S2",
            }
        )
        h["h3"].features.add_values(
            {
                "read_count": 10**7,
                "cell_type": "T cell",
                "meta": {"assay": {"type": "RNA-seq", "n": 10}},
                "tags": ["b"],
            }
        )
        h["h4"].features.add("gc")

    def labels(self, qs: Any) -> list[str]:
        by_id = {obj.id: label for label, obj in self.objects.items()}
        return sorted(by_id[obj.id] for obj in qs)


@pytest.fixture(params=host_kinds())
def lab(request: pytest.FixtureRequest, instance: Any, tmp_path: Path) -> Lab:
    return Lab(make_host(request.param, tmp_path))


CASES: list[tuple[dict[str, Any], list[str]]] = [
    ({"read_count": 500}, ["h2"]),
    ({"read_count__gt": 10**6}, ["h1", "h3"]),
    ({"read_count__gt": 1e6}, ["h1", "h3"]),
    ({"read_count__gte": 500, "read_count__lt": 2_000_000}, ["h2"]),
    ({"read_count__in": [500, 10**7]}, ["h2", "h3"]),
    ({"read_count__range": (0, 2_000_000)}, ["h1", "h2"]),
    ({"read_count__isnull": True}, ["h4"]),
    ({"read_count__isnull": False}, ["h1", "h2", "h3"]),
    ({"read_count": None}, ["h4"]),
    ({"gc__gte": 0.5, "gc__lte": 0.6}, ["h1"]),
    ({"gc": 0.55}, ["h1"]),
    ({"gc__lt": 1}, ["h1", "h2"]),
    ({"gc__isnull": True}, ["h3", "h4"]),
    ({"flag": True}, ["h1"]),
    ({"flag": False}, ["h2"]),
    ({"flag__in": [True, False]}, ["h1", "h2"]),
    ({"cell_type": "T cell"}, ["h1", "h3"]),
    ({"cell_type__startswith": "T"}, ["h1", "h3"]),
    ({"cell_type__icontains": "CELL"}, ["h1", "h2", "h3"]),
    ({"cell_type__contains": "CELL"}, []),
    ({"cell_type__in": ["B cell", "X"]}, ["h2"]),
    ({"cell_type__gt": "C"}, ["h1", "h3"]),
    ({"cell_type__iexact": "t CELL"}, ["h1", "h3"]),
    ({"day": "2025-10-31"}, ["h1"]),
    ({"day__lt": dt.date(2025, 6, 1)}, ["h2"]),
    ({"day__range": ("2025-01-01", "2025-12-31")}, ["h1", "h2"]),
    ({"at__gte": "2025-06-01T00:00:00+00:00"}, ["h1"]),
    ({"at": dt.datetime(2025, 1, 1, tzinfo=UTC)}, ["h2"]),
    ({"at": dt.datetime(2025, 1, 1)}, ["h2"]),  # naive means UTC
    ({"at__lt": dt.date(2025, 6, 1)}, ["h2"]),
    ({"at__gt": dt.datetime(2025, 10, 31, 13, tzinfo=dt.timezone(dt.timedelta(hours=2)))}, ["h1"]),
    ({"meta__detail1": "123"}, ["h1"]),
    ({"meta__detail1": 123}, ["h2"]),
    ({"meta__assay__type": "RNA-seq"}, ["h1", "h3"]),
    ({"meta__assay__n__gt": 5}, ["h3"]),
    ({"meta__assay__n__isnull": True}, ["h2", "h4"]),
    ({"meta__assay__n__isnull": False}, ["h1", "h3"]),
    ({"meta__assay__type__in": ["ATAC", "x"]}, ["h2"]),
    ({"meta__isnull": True}, ["h4"]),
    ({"tags": "b"}, ["h1", "h3"]),
    ({"tags__in": ["a"]}, ["h1"]),
    ({"tags__isnull": True}, ["h4"]),  # [] is a value
    ({"sample": "S1"}, ["h1"]),
    ({"sample__in": ["S1", "S2"]}, ["h1", "h2"]),
    ({"sample__startswith": "S"}, ["h1", "h2"]),
    ({"sample__isnull": True}, ["h3", "h4"]),
    ({"read_count__gt": 10**6, "cell_type": "T cell"}, ["h1", "h3"]),
    ({"read_count__gt": 10**6, "cell_type": "T cell", "uid__isnull": False}, ["h1", "h3"]),
    ({"read_count__lt": 10**8, "meta__assay__type": "RNA-seq", "tags": "a"}, ["h1"]),
]


@pytest.mark.parametrize(("lookups", "expected"), CASES, ids=[str(c[0]) for c in CASES])
def test_filter(lab: Lab, lookups: dict[str, Any], expected: list[str]) -> None:
    assert lab.labels(lab.model.filter(**lookups)) == expected
    assert lab.model.filter(**lookups).count() == len(expected)


EXCLUDES = [
    ({"cell_type": "T cell"}, ["h2", "h4"]),
    ({"read_count__gt": 10**6}, ["h2", "h4"]),
    ({"gc__isnull": True}, ["h1", "h2"]),
    ({"meta__assay__type": "RNA-seq", "flag": True}, ["h2", "h3", "h4"]),
]


@pytest.mark.parametrize(("lookups", "expected"), EXCLUDES, ids=[str(c[0]) for c in EXCLUDES])
def test_exclude(lab: Lab, lookups: dict[str, Any], expected: list[str]) -> None:
    assert lab.labels(lab.model.exclude(**lookups)) == expected


IN_CASES = [c for c in CASES if any(k.endswith("__in") for k in c[0])] + [
    ({"gc__in": [0.45, 7.0]}, ["h2"]),
    ({"day__in": ["2025-10-31", dt.date(2024, 1, 1)]}, ["h1"]),
    ({"at__in": [dt.datetime(2025, 1, 1, tzinfo=UTC)]}, ["h2"]),
    ({"meta__assay__n__in": [3, 4]}, ["h1"]),
    ({"sample__in": ["S2", "S2"]}, ["h2"]),
]


@pytest.mark.parametrize(("lookups", "expected"), IN_CASES, ids=[str(c[0]) for c in IN_CASES])
def test_long_in_lists_travel_as_one_parameter(
    lab: Lab, lookups: dict[str, Any], expected: list[str], monkeypatch
) -> None:
    """Past LONG_IN_LIST values an IN list is one JSON (SQLite) or array (PostgreSQL)
    parameter: the same rows for every value type, here with the threshold at 0."""
    import biolake.core.db

    monkeypatch.setattr(biolake.core.db, "LONG_IN_LIST", 0)
    assert lab.labels(lab.model.filter(**lookups)) == expected
    assert lab.model.filter(**lookups).count() == len(expected)
    assert lab.labels(lab.model.exclude(**lookups)) == sorted(set(lab.objects) - set(expected))


def test_in_lists_past_the_parameter_limits(lab: Lab) -> None:
    """70,000 values: more than PostgreSQL's 65,535 parameters per statement and SQLite's
    default 32,766, for a field, a feature, a category (records and names) and a relation."""
    many = list(range(10**8, 10**8 + 70_000))
    ids = [obj.id for obj in lab.objects.values()]
    assert lab.model.filter(id__in=many + ids[:2]).count() == 2
    assert lab.labels(lab.model.filter(read_count__in=[*many, 500])) == ["h2"]
    names = [str(i) for i in many]
    assert lab.labels(lab.model.filter(cell_type__in=[*names, "B cell"])) == ["h2"]
    assert lab.labels(lab.model.exclude(cell_type__in=[*names, "B cell"])) == ["h1", "h3", "h4"]
    fractions = [i + 0.5 for i in many]  # never equal to an int; ints and floats mixed
    assert lab.labels(lab.model.filter(read_count__in=[*fractions, 500.0])) == ["h2"]
    assert lab.labels(lab.model.filter(gc__in=[*many, 0.45])) == ["h2"]
    assert lab.labels(lab.model.filter(meta__assay__n__in=[*fractions, 3])) == ["h1"]
    s1 = ln.Record.get(name="S1")
    assert lab.labels(lab.model.filter(sample__in=[s1] * 70_000)) == ["h1"]
    sample = ln.Record.get(name="Sample")
    assert ln.Record.filter(type__in=[sample] * 70_000).count() == 2


def test_unknown_category_in_a_long_list_is_named(lab: Lab) -> None:
    with pytest.raises(InvalidArgument, match=r"no category named 'S11'\. Did you mean 'S1'"):
        lab.model.filter(sample__in=["S1"] * 2_000 + ["S11"]).count()


def test_filter_by_record_and_get(lab: Lab) -> None:
    s1 = ln.Record.get(name="S1")
    assert lab.labels(lab.model.filter(sample=s1)) == ["h1"]
    assert lab.labels(lab.model.filter(sample__in=[s1, "S2"])) == ["h1", "h2"]
    assert lab.model.get(read_count=500).id == lab.objects["h2"].id
    with pytest.raises(lab.model.DoesNotExist, match="read_count=1"):
        lab.model.get(read_count=1)


def test_features_mix_with_fields_and_relations(instance) -> None:
    """The issue's example: params, features and relations in one filter (one SQL statement)."""
    ln.Feature(name="read_count", dtype=int).save()
    ln.Feature(name="cell_type", dtype=str).save()
    transform = ln.Transform(key="align.py").save()
    runs = [ln.Run(transform=transform, params={"x": x}).save() for x in [1, 1, 2]]
    for run, count in zip(runs, [2 * 10**6, 10, 3 * 10**6], strict=True):
        run.features.add_values({"read_count": count, "cell_type": "T cell"})
    qs = ln.Run.filter(params__x=1, read_count__gt=10**6, cell_type="T cell", transform=transform)
    assert [r.id for r in qs] == [runs[0].id]
    user = ln.User.get(handle="testuser")
    assert ln.Run.filter(created_by=user, cell_type="T cell").count() == 3


@pytest.mark.parametrize(
    ("lookups", "message"),
    [
        ({"read_cont": 1}, "Did you mean 'read_count'"),
        ({"read_count__contains": "1"}, "does not apply to feature 'read_count'"),
        ({"read_count__foo": 1}, "Unknown lookup 'foo'"),
        ({"read_count__gt__lt": 1}, "Unknown lookup"),
        ({"read_count": "many"}, "expected int"),
        ({"read_count__in": 5}, "takes a list"),
        ({"day": "yesterday"}, "ISO date"),
        ({"flag": 1}, "expected bool"),
        ({"gc": float("nan")}, "NaN"),
        ({"meta": 1}, "by key"),
        ({"meta__a": [1]}, "Cannot compare a JSON value"),
        ({"sample": "S9"}, "no category named 'S9'"),
        ({"sample": "s1"}, "Did you mean 'S1'"),
        ({"sample": 3}, "expected a record name"),
        ({"cell_type__startswith": 3}, "takes a string"),
        ({"read_count__gt": 10**20}, "outside the 64-bit integer range"),
        ({"read_count__isnull": "no"}, "takes True or False"),
        ({"gc__lt": -(2**64)}, "outside the 64-bit integer range"),
        ({"id__gt": 10**20}, r"\.id: 100000000000000000000 is outside the 64-bit integer range"),
    ],
)
def test_bad_filters_raise(lab: Lab, lookups: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        lab.model.filter(**lookups)


def test_unknown_name_lists_fields_and_features(lab: Lab) -> None:
    with pytest.raises(InvalidArgument) as info:
        lab.model.filter(study_metadata__detail1="123")
    text = str(info.value)
    name = lab.model.__name__
    assert text.startswith(
        f"'study_metadata' is neither a field of {name} nor a defined feature "
        "(in study_metadata__detail1='123'). Fields: "
    )
    assert "Did you mean" not in text
    fields = text.split("Fields: ")[1].split(". Features: ")[0].split(", ")
    assert "created_at" in fields and "uid" in fields
    assert fields == sorted(fields) and not set(fields) & {*FEATURES, "sample"}
    assert text.endswith(
        ". Features: at, cell_type, day, flag, gc, meta, read_count, sample, tags. "
        "To filter by a new feature, define it first: "
        "ln.Feature(name='study_metadata', dtype=...).save()."
    )
    # "Did you mean" looks at fields and features alike.
    typo = r"\(in cel_type='T cell'\)\. Did you mean 'cell_type'\?"
    with pytest.raises(InvalidArgument, match=typo):
        lab.model.filter(cel_type="T cell")
    with pytest.raises(InvalidArgument, match=r"Did you mean 'created_at'"):
        lab.model.filter(creatd_at__isnull=False)


def test_unknown_name_caps_the_feature_list(instance) -> None:
    for i in range(25):
        ln.Feature(name=f"f{i:02}", dtype=int).save()
    with pytest.raises(InvalidArgument) as info:
        ln.Run.filter(nope=1)
    features = ", ".join(f"f{i:02}" for i in range(20))
    assert f"Features: {features}, … and 5 more. To filter by" in str(info.value)


def test_unknown_name_without_features(instance) -> None:
    with pytest.raises(InvalidArgument, match=r"Features: \(none defined\)\."):
        ln.Run.filter(nope=1)
    with pytest.raises(InvalidArgument) as info:  # registries without features: fields only
        ln.User.filter(hndle="x")
    assert str(info.value).startswith(
        "User has no field 'hndle' (in hndle='x'). Did you mean 'handle'? Fields: "
    )
    assert "feature" not in str(info.value)


# --- export ------------------------------------------------------------------------------------


def test_to_dataframe_with_features(lab: Lab) -> None:
    df = lab.model.filter().to_dataframe(include="features")
    ids = {label: obj.id for label, obj in lab.objects.items()}
    assert str(df["read_count"].dtype) == "Int64"
    assert str(df["gc"].dtype) == "float64"
    assert str(df["flag"].dtype) == "boolean"
    assert str(df["at"].dtype).startswith("datetime64") and "UTC" in str(df["at"].dtype)
    h1, h2, h4 = df.loc[ids["h1"]], df.loc[ids["h2"]], df.loc[ids["h4"]]
    assert h1["read_count"] == 2_000_000 and h1["cell_type"] == "T cell" and bool(h1["flag"])
    assert h1["day"] == dt.date(2025, 10, 31)
    assert h1["at"] == dt.datetime(2025, 10, 31, 12, tzinfo=UTC)
    assert h1["meta"] == {"detail1": "123", "assay": {"type": "RNA-seq", "n": 3}}
    assert h1["tags"] == ["a", "b"] and h2["tags"] == []
    assert h1["sample"] == "S1"
    assert h4.drop(labels=list(lab.model._field_names()), errors="ignore").isna().all()
    assert list(df.columns[-9:]) == [*FEATURES, "sample"]  # definition order, after the fields
    # Missing values: pd.NA in object and nullable columns, NaN in float64, NaT in datetimes.
    for name in ["read_count", "flag", "cell_type", "day", "meta", "tags", "sample"]:
        assert df.at[ids["h4"], name] is pd.NA, name
    assert df.at[ids["h3"], "day"] is pd.NA and df.at[ids["h3"], "sample"] is pd.NA
    assert math.isnan(df.at[ids["h4"], "gc"]) and df.at[ids["h4"], "at"] is pd.NaT


def test_to_dataframe_with_chosen_features(lab: Lab) -> None:
    qs = lab.model.filter(cell_type="T cell")
    df = qs.to_dataframe(include=["gc", "read_count"])
    assert list(df.columns[-2:]) == ["gc", "read_count"]
    assert sorted(df["read_count"].tolist()) == [2_000_000, 10**7]
    one = qs.to_dataframe(include="gc")
    assert "gc" in one.columns and "read_count" not in one.columns
    sliced = lab.model.filter(cell_type="T cell")[:1].to_dataframe(include=["read_count"])
    assert sliced["read_count"].tolist() == [2_000_000]
    empty = lab.model.filter(read_count=-1).to_dataframe(include=["read_count", "gc"])
    assert empty.empty and list(empty.columns[-2:]) == ["read_count", "gc"]
    # Requested features without any value on these rows: the same dtypes and missing values.
    names = [*FEATURES, "sample"]
    bare = lab.model.filter(id=lab.objects["h4"].id).to_dataframe(include=names)
    assert bare[names].dtypes.astype(str).tolist() == [
        "Int64", "float64", "boolean", "object", "object", "datetime64[ns, UTC]", "object",
        "object", "object",
    ]  # fmt: skip
    row = bare.iloc[0]
    assert all(row[n] is pd.NA for n in names if n not in {"gc", "at"})
    assert math.isnan(row["gc"]) and row["at"] is pd.NaT
    with pytest.raises(InvalidArgument, match="Did you mean 'read_count'"):
        qs.to_dataframe(include=["read_cont"])
    with pytest.raises(InvalidArgument, match="include takes"):
        qs.to_dataframe(include=3)


def test_to_dataframe_has_no_row_cap(instance) -> None:
    ln.Feature(name="n", dtype=int).save()
    transform = ln.Transform(key="many.py").save()
    runs = ln.save([ln.Run(transform=transform) for _ in range(300)])
    for i, run in enumerate(runs):
        run.features.add_values({"n": i})
    df = ln.Run.filter(n__gte=0).to_dataframe(include="features")
    assert len(df) == 300 and df["n"].tolist() == list(range(300))


def test_several_feature_conditions_are_planned_together(instance) -> None:
    """The smallest term drives (IN) and the others are probed (EXISTS); the rows never change."""
    ln.Feature(name="depth", dtype=int).save()
    ln.Feature(name="tissue", dtype=str).save()
    transform = ln.Transform(key="plan.py").save()
    runs = [ln.Run(transform=transform).save() for _ in range(30)]
    for i, run in enumerate(runs):
        run.features.add_values({"depth": i, "tissue": "liver" if i % 3 == 0 else "lung"})
    expected = {r.id for i, r in enumerate(runs) if i > 20 and i % 3 == 0}

    def ids(qs: Any) -> set[int]:
        return {r.id for r in qs}

    # The smaller term (depth > 20: 9 runs, against 10 liver runs) drives, in either order.
    for lookups in [{"depth__gt": 20, "tissue": "liver"}, {"tissue": "liver", "depth__gt": 20}]:
        planned = ln.Run.filter(**lookups)
        conds = {"EXISTS" in str(c): str(c) for c in planned._where}
        assert "value_str" in conds[True] and "value_int" not in conds[True]  # probed
        assert conds[False].startswith("runs.id IN") and "value_int" in conds[False]  # drives
        assert ids(planned) == expected
    assert ids(ln.Run.exclude(depth__gt=20, tissue="liver")) == {r.id for r in runs} - expected
    huge = ln.Run.filter(tissue="liver", depth__gt=20)
    if instance.db.is_sqlite:  # no ANALYZE statistics: the probe must use the narrow index
        compiled = huge._statement().compile(
            instance.db.engine, compile_kwargs={"literal_binds": True}
        )
        with instance.db.engine.connect() as conn:
            plan = [row[3] for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}")]
        probe = plan[plan.index(next(p for p in plan if "CORRELATED" in p)) + 1]
        index = "ix_run_feature_values_value_str_by_host"
        assert f"COVERING INDEX {index} (host_id=? AND feature_id=? AND value_str=?)" in probe


def test_count_reads_only_the_value_indexes(lab: Lab, monkeypatch) -> None:
    """count() of feature conditions alone skips the host table, with the same numbers as
    the general query: trashed hosts left out, a list value matching twice counted once."""
    from biolake.features.filters import count_by_values

    model, h = lab.model, lab.objects

    def fast(qs: Any) -> Any:
        db = qs.instance.db
        try:
            return count_by_values(model, qs._where, qs._terms, qs._defaults(), db)
        finally:
            db.end_read()

    both = {"read_count__gt": 10**6, "cell_type": "T cell"}
    assert model.filter(**both).count() == 2
    assert model.filter(tags__in=["a", "b"]).count() == 2  # h1 matches twice, h3 once
    h["h3"].delete()  # to the trash
    queries = {
        "two terms": (model.filter(**both), 1),
        "chained": (model.filter(read_count__gt=10**6).filter(cell_type="T cell"), 1),
        "one term": (model.filter(cell_type="T cell"), 1),
        "list": (model.filter(tags__in=["a", "b"]), 1),
        "category": (model.filter(sample__in=["S1", "S2"], flag__in=[True, False]), 2),
        "joined probe": (model.filter(read_count__gt=0, cell_type="B cell"), 1),
        "list driver": (model.filter(tags="a", cell_type="T cell"), 1),
        "list probe": (model.filter(sample="S1", tags__in=["a", "b"]), 1),
    }
    db = model.filter().instance.db
    if db.is_sqlite:
        # No ANALYZE statistics: the driver (an equality) must come first, each scalar probe
        # joined through the (host_id, ...) index, whatever the order of the lookups.
        values = f"ix_{model.__tablename__.removesuffix('s')}_feature_values"
        for lookups in [{"read_count__gt": 0, "cell_type": "B cell"}, {"cell_type": "B cell"}]:
            lookups["read_count__gt"] = 0
            compiled = fast(model.filter(**lookups)).compile(
                db.engine, compile_kwargs={"literal_binds": True}
            )
            with db.engine.connect() as conn:
                plan = [row[3] for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}")]
            driver = f"{values}_value_str (feature_id=? AND value_str=?)"
            probe = f"probe0 USING COVERING INDEX {values}_value_int_by_host"
            first_driver = next(i for i, line in enumerate(plan) if line.endswith(driver))
            first_probe = next(i for i, line in enumerate(plan) if probe in line)
            assert first_driver < first_probe, plan
    for name, (qs, expected) in queries.items():
        sql = str(fast(qs))
        assert "FROM artifact_feature_values" in sql or "FROM run_feature_values" in sql, name
        # The host table is read only for the hosts in the trash (their partial index).
        host_reads = sql.count(f"FROM {model.__tablename__} ")
        assert host_reads == sql.count(f"FROM {model.__tablename__} \nWHERE visibility <> "), name
        assert qs.count() == expected == len(qs.to_list()), name
    general = {
        "with a field": (model.filter(**both, uid__isnull=False), 1),
        "in the trash": (model.filter(**both, visibility="trash"), 1),
        "excluded": (model.exclude(cell_type="B cell").filter(read_count__gt=0), 1),
        "presence": (model.filter(read_count__isnull=False, cell_type="T cell"), 1),
    }
    for name, (qs, expected) in general.items():
        assert fast(qs) is None, name
        assert qs.count() == expected == len(qs.to_list()), name
    assert model.filter(cell_type__startswith="")[:1].count() == 1  # a window: counted in full
    # Sizes estimated from a sample of hosts (two ranges of one id each): same counts.
    import biolake.features.filters as fq

    monkeypatch.setattr(fq, "SAMPLE_WINDOWS", 2)
    monkeypatch.setattr(fq, "SAMPLE_SPAN", 1)
    assert model.filter(**both).count() == 1
    assert model.filter(day__gte="2025-01-01", cell_type__gt="A").count() == 2


def test_count_is_one_statement(lab: Lab) -> None:
    """Once filter() has planned, count() runs one statement: one snapshot of the database,
    even where SQLite reads without a transaction (a trash check apart from the count could
    see another process's commit that the count does not)."""
    from sqlalchemy import event

    qs = lab.model.filter(read_count__gt=10**6, cell_type="T cell")
    engine = qs.instance.db.engine
    statements: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        assert qs.count() == 2
        lab.objects["h1"].delete()
        statements.clear()
        assert qs.count() == 1
    finally:
        event.remove(engine, "before_cursor_execute", record)
    work_mem = [s for s in statements if "set_config('work_mem'" in s]  # PostgreSQL only
    assert len(work_mem) == (0 if qs.instance.db.is_sqlite else 1)
    reads = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert len(reads) - len(work_mem) == 1


def test_term_sizes_from_a_sample(instance, monkeypatch) -> None:
    """Sizes come from a few id ranges (here 4 ranges of one id among 40 runs); a term with
    few values in them is counted exactly, so a rare value still drives; a long __in list
    is bound once, not once per range."""
    import biolake.features.filters as fq

    monkeypatch.setattr(fq, "SAMPLE_WINDOWS", 4)
    monkeypatch.setattr(fq, "SAMPLE_SPAN", 1)
    monkeypatch.setattr(fq, "RARE_SAMPLED", 2)
    ln.Feature(name="batch", dtype=int).save()
    ln.Feature(name="cell", dtype=str).save()
    transform = ln.Transform(key="sample.py").save()
    runs = ln.save([ln.Run(transform=transform) for _ in range(40)])
    for i, run in enumerate(runs):  # batch 7: the newest 20; cell T: two older runs
        run.features.add_values(
            {"batch": 7 if i >= 20 else 1, **({"cell": "T"} if i in (5, 30) else {})}
        )
    qs = ln.Run.filter(batch=7, cell="T")
    sizes = {t.info.name: t.size for t in qs._terms}
    assert sizes["cell"] == 2  # not in the sampled ids 1, 14, 27, 40: counted exactly
    assert sizes["batch"] == 2 * 10  # 2 of the 4 sampled runs, scaled by 40 / 4
    driving = [str(c) for c in qs._where if "EXISTS" not in str(c)]
    assert len(driving) == 1 and "value_str" in driving[0]
    assert qs.count() == 1 == len(qs.to_list())
    # Bound once per range, 65,000 values passed SQLite's limit of 250,000 bound variables
    # (PostgreSQL's limit is 65,535 for any query).
    many = list(range(65_000))
    assert ln.Run.filter(batch__in=many, cell="T").count() == 2
    assert ln.Run.filter(cell__in=[str(i) for i in many] + ["T"], batch=7).count() == 1


def test_json_paths_index_lists_on_both_backends(instance) -> None:
    """A digit segment indexes a list, or else is an object's key (as PostgreSQL's #> reads
    it), for dict features and JSON fields alike."""
    ln.Feature(name="layout", dtype=dict).save()
    transform = ln.Transform(key="plates.py").save()
    a, b = (ln.Run(transform=transform).save() for _ in range(2))
    a.features.add_values({"layout": {"wells": [{"id": "A1"}, {"id": "A2"}], "0": {"id": "k"}}})
    b.features.add_values({"layout": {"wells": [{"id": "B1"}], "0": 5}})
    assert ln.Run.filter(layout__wells__1__id="A2").to_list() == [a]
    assert ln.Run.filter(layout__wells__0__id__in=["A1", "B1"]).count() == 2
    assert ln.Run.filter(layout__0__id="k").to_list() == [a]  # "0" as a key
    assert ln.Run.filter(layout__0=5).to_list() == [b]
    assert ln.Run.filter(layout__wells__1__isnull=True).to_list() == [b]
    c = ln.Run(transform=transform, params={"lrs": [0.1, 0.01]}).save()
    assert ln.Run.filter(params__lrs__1=0.01).to_list() == [c]
    assert ln.Run.filter(params__lrs__1__gt=0.1).count() == 0
    with pytest.raises(InvalidArgument, match="at most 4 numeric segments"):
        ln.Run.filter(params__a__1__2__3__4__5=1).count()
