"""Pictures of lineage graphs: collapse sibling runs, lay them out left to right, draw SVG.

The graph is a plain, JSON-ready dict made elsewhere; data flows from ``source`` to ``target``
(an artifact to the run that read it, a run to the artifact it saved)::

    {"focus": "a:1",
     "nodes": [{"id": "a:1", "type": "artifact", "label": "raw/counts.csv", "detail": "v1"},
               {"id": "r:1", "type": "run", "label": "prep.py", "status": "completed",
                "transform": "t:1", "count": 1},
               {"id": "more:r:1:up", "type": "more", "label": "+12 more"}],
     "edges": [{"source": "a:1", "target": "r:1"}]}

Standard library only: no graphviz, and the SVG loads no font or script. The same graph gives
the same picture, whatever the order of its nodes and edges.
"""

from __future__ import annotations

import contextlib
import copy
import os
import re
import tempfile
from bisect import bisect_right, insort
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from biolake.errors import InvalidArgument

Graph = dict[str, Any]
Node = Mapping[str, Any]
Pair = tuple[str, str]
Point = tuple[float, float]
Adjacency = dict[str, list[str]]

BOX_W, BOX_H = 184.0, 46.0
X_STEP, Y_STEP = BOX_W + 72.0, BOX_H + 20.0
MARGIN = 24.0
SWEEPS = 4  # barycenter down+up passes; more rarely removes further crossings
LABEL_CHARS, DETAIL_CHARS = 22, 30  # what fits in a box at the font sizes below

# Worst first when runs are merged: one crashed run makes the whole group look crashed.
SEVERITY = {"completed": 0, "started": 1, "aborted": 2, "errored": 3, "crashed": 4}
NOTABLE = ("crashed", "errored", "aborted", "started")  # counted in a merged node's detail

# look -> (fill, stroke, text colour)
STYLES = {
    "artifact": ("#eaf6ee", "#3b8a57", "#1d3b28"),
    "run": ("#f2eefa", "#6f55a3", "#2c2140"),
    "started": ("#e6f0fd", "#2f6fd0", "#15305a"),
    "aborted": ("#fff1e0", "#e07800", "#4a2a00"),
    "errored": ("#fde7e7", "#d32f2f", "#5c1010"),
    "crashed": ("#f7c6c6", "#b71c1c", "#5c1010"),
    "more": ("#f6f6f6", "#9e9e9e", "#616161"),
    "other": ("#f4f4f4", "#757575", "#212121"),
}
EDGE_COLOUR = "#8a8a8a"
FONTS = "system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif"

# Characters XML 1.0 cannot hold at all, even escaped: dropped from labels.
_NOT_XML = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _index(graph: Mapping[str, Any]) -> tuple[dict[str, Node], list[Pair]]:
    """Nodes by id and the distinct (source, target) pairs; refuses a malformed graph."""
    nodes: dict[str, Node] = {}
    for node in graph.get("nodes") or ():
        node_id = node.get("id") if isinstance(node, Mapping) else None
        if not isinstance(node_id, str):
            raise InvalidArgument(f"every node needs a string 'id'; got {node!r}")
        if node_id in nodes:
            raise InvalidArgument(f"node id {node_id!r} appears twice: give each node its own id")
        nodes[node_id] = node
    pairs: dict[tuple[Any, Any], None] = {}  # a dict, not a set: it keeps the input's order
    for edge in graph.get("edges") or ():
        ends = [edge.get("source"), edge.get("target")] if isinstance(edge, Mapping) else [None]
        for end in ends:
            if not isinstance(end, str) or end not in nodes:
                raise InvalidArgument(
                    f"edge {edge!r} refers to {end!r}, which is not among the graph's nodes: "
                    "an edge is {'source': id, 'target': id} of two nodes of the graph"
                )
        pairs[(ends[0], ends[1])] = None
    return nodes, list(pairs)


def _adjacency(ids: Iterable[str], pairs: Iterable[Pair]) -> tuple[Adjacency, Adjacency]:
    """Predecessors and successors of each node, self loops left out."""
    preds: Adjacency = {i: [] for i in ids}
    succs: Adjacency = {i: [] for i in preds}
    for source, target in pairs:
        if source != target:
            succs[source].append(target)
            preds[target].append(source)
    return preds, succs


def collapse_runs(graph: Mapping[str, Any], *, min_siblings: int = 4) -> Graph:
    """Merge runs of one transform that share all their inputs into one node.

    Runs group by (``transform``, set of predecessors); a run left out of every group (no
    inputs, or too few alike) gets a second chance by (``transform``, set of successors), for
    siblings under the same child. Only groups of at least ``min_siblings`` runs merge, and the
    focus run never does. The merged node keeps the first run's label, gets the id
    ``runs:<smallest member id>``, ``count`` (runs merged), ``members`` (their ids), the worst
    ``status`` and a ``detail`` such as ``"37 runs · 3 errored"``. Edges are remapped and
    deduplicated. The input is not changed.

    >>> g = {"nodes": [{"id": "a", "type": "artifact"}] + [
    ...     {"id": f"r{i}", "type": "run", "transform": "t", "status": "completed"}
    ...     for i in range(5)], "edges": [{"source": "a", "target": f"r{i}"} for i in range(5)]}
    >>> [n["id"] for n in collapse_runs(g)["nodes"]]
    ['a', 'runs:r0']
    """
    nodes, pairs = _index(graph)
    preds, succs = _adjacency(nodes, pairs)
    focus = graph.get("focus")
    runs = [i for i, n in nodes.items() if n.get("type") == "run" and i != focus]
    groups = _sibling_groups(runs, nodes, preds, min_siblings)
    grouped = {member for group in groups for member in group}
    rest = [i for i in runs if i not in grouped]
    groups += _sibling_groups(rest, nodes, succs, min_siblings)
    merged_into = {m: "runs:" + group[0] for group in groups for m in group}
    heads = {group[0]: group for group in groups}  # a merged node takes its first member's place
    new_nodes = []
    for node_id, node in nodes.items():
        if node_id in heads:
            new_nodes.append(_merged_node([nodes[m] for m in heads[node_id]], "runs:" + node_id))
        elif node_id not in merged_into:
            new_nodes.append(dict(node))
    return {**graph, "nodes": new_nodes, "edges": _remap_edges(graph, merged_into)}


def _sibling_groups(
    runs: list[str], nodes: dict[str, Node], side: Adjacency, least: int
) -> list[list[str]]:
    buckets: dict[tuple[Any, frozenset[str]], list[str]] = {}
    for run_id in runs:
        transform = nodes[run_id].get("transform")
        if transform is not None and side[run_id]:
            buckets.setdefault((transform, frozenset(side[run_id])), []).append(run_id)
    return [sorted(b) for b in buckets.values() if len(b) >= max(least, 2)]


def _merged_node(members: list[Node], group_id: str) -> Graph:
    tally: dict[Any, int] = {}
    for member in members:
        status = member.get("status")
        tally[status] = tally.get(status, 0) + int(member.get("count") or 1)
    count = sum(tally.values())
    worst = max(tally, key=lambda s: (SEVERITY.get(s, -1), str(s)))
    notable = [f"{tally[s]} {s}" for s in NOTABLE if s in tally]
    detail = " · ".join([f"{count} runs", *notable])
    ids = [m["id"] for m in members]
    return dict(members[0], id=group_id, detail=detail, status=worst, count=count, members=ids)


def _remap_edges(graph: Mapping[str, Any], merged_into: Mapping[str, str]) -> list[Graph]:
    edges: dict[Pair, Graph] = {}
    for edge in graph.get("edges") or ():
        source = merged_into.get(edge["source"], edge["source"])
        target = merged_into.get(edge["target"], edge["target"])
        if source == target and edge["source"] != edge["target"]:
            continue  # an edge between two merged siblings: inside the group now
        edges.setdefault((source, target), {**edge, "source": source, "target": target})
    return list(edges.values())


def layout(graph: Mapping[str, Any]) -> dict[str, tuple[float, float]]:
    """Centres of the node boxes, in layers from left (sources) to right (sinks).

    Longest-path layering over the graph without the back edges a depth-first search finds (so
    cycles are drawn, not followed), then barycenter sweeps that keep the order with the fewest
    crossings. Ties break by node id, so the result does not depend on input order.

    >>> g = {"nodes": [{"id": "a"}, {"id": "r"}], "edges": [{"source": "a", "target": "r"}]}
    >>> layout(g)
    {'a': (92.0, 23.0), 'r': (348.0, 23.0)}
    """
    nodes, pairs = _index(graph)
    ids = sorted(nodes)
    pairs = sorted(pairs)  # float sums below must add up in one order, whatever the input's
    topo, kept = _acyclic(ids, _adjacency(ids, pairs)[1])
    layer = _layers(topo, kept)
    rows = _order(ids, layer, pairs)
    return _coordinates(rows)


def _acyclic(ids: list[str], succ: Adjacency) -> tuple[list[str], list[Pair]]:
    """A topological order and the edges left once back edges are dropped (iterative DFS)."""
    state = dict.fromkeys(ids, 0)  # 0 unseen, 1 on the stack, 2 done
    kept: list[Pair] = []
    postorder: list[str] = []
    for root in ids:
        if state[root]:
            continue
        state[root] = 1
        stack = [(root, iter(succ[root]))]
        while stack:
            node, children = stack[-1]
            for child in children:
                if state[child] == 1:
                    continue  # a back edge closes a cycle: following it would never end
                kept.append((node, child))
                if state[child] == 0:
                    state[child] = 1
                    stack.append((child, iter(succ[child])))
                    break
            else:
                state[node] = 2
                postorder.append(node)
                stack.pop()
    return postorder[::-1], kept


def _layers(topo: list[str], kept: list[Pair]) -> dict[str, int]:
    preds, succs = _adjacency(topo, kept)
    layer: dict[str, int] = {}
    for v in topo:
        layer[v] = max((layer[p] + 1 for p in preds[v]), default=0)
    # Then pull each node right, next to its first consumer: an input read late in a pipeline
    # should not sit in the first column with one long edge across the picture.
    for v in reversed(topo):
        if succs[v]:
            layer[v] = min(layer[s] for s in succs[v]) - 1
    return layer


def _order(ids: list[str], layer: dict[str, int], pairs: list[Pair]) -> list[list[str]]:
    rows: list[list[str]] = [[] for _ in range(max(layer.values(), default=-1) + 1)]
    for v in ids:
        rows[layer[v]].append(v)
    left: Adjacency = {v: [] for v in ids}
    right: Adjacency = {v: [] for v in ids}
    for a, b in pairs:
        if layer[a] != layer[b]:
            a, b = (a, b) if layer[a] < layer[b] else (b, a)
            right[a].append(b)
            left[b].append(a)
    # Sugiyama routes a long edge through a dummy node in each column it crosses; without
    # dummies, a neighbour many columns away only adds noise, so the sweeps use the adjacent
    # columns, and far neighbours only for a node that has no near one.
    left = {v: [u for u in ns if layer[u] == layer[v] - 1] or ns for v, ns in left.items()}
    right = {v: [u for u in ns if layer[u] == layer[v] + 1] or ns for v, ns in right.items()}
    pos = {v: (i + 0.5) / len(row) for row in rows for i, v in enumerate(row)}
    best, fewest = [list(r) for r in rows], _crossings(rows, right, layer)
    for _ in range(SWEEPS):
        if fewest == 0:
            break
        for row in rows[1:]:
            _reorder(row, left, pos)
        for row in reversed(rows[:-1]):
            _reorder(row, right, pos)
        crossings = _crossings(rows, right, layer)
        if crossings < fewest:
            best, fewest = [list(r) for r in rows], crossings
    return best


def _reorder(row: list[str], neighbours: Adjacency, pos: dict[str, float]) -> None:
    """Sort a row by its nodes' mean neighbour position (a fraction of that row's height, so
    rows of any size compare); a node without neighbours on that side keeps its place."""

    def barycenter(v: str) -> float:
        ns = neighbours[v]
        return sum(pos[n] for n in ns) / len(ns) if ns else pos[v]

    row.sort(key=barycenter)
    size = len(row)
    for i, v in enumerate(row):
        pos[v] = (i + 0.5) / size


def _crossings(rows: list[list[str]], right: Adjacency, layer: dict[str, int]) -> int:
    """Crossings between adjacent rows: inversions of target index, edges sorted by source."""
    index = {v: i for row in rows for i, v in enumerate(row)}
    total = 0
    for row in rows[:-1]:
        ends = sorted(
            (index[u], index[v]) for u in row for v in right[u] if layer[v] == layer[u] + 1
        )
        seen: list[int] = []
        for _, target in ends:
            total += len(seen) - bisect_right(seen, target)
            insort(seen, target)
    return total


def _coordinates(rows: list[list[str]]) -> dict[str, Point]:
    tallest = max((len(r) for r in rows), default=0)
    out: dict[str, Point] = {}
    for column, row in enumerate(rows):
        top = (tallest - len(row)) * Y_STEP / 2  # centre each column on the tallest
        for i, v in enumerate(row):
            out[v] = (column * X_STEP + BOX_W / 2, top + i * Y_STEP + BOX_H / 2)
    return out


def to_svg(graph: Mapping[str, Any], positions: Mapping[str, Point] | None = None) -> str:
    """A standalone SVG document of the graph, laid out by :func:`layout` unless given.

    >>> svg = to_svg({"focus": "a", "nodes": [{"id": "a", "type": "artifact", "label": "x"}]})
    >>> svg.startswith('<svg xmlns="http://www.w3.org/2000/svg"')
    True
    """
    nodes, pairs = _index(graph)
    pos = layout(graph) if positions is None else positions
    missing = sorted(i for i in nodes if i not in pos)
    if missing:
        raise InvalidArgument(
            f"positions lack {len(missing)} node(s), e.g. {missing[0]!r}: "
            "give a position for every node, or pass positions=None to lay the graph out"
        )
    focus = graph.get("focus")
    parts = [_header(graph, [pos[i] for i in nodes])]
    parts.append(f'<g fill="none" stroke="{EDGE_COLOUR}" stroke-width="1.3">')
    for source, target in pairs:
        stub = "more" in (nodes[source].get("type"), nodes[target].get("type"))
        parts.append(_edge(pos[source], pos[target], dashed=stub))
    parts.append("</g>")
    parts.extend(
        _node(node_id, node, pos[node_id], node_id == focus) for node_id, node in nodes.items()
    )
    parts.append("</svg>\n")
    return "\n".join(parts)


def _header(graph: Mapping[str, Any], centres: list[Point]) -> str:
    focus = graph.get("focus") or "a graph"
    xs, ys = [x for x, _ in centres], [y for _, y in centres]
    x0 = min(xs, default=0.0) - BOX_W / 2 - MARGIN
    y0 = min(ys, default=0.0) - BOX_H / 2 - MARGIN
    width = max(xs, default=0.0) + BOX_W / 2 + MARGIN + 4 - x0  # + 4: a collapsed node's stack
    height = max(ys, default=0.0) + BOX_H / 2 + MARGIN + 4 - y0
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="{x0:.1f} {y0:.1f} {width:.1f} '
        f'{height:.1f}" width="{width:.0f}" height="{height:.0f}" font-family="{FONTS}" '
        f'role="img" aria-label={_attr(f"lineage of {focus}")}>\n'
        '<defs><marker id="biolake-arrow" viewBox="0 0 10 10" refX="9" refY="5" '
        'markerWidth="7" markerHeight="7" orient="auto-start-reverse">'
        f'<path d="M0,0 L10,5 L0,10 z" fill="{EDGE_COLOUR}"/></marker></defs>'
    )


def _edge(start: Point, end: Point, *, dashed: bool) -> str:
    x1, y1 = start[0] + BOX_W / 2, start[1]
    x2, y2 = end[0] - BOX_W / 2, end[1]
    bend = max(40.0, abs(x2 - x1) / 2)  # back edges (x2 < x1) loop round instead of cutting back
    dash = ' stroke-dasharray="4 3"' if dashed else ""
    return (
        f'<path d="M{x1:.1f},{y1:.1f} C{x1 + bend:.1f},{y1:.1f} {x2 - bend:.1f},{y2:.1f} '
        f'{x2:.1f},{y2:.1f}" marker-end="url(#biolake-arrow)"{dash}/>'
    )


def _look(node: Node) -> str:
    kind = node.get("type")
    if kind == "run":
        status = node.get("status")
        return status if status in ("started", "aborted", "errored", "crashed") else "run"
    return kind if kind in ("artifact", "more") else "other"


def _node(node_id: str, node: Node, centre: Point, focus: bool) -> str:
    look = _look(node)
    fill, stroke, ink = STYLES[look]
    x, y = centre[0] - BOX_W / 2, centre[1] - BOX_H / 2
    count = int(node.get("count") or 1)
    label = str(node.get("label") or node_id)
    detail = str(node.get("detail") or "")
    kind = node.get("kind")
    tooltip = "\n".join(s for s in (label, detail, f"kind: {kind}" if kind else "") if s)
    css = " ".join(["node", re.sub(r"[^\w-]", "", str(node.get("type"))), look] + ["focus"] * focus)
    box = (
        f'width="{BOX_W:.0f}" height="{BOX_H:.0f}" rx="7" fill="{fill}" stroke="{stroke}" '
        f'stroke-width="{3.0 if focus else 1.3}"'
        + (' stroke-dasharray="5 3"' if look == "more" else "")
    )
    out = [f"<g class={_attr(css)} data-id={_attr(node_id)}>", f"<title>{_text(tooltip)}</title>"]
    if count > 1:  # a second box peeking out behind says "several"
        out.append(f'<rect x="{x + 4:.1f}" y="{y + 4:.1f}" {box}/>')
    out.append(f'<rect x="{x:.1f}" y="{y:.1f}" {box}/>')
    text_x = f'x="{x + 10:.1f}" fill="{ink}"'
    label_y = y + (19 if detail else BOX_H / 2 + 4)
    chars = LABEL_CHARS - (5 if count > 1 else 0)
    out.append(
        f'<text {text_x} y="{label_y:.1f}" font-size="12.5" font-weight="600">'
        f"{_text(_truncate(label, chars))}</text>"
    )
    if detail:
        out.append(
            f'<text {text_x} y="{y + 35:.1f}" font-size="10.5" fill-opacity="0.75">'
            f"{_text(_truncate(detail, DETAIL_CHARS))}</text>"
        )
    if count > 1:
        out.append(
            f'<text class="count" x="{x + BOX_W - 8:.1f}" y="{y + 16:.1f}" text-anchor="end" '
            f'font-size="11" font-weight="700" fill="{stroke}">&#215;{count}</text>'
        )
    out.append("</g>")
    return "".join(out)


def _truncate(text: str, chars: int) -> str:
    return text if len(text) <= chars else text[: chars - 1].rstrip() + "…"


def _text(text: str) -> str:
    return escape(_NOT_XML.sub("", text), {"\r": "&#13;"})  # a bare CR would read back as LF


def _attr(text: str) -> str:
    return quoteattr(_NOT_XML.sub("", text))


class LineagePicture:
    """A lineage graph and its SVG; Jupyter shows it inline.

    >>> picture = LineagePicture({"focus": "a", "nodes": [{"id": "a", "label": "x"}]})
    >>> picture.save("lineage.svg")  # doctest: +SKIP
    PosixPath('lineage.svg')
    """

    def __init__(self, graph: Mapping[str, Any]) -> None:
        _index(graph)  # a malformed graph fails here, not later inside a notebook's display hook
        self.graph: Graph = copy.deepcopy(dict(graph))
        self._svg: str | None = None

    def __repr__(self) -> str:
        nodes, edges = len(self.graph.get("nodes") or ()), len(self.graph.get("edges") or ())
        return f"LineagePicture({nodes} nodes, {edges} edges, focus={self.graph.get('focus')!r})"

    @property
    def svg(self) -> str:
        """The SVG document, drawn on first use."""
        if self._svg is None:
            self._svg = to_svg(self.graph)
        return self._svg

    def _repr_svg_(self) -> str:
        return self.svg

    def to_json(self) -> Graph:
        """The graph, as a JSON-ready dict (a copy: changing it does not change the picture)."""
        return copy.deepcopy(self.graph)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the SVG to ``path`` (which must end in .svg) atomically; returns the path."""
        target = Path(path)
        if target.suffix.lower() != ".svg":
            example = target.with_suffix(".svg") if target.name else Path("lineage.svg")
            raise InvalidArgument(
                f"cannot save a lineage picture as {str(target)!r}: it is an SVG document, so "
                f"the file name must end in .svg, e.g. {str(example)!r}"
            )
        # A temp file beside the target, then a rename: readers never see half a picture.
        fd, temp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
                handle.write(self.svg)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(temp, 0o644)  # mkstemp makes it 0600; a picture is meant to be shared
            os.replace(temp, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)
            raise
        return target
