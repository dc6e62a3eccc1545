"""Cost of drawing a lineage picture: ``layout`` + ``to_svg`` of a 1,000-node graph.

Usage: python benchmarks/run.py lineage_svg [--repeat N] [--nodes N]

The graph is layered like a pipeline: each run saves one artifact and reads the artifact of the
previous stage on its lane, plus an older artifact of any lane (the cross links that make the
barycenter sweeps work), and one run in ten a third one: about 1.5 edges per node. p50 and p95
over the repetitions, in one process.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import statistics
import time

from _util import machine, report

from biolake.tracking.lineage_svg import layout, to_svg

LANES = 25


def build_graph(n_nodes: int, seed: int = 0) -> dict:
    rng = random.Random(seed)
    nodes: list[dict] = []
    edges: list[dict] = []
    stage = 0
    while len(nodes) < n_nodes:
        for lane in range(min(LANES, (n_nodes - len(nodes)) // 2)):
            run, art = f"r:{_uid(stage, lane)}", f"a:{_uid(stage, lane)}"
            status = rng.choices(["completed", "errored", "crashed", "started"], [90, 6, 2, 2])[0]
            nodes.append(
                {
                    "id": run,
                    "type": "run",
                    "label": f"step_{lane}.py",
                    "detail": f"{status} · 2026-12-03",
                    "status": status,
                    "transform": f"t:{lane}",
                    "count": 1,
                }
            )
            nodes.append(
                {
                    "id": art,
                    "type": "artifact",
                    "label": f"stage{stage}/lane{lane}.parquet",
                    "detail": "v1 · 2.1 MB",
                    "kind": "dataset",
                }
            )
            edges.append({"source": run, "target": art})
            if stage:
                inputs = {f"a:{_uid(stage - 1, lane)}", _older(rng, stage)}
                if rng.random() < 0.1:
                    inputs.add(_older(rng, stage))
                edges += [{"source": a, "target": run} for a in sorted(inputs)]
        stage += 1
    return {"focus": nodes[1]["id"], "nodes": nodes, "edges": edges}


def _older(rng: random.Random, stage: int) -> str:
    return f"a:{_uid(rng.randrange(stage), rng.randrange(LANES))}"


def _uid(stage: int, lane: int) -> str:
    # Random-looking ids, like real ones: sorted by id, a column starts in no useful order.
    return hashlib.blake2b(f"{stage}-{lane}".encode(), digest_size=8).hexdigest()


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="lineage_svg")
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--nodes", type=int, default=1000)
    args = parser.parse_args(argv)
    graph = build_graph(args.nodes)
    print(f"lineage_svg benchmark on {machine()}")
    print(f"graph: {len(graph['nodes'])} nodes, {len(graph['edges'])} edges")
    total, layouts = [], []
    for _ in range(args.repeat):
        start = time.perf_counter()
        positions = layout(graph)
        laid_out = time.perf_counter()
        to_svg(graph, positions)
        total.append(time.perf_counter() - start)
        layouts.append(laid_out - start)
    name = f"layout + to_svg, {len(graph['nodes']):,} nodes"
    report(f"{name}, p50", 1000 * statistics.median(total), "ms", "<= 200 ms")
    report(f"{name}, p95", 1000 * _percentile(total, 0.95), "ms")
    report("  of which layout, p50", 1000 * statistics.median(layouts), "ms")
