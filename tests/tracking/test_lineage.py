"""Lineage queries (one recursive SQL query each), the lineage picture, and describe()."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pandas as pd
import pytest
from test_track import run_script

import biolake as ln
from biolake.errors import InvalidArgument


@ln.tracked()
def derive(source: str, target: str) -> ln.Artifact:
    """Double the values."""
    df = ln.Artifact.get(key=source).load()
    return ln.Artifact.from_dataframe(df * 2, key=target).save()


def _chain(tmp_path) -> dict[str, ln.Artifact]:
    """raw -> one -> two -> three_0..2, each step a run of ``derive``."""
    (tmp_path / "raw.csv").write_text("a\n1\n2\n")
    ln.Artifact(tmp_path / "raw.csv", key="raw.csv").save()
    derive("raw.csv", "one.parquet")
    derive("one.parquet", "two.parquet")
    for i in range(3):
        derive("two.parquet", f"three_{i}.parquet")
    return {a.key: a for a in ln.Artifact.filter()}


def _keys(artifacts) -> list[str]:
    return sorted(a.key for a in artifacts)


def test_ancestors_and_descendants_at_any_depth_or_bounded(instance, tmp_path) -> None:
    found = _chain(tmp_path)
    raw, two, three = found["raw.csv"], found["two.parquet"], found["three_0.parquet"]
    threes = ["three_0.parquet", "three_1.parquet", "three_2.parquet"]
    assert _keys(raw.descendants()) == ["one.parquet", *threes, "two.parquet"]
    assert _keys(raw.descendants(depth=1)) == ["one.parquet"]
    assert _keys(raw.descendants(depth=2)) == ["one.parquet", "two.parquet"]
    assert _keys(three.ancestors()) == ["one.parquet", "raw.csv", "two.parquet"]
    assert _keys(three.ancestors(depth=1)) == ["two.parquet"]
    assert raw.ancestors().count() == 0  # raw data: made by no run
    assert _keys(two.descendants().filter(key__endswith="_1.parquet")) == ["three_1.parquet"]
    run = two.run
    assert _keys(run.ancestors()) == ["one.parquet", "raw.csv"]
    assert _keys(run.descendants()) == [*threes, "two.parquet"]
    assert _keys(ln.Artifact.filter(run__in=ln.Run.filter(inputs=two))) == threes
    with pytest.raises(InvalidArgument, match="depth is a number of hops"):
        raw.descendants(depth=0)


def test_lineage_with_a_cycle_ends(instance, tmp_path) -> None:
    """A script saves raw, a function derives from it, the script reads the result: the
    script's run made raw and read its descendant, a cycle at the level of runs."""
    code = """
        import biolake as ln
        ln.track()
        open("raw.csv", "w").write("a\\n1\\n")
        ln.Artifact("raw.csv", key="raw.csv").save()

        @ln.tracked()
        def derive(source, target):
            df = ln.Artifact.get(key=source).load()
            return ln.Artifact.from_dataframe(df, key=target).save()

        derive("raw.csv", "out.parquet").load()   # the script reads what it derived
        ln.finish()
    """
    assert run_script(instance, tmp_path, "loop.py", code).returncode == 0
    raw, out = ln.Artifact.get(key="raw.csv"), ln.Artifact.get(key="out.parquet")
    assert _keys(raw.descendants()) == ["out.parquet", "raw.csv"]
    assert _keys(raw.ancestors()) == ["out.parquet", "raw.csv"]
    assert _keys(out.ancestors(depth=5)) == ["out.parquet", "raw.csv"]
    assert raw.view_lineage().to_json()["focus"] == f"a:{raw.uid}"


def test_the_lineage_picture_is_svg_with_stubs_and_collapsed_siblings(instance, tmp_path) -> None:
    found = _chain(tmp_path)
    for i in range(14):  # more readers than a node shows
        derive("raw.csv", f"wide_{i}.parquet")
    picture = found["two.parquet"].view_lineage()
    graph = picture.to_json()
    labels = {n["label"] for n in graph["nodes"]}
    assert {"raw.csv", "one.parquet", "two.parquet", "three_0.parquet"} <= labels
    assert graph["focus"] == f"a:{found['two.parquet'].uid}"
    root = ET.fromstring(picture.svg)
    assert root.tag.endswith("svg") and "two.parquet" in picture.svg
    wide = ln.Artifact.get(key="raw.csv").view_lineage(hops=1)
    nodes = wide.to_json()["nodes"]
    assert any(n["type"] == "more" and n["label"] == "+3 more" for n in nodes)  # 15 readers
    collapsed = [n for n in nodes if n["type"] == "run" and n.get("count", 1) > 1]
    assert [n["count"] for n in collapsed] == [12]  # the shown readers: one node
    target = tmp_path / "lineage.svg"
    assert wide.save(target) == target and ET.parse(target).getroot().tag.endswith("svg")
    ln.Artifact.get(key="raw.csv").view_lineage(path=tmp_path / "again.svg", hops=1)
    assert (tmp_path / "again.svg").read_text() == wide.svg
    with pytest.raises(InvalidArgument, match=r"must end in \.svg"):
        found["raw.csv"].view_lineage(path=tmp_path / "lineage.png")
    assert not (tmp_path / "lineage.png").exists()


def test_describe_shows_lineage_of_runs_transforms_and_artifacts(instance, tmp_path) -> None:
    code = """
        import biolake as ln
        ln.track(params={"alpha": 0.5})
        print("read 2 rows")
        df = ln.Artifact.get(key="raw.parquet").load()
        ln.Artifact.from_dataframe(df, key="out.parquet").save()
        ln.finish()
    """
    ln.Artifact.from_dataframe(pd.DataFrame({"a": [1, 2]}), key="raw.parquet").save()
    for _ in range(2):
        assert run_script(instance, tmp_path, "job.py", code).returncode == 0
    first, second = ln.Run.filter(transform__key="job.py").order_by("id")
    text = second.describe(return_str=True)
    for expected in (
        r"transform +job\.py \(version 1, script\)",
        r"status +completed",
        r"alpha +0\.5",
        r"inputs +raw\.parquet",
        rf"same as +run {first.uid}",
        r"read 2 rows",
        rf"\(pid {second.pid}\)",
    ):
        assert re.search(expected, text), expected
    text = first.describe(return_str=True)
    assert re.search(r"outputs +out\.parquet", text)  # the second run found it saved already
    assert "same as" not in text  # nothing identical before it
    text = ln.Artifact.get(key="out.parquet").describe(return_str=True)
    assert re.search(rf"run +{first.uid} \(completed\)", text)
    assert re.search(r"run inputs +raw\.parquet", text) and "read by" not in text
    text = ln.Artifact.get(key="raw.parquet").describe(return_str=True)
    assert re.search(r"read by +2 runs", text)
    text = ln.Transform.get(key="job.py").describe(return_str=True)
    assert re.search(r"runs +2 completed", text) and re.search(rf"latest run +{second.uid}", text)
