"""Features and search at scale: annotate, filter, export, search. Prints medians.

Usage: python benchmarks/run.py features [--n 1000000] [--records 1000000] [--frame 100000]
       [--dir PATH] [--db postgresql://...] [--keep]

Builds the instance with ``feature_data`` (N artifacts x 5 features, M records) unless ``--dir``
already holds one, then times:

- annotating one object with one value (``run.features.add_values({...})``), target < 1 ms;
- ``filter(read_count__gt=10**6, cell_type="T cell").count()`` over N objects (the whole call,
  planning included), < 50 ms at 1M;
- ``to_dataframe(include="features")`` of ``--frame`` objects x 5 features, < 2 s at 100,000;
- ``Record.search`` over M records (top 20, and the full count), < 20 ms at 1M;

and reports the database size. Artifacts are the hosts (runs use the same code on their own
value table).
"""

from __future__ import annotations

import argparse
import random
import shutil
import tempfile
from pathlib import Path
from typing import Any

from _util import machine, median_seconds, report
from feature_data import generate, record_name

import biolake as ln


def _db_size(instance: Any) -> int:
    if instance.db.is_sqlite:
        base = Path(instance.db.engine.url.database)
        return sum(p.stat().st_size for p in base.parent.glob(base.name + "*"))
    with instance.db.engine.connect() as conn:
        return int(conn.exec_driver_sql("SELECT pg_database_size(current_database())").scalar())


def bench_annotate(n_hosts: int) -> None:
    hosts = ln.Artifact.filter(id__lte=50).to_list()
    values = iter(range(10**9))

    def annotate() -> None:
        random.choice(hosts).features.add_values({"read_count": next(values)})

    report(
        "annotate one object with one value", median_seconds(annotate, 201) * 1e3, "ms", "< 1 ms"
    )


def bench_filter(n: int) -> None:
    t_cell = {"cell_type": "T cell"}
    cases = [
        ("read_count>1e6 & cell_type='T cell'", {"read_count__gt": 10**6, **t_cell}),
        ("cell_type='T cell' & read_count>1e6", {**t_cell, "read_count__gt": 10**6}),
        ("read_count>1.9e6 & cell_type='T cell'", {"read_count__gt": 19 * 10**5, **t_cell}),
        ("read_count>1.99e6 & cell_type='T cell'", {"read_count__gt": 199 * 10**4, **t_cell}),
        ("date>=2025 & treatment & gc<0.35", {
            "experiment_date__gte": "2025-01-01", "treatment": "DMSO", "gc_content__lt": 0.35,
        }),
    ]  # fmt: skip
    for label, lookups in cases:
        matches = ln.Artifact.filter(**lookups).count()

        def count(lookups: dict[str, Any] = lookups) -> int:  # planning included
            return ln.Artifact.filter(**lookups).count()

        seconds = median_seconds(count, 11)
        report(f"count {label} ({matches:,} of {n:,})", seconds * 1e3, "ms", "< 50 ms")


def bench_frame(frame: int) -> None:
    ids = ln.Artifact.filter().order_by("id")[frame - 1 : frame].to_list()
    qs = ln.Artifact.filter(id__lte=ids[0].id)
    df = qs.to_dataframe(include="features")
    assert len(df) == frame and df.shape[1] >= 5, df.shape
    base = median_seconds(qs.to_dataframe, 5)
    full = median_seconds(lambda: qs.to_dataframe(include="features"), 5)
    report(f"to_dataframe() of {frame:,} objects (fields only)", base, "s")
    report(f"to_dataframe(include='features') of {frame:,} x 5", full, "s", "< 2 s")


def bench_search(n_records: int) -> None:
    rnd = random.Random(1)  # the generator's record names (seed + 1), replayed
    names = [record_name(i, rnd) for i in range(min(n_records, 1000))]
    name = names[777]
    typo = name[:3] + name[4] + name[3] + name[5:]  # two letters swapped
    gene = name.split("_")[0][:5]
    for label, query in [
        ("exact name", name),
        ("typo", typo),
        ("prefix (gene-like)", gene),
        ("substring", name[2:9]),
        ("2 characters", name[:2]),
    ]:
        qs = ln.Record.search(query)
        top = median_seconds(lambda qs=qs: qs[:20].to_list(), 21)
        count = qs.count()
        report(f"search {label} {query!r}: top 20 ({count:,} matches)", top * 1e3, "ms", "< 20 ms")
        report("  same, count all matches", median_seconds(qs.count, 5) * 1e3, "ms")


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="features")
    parser.add_argument("--n", type=int, default=1_000_000, help="artifacts with 5 features each")
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--frame", type=int, default=100_000)
    parser.add_argument("--dir", default=None, help="reuse or create the instance here")
    parser.add_argument("--db", default=None, help="a postgresql:// URL (default: SQLite)")
    parser.add_argument("--keep", action="store_true", help="keep a temporary instance")
    args = parser.parse_args(argv)
    path = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="biolake-features-"))
    print(f"features benchmark on {machine()}")
    try:
        if (path / ".biolake").exists():
            instance = ln.setup.connect(path)
        else:
            print(f"generating {args.n:,} artifacts and {args.records:,} records in {path}")
            instance = generate(path, args.n, args.records, args.db)
        n = ln.Artifact.filter().count()
        records = ln.Record.filter().count()
        print(f"backend {instance.db.dialect}; {n:,} artifacts, {records:,} records")
        bench_annotate(n)
        bench_filter(n)
        bench_frame(min(args.frame, n))
        bench_search(args.records)
        report("database size", _db_size(instance) / 2**20, "MiB")
    finally:
        if not args.dir and not args.keep:
            ln.setup.close()
            shutil.rmtree(path, ignore_errors=True)
