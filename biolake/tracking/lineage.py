"""Lineage: which artifacts an artifact or run came from, and which came from it.

The graph has two kinds of edges, both version-level: a run read an artifact (``run_inputs``),
and a run saved an artifact (``artifacts.run_id``). One hop goes from an artifact through a run
to an artifact. Ancestors and descendants are each one recursive SQL query (``WITH RECURSIVE``,
the same on SQLite and PostgreSQL): ``UNION`` drops rows already found, so a cycle ends the
walk instead of looping. Artifacts that no run made (raw data) are part of it: "everything
derived from raw/data.csv" is ``raw.descendants()``.

``graph`` builds the picture around one artifact or run: a few hops each way, at most
``MAX_NEIGHBOURS`` per node with a "+N more" stub for the rest, as the JSON that
``lineage_svg`` draws and the web UI reads.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, literal, select

from biolake.core.units import human_size
from biolake.errors import InvalidArgument

MAX_NEIGHBOURS = 12
MAX_NODES = 400  # a picture stays readable; the rest of the graph is counted in stubs


def _tables(model: Any) -> tuple[Any, Any]:
    tables = model.__table__.metadata.tables
    return tables["artifacts"], tables["run_inputs"]


def check_depth(depth: int | None) -> None:
    if depth is not None and (not isinstance(depth, int) or isinstance(depth, bool) or depth < 1):
        raise InvalidArgument(f"depth is a number of hops (1 or more) or None, not {depth!r}.")


def inputs_of(model: Any, run_id: Any) -> Select[Any]:
    """The ids of the artifacts run ``run_id`` read (one hop up from the run)."""
    _, inputs = _tables(model)
    return select(inputs.c.artifact_id.label("id")).where(inputs.c.run_id == run_id)


def outputs_of(model: Any, run_id: Any) -> Select[Any]:
    """The ids of the artifacts run ``run_id`` saved (one hop down from the run)."""
    artifacts, _ = _tables(model)
    return select(artifacts.c.id).where(artifacts.c.run_id == run_id)


def readers_outputs(model: Any, artifact_id: int) -> Select[Any]:
    """The ids of the artifacts saved by the runs that read ``artifact_id`` (one hop down)."""
    artifacts, inputs = _tables(model)
    joined = artifacts.join(inputs, inputs.c.run_id == artifacts.c.run_id)
    return select(artifacts.c.id).select_from(joined).where(inputs.c.artifact_id == artifact_id)


def ancestor_ids(model: Any, seeds: Select[Any], depth: int | None = None) -> Select[Any]:
    """``seeds`` (the ids one hop up) and the artifacts their runs read, up to ``depth`` hops
    in all (None: any depth)."""
    artifacts, inputs = _tables(model)

    def step(frontier: Any) -> Any:
        joined = frontier.join(artifacts, artifacts.c.id == frontier.c.id).join(
            inputs, inputs.c.run_id == artifacts.c.run_id
        )
        return joined, inputs.c.artifact_id

    return _walk(seeds, depth, step)


def descendant_ids(model: Any, seeds: Select[Any], depth: int | None = None) -> Select[Any]:
    """``seeds`` (the ids one hop down) and the artifacts made by the runs that read them, up
    to ``depth`` hops in all (None: any depth)."""
    artifacts, inputs = _tables(model)

    def step(frontier: Any) -> Any:
        joined = frontier.join(inputs, inputs.c.artifact_id == frontier.c.id).join(
            artifacts, artifacts.c.run_id == inputs.c.run_id
        )
        return joined, artifacts.c.id

    return _walk(seeds, depth, step)


def _walk(seeds: Select[Any], depth: int | None, step: Any) -> Select[Any]:
    """One ``WITH RECURSIVE`` query from ``seeds`` (depth 1); ``step(frontier)`` gives the
    frontier joined to the next artifacts, and their id column."""
    check_depth(depth)
    seed = seeds.subquery()
    if depth is None:  # ids only: UNION stops at the first repeated id
        walk = select(seed.c.id).cte("lineage", recursive=True)
        joined, next_id = step(walk)
        walk = walk.union(select(next_id).select_from(joined))
        return select(walk.c.id)
    anchor = select(seed.c.id, literal(1).label("depth"))
    walk = anchor.cte("lineage", recursive=True)
    joined, next_id = step(walk)
    deeper = select(next_id, walk.c.depth + 1).select_from(joined).where(walk.c.depth < depth)
    walk = walk.union(deeper)
    return select(walk.c.id).distinct()


# --- the picture around one artifact or run ---------------------------------------------------

Node = tuple[str, int]  # ("a", artifact id) or ("r", run id)


def graph(artifact_model: Any, run_model: Any, focus: Any, hops: int = 2) -> dict[str, Any]:
    """The lineage around ``focus`` (an artifact or run) as JSON: nodes and edges within
    ``hops`` runs upstream and downstream, "+N more" stubs where a node has more than
    ``MAX_NEIGHBOURS`` neighbours one way. Node ids are ``a:<uid>`` and ``r:<uid>``.
    Example: ``graph(ln.Artifact, ln.Run, artifact, hops=1)["nodes"]``."""
    check_depth(hops)
    walk = _Walk(artifact_model, run_model)
    start: Node = ("r" if isinstance(focus, run_model) else "a", int(focus.id))
    walk.seen.add(start)
    steps = 2 * hops - 1 if start[0] == "r" else 2 * hops  # a run is half a hop in
    for direction in ("up", "down"):
        level = {start}
        for _ in range(steps):
            level = walk.expand(level, direction)
    return walk.result(start)


class _Walk:
    """Breadth first from the focus, one pair of queries per step."""

    def __init__(self, artifact_model: Any, run_model: Any) -> None:
        self.artifact_model, self.run_model = artifact_model, run_model
        self.db = artifact_model.objects().instance.db
        self.artifacts, self.inputs = _tables(artifact_model)
        self.seen: set[Node] = set()
        self.edges: set[tuple[Node, Node]] = set()
        self.more: dict[tuple[Node, str], int] = {}

    def expand(self, level: set[Node], direction: str) -> set[Node]:
        """The next level one step ``direction`` from ``level``, recording its edges."""
        found: dict[Node, list[Node]] = {}
        for node, neighbour in sorted(self._neighbours(level, direction)):
            found.setdefault(node, []).append(neighbour)
        following: set[Node] = set()
        for node, neighbours in found.items():
            known = [n for n in neighbours if n in self.seen]
            new = [n for n in neighbours if n not in self.seen]
            room = min(MAX_NEIGHBOURS - len(known), MAX_NODES - len(self.seen))
            shown = known + new[: max(0, room)]
            if len(neighbours) > len(shown):
                self.more[(node, direction)] = len(neighbours) - len(shown)
            for n in shown:
                self.edges.add((n, node) if direction == "up" else (node, n))
                if n not in self.seen:
                    self.seen.add(n)
                    following.add(n)
        return following

    def _neighbours(self, level: set[Node], direction: str) -> list[tuple[Node, Node]]:
        """Up: an artifact's maker, a run's inputs. Down: an artifact's readers, a run's
        outputs."""
        a, ri = self.artifacts, self.inputs
        artifact_ids = [i for kind, i in level if kind == "a"]
        run_ids = [i for kind, i in level if kind == "r"]
        queries: list[tuple[Any, str, str]] = []
        if direction == "up":
            made = a.c.id.in_(artifact_ids) & a.c.run_id.is_not(None)
            queries += [(select(a.c.id, a.c.run_id).where(made), "a", "r")] if artifact_ids else []
            read = ri.c.run_id.in_(run_ids)
            queries += (
                [(select(ri.c.run_id, ri.c.artifact_id).where(read), "r", "a")] if run_ids else []
            )
        else:
            read = ri.c.artifact_id.in_(artifact_ids)
            queries += (
                [(select(ri.c.artifact_id, ri.c.run_id).where(read), "a", "r")]
                if artifact_ids
                else []
            )
            saved = a.c.run_id.in_(run_ids)
            queries += [(select(a.c.run_id, a.c.id).where(saved), "r", "a")] if run_ids else []
        pairs: list[tuple[Node, Node]] = []
        for query, left, right in queries:
            pairs += [((left, x), (right, y)) for x, y in self.db.session.execute(query)]
        self.db.end_read()
        return pairs

    def result(self, focus: Node) -> dict[str, Any]:
        nodes = self._artifact_nodes() + self._run_nodes()
        uid = {node["_key"]: node["id"] for node in nodes}
        for node in nodes:
            del node["_key"]
        edges = [{"source": uid[s], "target": uid[t]} for s, t in sorted(self.edges)]
        for (where, direction), count in sorted(self.more.items()):
            stub = f"more:{uid[where]}:{direction}"
            nodes.append({"id": stub, "type": "more", "label": f"+{count} more"})
            pair = (stub, uid[where]) if direction == "up" else (uid[where], stub)
            edges.append({"source": pair[0], "target": pair[1]})
        return {"focus": uid[focus], "nodes": nodes, "edges": edges}

    def _artifact_nodes(self) -> list[dict[str, Any]]:
        ids = sorted(i for kind, i in self.seen if kind == "a")
        everywhere = ["default", "trash", "hidden"]
        rows = self.artifact_model.filter(id__in=ids, visibility__in=everywhere).to_list()
        return [
            {
                "_key": ("a", a.id),
                "id": f"a:{a.uid}",
                "type": "artifact",
                "label": a.key or a.description or a.uid,
                "detail": f"v{a.version} · {human_size(a.size)}"
                + (" · in the trash" if a.visibility == "trash" else ""),
                "kind": a.kind,
            }
            for a in (rows if ids else [])
        ]

    def _run_nodes(self) -> list[dict[str, Any]]:
        ids = sorted(i for kind, i in self.seen if kind == "r")
        rows = self.run_model.filter(id__in=ids).to_list() if ids else []
        return [
            {
                "_key": ("r", r.id),
                "id": f"r:{r.uid}",
                "type": "run",
                "label": r.transform.key,
                "detail": f"{r.status} · {r.started_at:%Y-%m-%d %H:%M}",
                "status": r.status,
                "transform": f"t:{r.transform.uid}",
                "count": 1,
            }
            for r in rows
        ]
