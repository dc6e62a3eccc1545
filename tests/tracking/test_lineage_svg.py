"""Lineage pictures: collapsing sibling runs, the layered layout, the SVG and saving it."""

from __future__ import annotations

import random
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from biolake.errors import InvalidArgument
from biolake.tracking.lineage_svg import (
    LABEL_CHARS,
    LineagePicture,
    collapse_runs,
    layout,
    to_svg,
)

SVG = "{http://www.w3.org/2000/svg}"


def artifact(uid: str, label: str = "", **extra: object) -> dict:
    return {"id": f"a:{uid}", "type": "artifact", "label": label or f"{uid}.csv", **extra}


def run(uid: str, transform: str = "t:1", status: str = "completed", **extra: object) -> dict:
    label = extra.pop("label", f"{transform}.py")
    return {
        "id": f"r:{uid}",
        "type": "run",
        "label": label,
        "status": status,
        "transform": transform,
        "count": 1,
        **extra,
    }


def edge(source: str, target: str) -> dict:
    return {"source": source, "target": target}


def pipeline() -> dict:
    """raw -> preprocess (errored) -> counts -> train (crashed) -> model, plus a 'more' stub."""
    nodes = [
        artifact("raw", "raw/counts.csv", detail="v1 · 2.1 KiB", kind="dataset"),
        run("pre", label="preprocess.py", status="errored", detail="errored · 2026-12-03"),
        artifact("counts"),
        run("train", transform="t:2", label="train.py", status="crashed"),
        run("other", transform="t:3", label="qc.py", status="aborted"),
        run("live", transform="t:4", label="watch.py", status="started"),
        artifact("model", "models/net.pt", kind="model"),
        {"id": "more:r:pre:up", "type": "more", "label": "+12 more"},
    ]
    edges = [
        edge("a:raw", "r:pre"),
        edge("r:pre", "a:counts"),
        edge("a:counts", "r:train"),
        edge("r:train", "a:model"),
        edge("a:counts", "r:other"),
        edge("a:counts", "r:live"),
        edge("more:r:pre:up", "r:pre"),
    ]
    return {"focus": "a:counts", "nodes": nodes, "edges": edges}


def groups(svg: str) -> dict[str, ET.Element]:
    root = ET.fromstring(svg)
    return {g.get("data-id"): g for g in root.iter(f"{SVG}g") if "node" in g.get("class", "")}


def box(group: ET.Element) -> ET.Element:
    return group.findall(f"{SVG}rect")[-1]  # the front box (a collapsed node has one behind)


def rgb(colour: str) -> tuple[int, int, int]:
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


def layered_graph(n_stages: int, width: int, seed: int = 0) -> dict:
    """Runs that each save one artifact and read the previous stage's plus a random older one."""
    rng = random.Random(seed)
    nodes, edges = [], []
    for s in range(n_stages):
        for i in range(width):
            nodes += [run(f"{s}-{i}", transform=f"t:{i}"), artifact(f"{s}-{i}")]
            edges.append(edge(f"r:{s}-{i}", f"a:{s}-{i}"))
            if s:
                edges.append(edge(f"a:{s - 1}-{i}", f"r:{s}-{i}"))
                older = f"a:{rng.randrange(s)}-{rng.randrange(width)}"
                edges.append(edge(older, f"r:{s}-{i}"))
    return {"focus": "a:0-0", "nodes": nodes, "edges": edges}


# ---- the SVG ---------------------------------------------------------------------------------


def test_the_svg_is_a_standalone_document_with_one_box_per_node() -> None:
    graph = pipeline()
    svg = to_svg(graph)
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    assert svg.startswith('<svg xmlns="http://www.w3.org/2000/svg"')
    assert set(groups(svg)) == {n["id"] for n in graph["nodes"]}
    assert "<script" not in svg and "@import" not in svg and "url(http" not in svg
    texts = {t.text for t in root.iter(f"{SVG}text")}
    assert {"raw/counts.csv", "preprocess.py", "models/net.pt", "+12 more"} <= texts
    assert "v1 · 2.1 KiB" in texts


def test_one_arrowhead_per_edge() -> None:
    graph = pipeline()
    graph["edges"].append(edge("a:raw", "r:pre"))  # a duplicate is drawn once
    root = ET.fromstring(to_svg(graph))
    assert root.find(f"{SVG}defs/{SVG}marker") is not None
    arrows = [p for p in root.iter(f"{SVG}path") if p.get("marker-end")]
    assert len(arrows) == len(pipeline()["edges"])


def test_labels_are_escaped_and_long_ones_truncated_with_the_full_text_in_a_tooltip() -> None:
    tricky = "<b>Q&A</b> \"quoted\" 'single' 🧬 \x00bell\x07"
    long = "results/" + "very_long_folder_name/" * 4 + "table.parquet"
    graph = {"nodes": [artifact("x", tricky), artifact("y", long)], "edges": []}
    svg = to_svg(graph)
    assert "<b>" not in svg and "&lt;b&gt;Q&amp;A&lt;/b&gt;" in svg
    by_id = groups(svg)  # it parses: the control characters were dropped
    clean = tricky.replace("\x00", "").replace("\x07", "")
    for node_id, full in [("a:x", clean), ("a:y", long)]:
        (shown,) = [t.text for t in by_id[node_id].iter(f"{SVG}text")]
        assert shown.endswith("…") and len(shown) <= LABEL_CHARS and full.startswith(shown[:-1])
        assert by_id[node_id].find(f"{SVG}title").text == full
    short = to_svg({"nodes": [artifact("z", "<&>")], "edges": []})
    assert [t.text for t in ET.fromstring(short).iter(f"{SVG}text")] == ["<&>"]


@given(label=st.text(min_size=1), detail=st.text())
def test_any_text_reads_back_from_the_tooltip(label: str, detail: str) -> None:
    node = {"id": "a:x", "type": "artifact", "label": label, "detail": detail}
    title = groups(to_svg({"nodes": [node], "edges": []}))["a:x"].find(f"{SVG}title")
    full = f"{label}\n{detail}" if detail else label
    assert (title.text or "") == re.sub(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]", "", full)


def test_colours_follow_type_and_status() -> None:
    by_id = groups(to_svg(pipeline()))
    for failed in ("r:pre", "r:train"):  # errored, crashed: red border
        r, g, b = rgb(box(by_id[failed]).get("stroke"))
        assert r > 150 and g < 80 and b < 80, failed
    r, g, b = rgb(box(by_id["r:other"]).get("stroke"))  # aborted: orange
    assert r > 200 and 80 < g < 180 and b < 60
    r, g, b = rgb(box(by_id["r:live"]).get("stroke"))  # started: blue-ish
    assert b > r + 60
    assert box(by_id["a:raw"]).get("fill") == box(by_id["a:model"]).get("fill")
    assert box(by_id["a:raw"]).get("fill") != box(by_id["r:pre"]).get("fill")
    stub = box(by_id["more:r:pre:up"])
    assert stub.get("stroke-dasharray") and len(set(rgb(stub.get("stroke")))) == 1  # grey


def test_the_focus_node_has_a_thicker_border() -> None:
    by_id = groups(to_svg(pipeline()))
    assert "focus" in by_id["a:counts"].get("class").split()
    focus_width = float(box(by_id["a:counts"]).get("stroke-width"))
    others = [float(box(g).get("stroke-width")) for i, g in by_id.items() if i != "a:counts"]
    assert focus_width > max(others)
    assert [i for i, g in by_id.items() if "focus" in g.get("class").split()] == ["a:counts"]


def test_the_view_box_covers_every_box() -> None:
    svg = to_svg(layered_graph(6, 5))
    root = ET.fromstring(svg)
    vx, vy, vw, vh = map(float, root.get("viewBox").split())
    rects = [r for g in groups(svg).values() for r in g.findall(f"{SVG}rect")]
    assert len(rects) == 60
    for r in rects:
        x, y, w, h = (float(r.get(k)) for k in ("x", "y", "width", "height"))
        assert vx <= x and x + w <= vx + vw and vy <= y and y + h <= vy + vh


def test_given_positions_are_used_and_missing_ones_refused() -> None:
    graph = {"nodes": [artifact("x"), artifact("y")], "edges": [edge("a:x", "a:y")]}
    svg = to_svg(graph, {"a:x": (0.0, 0.0), "a:y": (0.0, 500.0)})
    assert float(box(groups(svg)["a:y"]).get("y")) == 500.0 - 23.0
    with pytest.raises(InvalidArgument, match=r"positions lack 1 node\(s\), e.g. 'a:y'"):
        to_svg(graph, {"a:x": (0.0, 0.0)})


@pytest.mark.parametrize(
    ("graph", "message"),
    [
        ({"nodes": [artifact("x")], "edges": [edge("a:x", "a:gone")]}, "'a:gone', which is not"),
        ({"nodes": [artifact("x"), artifact("x")], "edges": []}, "'a:x' appears twice"),
        ({"nodes": [{"label": "no id"}], "edges": []}, "needs a string 'id'"),
    ],
)
def test_a_malformed_graph_is_refused_with_the_bad_value(graph: dict, message: str) -> None:
    for draw in (to_svg, layout, collapse_runs, LineagePicture):
        with pytest.raises(InvalidArgument, match=message):
            draw(graph)


def test_a_thousand_node_graph_renders() -> None:
    graph = layered_graph(20, 25)
    assert len(graph["nodes"]) == 1000
    svg = to_svg(graph)
    assert len(groups(svg)) == 1000


# ---- layout ----------------------------------------------------------------------------------


def test_every_edge_of_a_dag_goes_left_to_right_and_no_boxes_overlap() -> None:
    graph = layered_graph(8, 6, seed=3)
    positions = layout(graph)
    assert set(positions) == {n["id"] for n in graph["nodes"]}
    for e in graph["edges"]:
        assert positions[e["source"]][0] < positions[e["target"]][0], e
    assert len(set(positions.values())) == len(positions)


def test_a_cycle_terminates_and_every_node_gets_a_place() -> None:
    nodes = [artifact(str(i)) for i in range(3000)]
    edges = [edge(f"a:{i}", f"a:{(i + 1) % 3000}") for i in range(3000)]  # one long cycle
    edges += [edge("a:5", "a:5"), edge("a:7", "a:2")]  # a self loop, a short cycle
    positions = layout({"nodes": nodes, "edges": edges})
    assert len(positions) == 3000 and len(set(positions.values())) == 3000
    ET.fromstring(to_svg({"nodes": nodes, "edges": edges}, positions))


def test_the_layout_does_not_depend_on_input_order() -> None:
    graph = layered_graph(6, 7, seed=1)
    expected = layout(graph)
    assert layout(graph) == expected
    shuffled = random.Random(9)
    for _ in range(3):
        nodes, edges = list(graph["nodes"]), list(graph["edges"])
        shuffled.shuffle(nodes)
        shuffled.shuffle(edges)
        assert layout({"nodes": nodes, "edges": edges}) == expected


def test_sweeps_remove_the_crossings_of_two_parallel_chains() -> None:
    # Ids sort the chains' heads against their tails: a -> z and b -> y cross unless reordered.
    graph = {
        "nodes": [artifact(i) for i in "abyz"],
        "edges": [edge("a:a", "a:z"), edge("a:b", "a:y")],
    }
    positions = layout(graph)
    assert (positions["a:a"][1] < positions["a:b"][1]) == (
        positions["a:z"][1] < positions["a:y"][1]
    )


# ---- collapsing ------------------------------------------------------------------------------


def fan_out(n: int, *, errored: int = 0, crashed: int = 0, focus: str = "a:in") -> dict:
    """``n`` runs of one transform reading the same artifact, each saving its own output."""
    statuses = ["crashed"] * crashed + ["errored"] * errored
    statuses += ["completed"] * (n - len(statuses))
    nodes = [artifact("in")]
    edges = []
    for i, status in enumerate(statuses):
        nodes += [run(f"{i:02}", status=status, label="score.py"), artifact(f"out{i:02}")]
        edges += [edge("a:in", f"r:{i:02}"), edge(f"r:{i:02}", f"a:out{i:02}")]
    return {"focus": focus, "nodes": nodes, "edges": edges}


def test_forty_runs_reading_one_artifact_become_one_node() -> None:
    graph = fan_out(40, errored=3, crashed=1)
    collapsed = collapse_runs(graph)
    runs = [n for n in collapsed["nodes"] if n["type"] == "run"]
    assert len(runs) == 1
    (merged,) = runs
    assert (merged["id"], merged["count"], merged["label"]) == ("runs:r:00", 40, "score.py")
    assert merged["status"] == "crashed"
    assert merged["detail"] == "40 runs · 1 crashed · 3 errored"
    assert len(merged["members"]) == 40
    assert collapsed["edges"].count(edge("a:in", "runs:r:00")) == 1
    assert sum(e["source"] == "runs:r:00" for e in collapsed["edges"]) == 40
    assert collapsed["focus"] == "a:in" and len(graph["nodes"]) == 81  # the input is unchanged
    node = groups(to_svg(collapsed))["runs:r:00"]
    assert "\u00d740" in [t.text for t in node.iter(f"{SVG}text")]
    assert len(node.findall(f"{SVG}rect")) == 2  # the stack


def test_fewer_runs_than_min_siblings_stay_apart() -> None:
    graph = fan_out(3)
    assert collapse_runs(graph) == graph
    assert (
        len([n for n in collapse_runs(graph, min_siblings=3)["nodes"] if n["type"] == "run"]) == 1
    )


def test_the_focus_run_is_never_collapsed() -> None:
    collapsed = collapse_runs(fan_out(5, focus="r:03"))
    runs = {n["id"]: n for n in collapsed["nodes"] if n["type"] == "run"}
    assert set(runs) == {"r:03", "runs:r:00"} and runs["runs:r:00"]["count"] == 4


def test_runs_of_other_transforms_or_other_inputs_stay_apart() -> None:
    graph = fan_out(6)
    graph["nodes"][1]["transform"] = "t:other"
    graph["nodes"].append(artifact("extra"))
    graph["edges"].append(edge("a:extra", "r:02"))  # r:02 reads one more input
    runs = {n["id"]: n for n in collapse_runs(graph)["nodes"] if n["type"] == "run"}
    assert set(runs) == {"r:00", "r:02", "runs:r:01"}
    assert runs["runs:r:01"]["members"] == ["r:01", "r:03", "r:04", "r:05"]


def test_runs_without_inputs_collapse_as_siblings_under_one_child() -> None:
    nodes = [artifact("shared")] + [run(f"{i}", status="aborted") for i in range(4)]
    edges = [edge(f"r:{i}", "a:shared") for i in range(4)]
    collapsed = collapse_runs({"focus": "a:shared", "nodes": nodes, "edges": edges})
    assert [n["id"] for n in collapsed["nodes"]] == ["a:shared", "runs:r:0"]
    assert collapsed["edges"] == [edge("runs:r:0", "a:shared")]
    assert collapsed["nodes"][1]["detail"] == "4 runs · 4 aborted"


# ---- LineagePicture --------------------------------------------------------------------------


def test_a_picture_shows_inline_and_returns_its_graph() -> None:
    picture = LineagePicture(pipeline())
    assert picture._repr_svg_() == picture.svg == to_svg(pipeline())
    graph = picture.to_json()
    assert graph == pipeline()
    graph["nodes"].clear()
    assert picture.to_json() == pipeline()
    assert repr(picture) == "LineagePicture(8 nodes, 7 edges, focus='a:counts')"


def test_save_writes_the_svg_atomically(tmp_path: Path) -> None:
    picture = LineagePicture(pipeline())
    target = tmp_path / "lineage.svg"
    target.write_text("an older picture")
    assert picture.save(str(target)) == target
    assert target.read_text(encoding="utf-8") == picture.svg
    ET.parse(target)
    assert [p.name for p in tmp_path.iterdir()] == ["lineage.svg"]  # no temp file left
    assert picture.save(tmp_path / "UPPER.SVG").exists()


@pytest.mark.parametrize("name", ["lineage.png", "lineage", "lineage.svg.txt"])
def test_save_refuses_a_name_that_does_not_end_in_svg(tmp_path: Path, name: str) -> None:
    with pytest.raises(
        InvalidArgument, match=r"must end in \.svg, e\.g\. '.*lineage(\.svg)?\.svg'"
    ):
        LineagePicture(pipeline()).save(tmp_path / name)
    assert list(tmp_path.iterdir()) == []
