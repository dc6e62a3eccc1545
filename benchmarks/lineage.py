"""Lineage queries on a large graph: descendants and ancestors over 10 hops, 1M input edges.

Usage: python benchmarks/run.py lineage [--edges N] [--db postgresql://...]

The graph is many independent pipelines, as a lab's instance holds: each is 20 layers of 5
artifacts, and each artifact of a layer is made by a run that read all 5 of the layer before
(25 input edges per layer). Pipelines are added until the instance has ``--edges`` input edges
(1,000,000: about 2,100 pipelines, 210,000 artifacts and 200,000 runs). Rows are inserted
directly, copying one artifact and one run saved through the API.

Figures: the median over 25 random pipelines of ``artifact.descendants(depth=10).to_list()``
from a first-layer artifact (50 artifacts), and of ``ancestors(depth=10)`` from a last-layer
one; plus the unbounded walk, and the lineage picture around an artifact (graph + SVG).
"""

from __future__ import annotations

import argparse
import random
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from _util import machine, median_seconds, report
from sqlalchemy import func, insert, select

import biolake as ln

LAYERS, WIDTH = 20, 5
EDGES_PER_PIPELINE = (LAYERS - 1) * WIDTH * WIDTH


def _template(table: Any, row_id: int) -> dict[str, Any]:
    db = ln.setup.current_instance().db
    row = dict(db.session.execute(select(table).where(table.c.id == row_id)).mappings().one())
    db.end_read()
    return row


def generate(path: Path, edges: int, db_url: str | None) -> None:
    """Pipelines of LAYERS x WIDTH artifacts until there are ``edges`` input edges."""
    ln.setup.init(storage=path, db=db_url) if db_url else ln.setup.init(storage=path)
    (path / "seed.txt").write_text("seed")
    seed = ln.Artifact(path / "seed.txt").save()
    run = ln.Run(transform=ln.Transform(key="pipeline.py").save()).save()
    artifacts_t, runs_t = ln.Artifact.__table__, ln.Run.__table__
    inputs_t = artifacts_t.metadata.tables["run_inputs"]
    artifact_row, run_row = _template(artifacts_t, seed.id), _template(runs_t, run.id)
    pipelines = -(-edges // EDGES_PER_PIPELINE)
    next_artifact, next_run = seed.id + 1, run.id + 1
    db = ln.setup.current_instance().db
    started = time.perf_counter()
    for first in range(0, pipelines, 100):
        artifacts, runs, links = [], [], []
        for _ in range(first, min(first + 100, pipelines)):
            previous: list[int] = []
            for _layer in range(LAYERS):
                current = []
                for _ in range(WIDTH):
                    made_by = None
                    if previous:
                        runs.append({**run_row, "id": next_run, "uid": _uid(16, next_run)})
                        links += [{"run_id": next_run, "artifact_id": a} for a in previous]
                        made_by, next_run = next_run, next_run + 1
                    uid = _uid(16, next_artifact) + "0000"  # stem + version suffix
                    artifacts.append(
                        {**artifact_row, "id": next_artifact, "uid": uid, "stem": uid[:16],
                         "run_id": made_by, "key": f"p/{next_artifact}.txt"}
                    )  # fmt: skip
                    current.append(next_artifact)
                    next_artifact += 1
                previous = current
        with db.write() as session:
            session.execute(insert(runs_t), runs)
            session.execute(insert(artifacts_t), artifacts)
            session.execute(insert(inputs_t), links)
        done = min(first + 100, pipelines)
        print(f"\r  {done:,}/{pipelines:,} pipelines", end="", flush=True)
    print(f" in {time.perf_counter() - started:.0f} s")
    if not db.is_sqlite:  # the sequences after rows inserted with explicit ids
        with db.write() as session:
            for table in (artifacts_t, runs_t):
                highest = select(func.max(table.c.id)).scalar_subquery()
                session.execute(select(func.setval(f"{table.name}_id_seq", highest)))
        with db.engine.connect() as conn:  # statistics, as autovacuum would gather them
            conn.exec_driver_sql("ANALYZE")
            conn.commit()


def _uid(length: int, n: int) -> str:
    return f"B{n:0{length - 1}d}"


def bench(db_label: str) -> None:
    runs = ln.Run.filter().count()
    print(f"backend {db_label}; {ln.Artifact.filter().count():,} artifacts, {runs:,} runs")
    pipelines = list(range(ln.Artifact.filter().count() // (LAYERS * WIDTH)))
    rng = random.Random(7)
    picks = rng.sample(pipelines, min(25, len(pipelines)))
    seed_id = ln.Artifact.filter().order_by("id").first().id
    firsts = [ln.Artifact.get(seed_id + 1 + p * LAYERS * WIDTH) for p in picks]
    lasts = [ln.Artifact.get(seed_id + (p + 1) * LAYERS * WIDTH) for p in picks]
    sizes = "/".join(map(str, sorted({len(a.descendants(depth=10).to_list()) for a in firsts})))
    it = iter(firsts * 3)
    down = median_seconds(lambda: next(it).descendants(depth=10).to_list(), 25)
    report(f"descendants(depth=10).to_list() ({sizes} artifacts)", down * 1e3, "ms",
           "<= 25 ms SQLite, <= 50 ms PostgreSQL")  # fmt: skip
    it = iter(lasts * 3)
    up = median_seconds(lambda: next(it).ancestors(depth=10).to_list(), 25)
    report("ancestors(depth=10).to_list()", up * 1e3, "ms")
    it = iter(firsts * 3)
    everything = median_seconds(lambda: next(it).descendants().to_list(), 25)
    report("descendants() at any depth (95 artifacts)", everything * 1e3, "ms")
    it = iter(firsts * 3)
    picture = median_seconds(lambda: next(it).view_lineage(hops=2).svg, 11)
    report("view_lineage(hops=2): graph + SVG", picture * 1e3, "ms")


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="lineage")
    parser.add_argument("--edges", type=int, default=1_000_000)
    parser.add_argument("--db", default=None, help="an empty postgresql:// database")
    args = parser.parse_args(argv)
    print(f"lineage benchmark on {machine()}")
    path = Path(tempfile.mkdtemp(prefix="biolake-lineage-"))
    try:
        print(f"generating about {args.edges:,} input edges")
        generate(path, args.edges, args.db)
        bench("PostgreSQL" if args.db else "SQLite")
    finally:
        ln.setup.close()
        shutil.rmtree(path, ignore_errors=True)
