"""Generate a feature benchmark instance: N artifacts x 5 features, and M records to search.

Usage: python benchmarks/run.py feature_data --dir PATH [--n 1000000] [--records 1000000]
       [--db postgresql://...]

Definitions (features, the Record type, a transform) go through the public API; the bulk rows
go in with SQLAlchemy Core inserts on SQLite and COPY on PostgreSQL, so the database triggers and
indexes that normal saves use are the ones maintained here too. The artifacts are rows that
share one stored file (the queries never read bytes). Values per artifact:

    read_count       int, uniform 0 .. 2,000,000        (read_count__gt=10**6 keeps ~50%)
    gc_content       float, uniform 0.3 .. 0.7
    cell_type        str, one of 10 cell types           ("T cell" ~10%)
    experiment_date  date, 2020-01-01 .. 2025-12-31
    treatment        str, one of 5 treatments
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import biolake as ln
from biolake.registries.user import current_user_id

CELL_TYPES = [
    "T cell", "B cell", "NK cell", "monocyte", "macrophage",
    "neutrophil", "dendritic cell", "fibroblast", "epithelial cell", "endothelial cell",
]  # fmt: skip
TREATMENTS = ["DMSO", "nutlin-3", "doxorubicin", "cisplatin", "untreated"]
KINDS = ["mutant", "-ko", "-wt", "-oe", "-control", "-rep"]
BATCH = 100_000
FIRST_DAY = dt.date(2020, 1, 1)


def connect_or_init(path: Path, db: str | None) -> Any:
    return ln.setup.init(storage=path, db=db, name=f"bench-{path.name}")


def generate(path: Path, n: int, n_records: int, db: str | None, seed: int = 0) -> Any:
    """Create the instance at ``path`` and load it; returns the instance."""
    instance = connect_or_init(path, db)
    rnd = random.Random(seed)
    t0 = time.perf_counter()
    features = _define_features()
    host_ids = _insert_artifacts(instance, n, path)
    _insert_values(instance, host_ids, features, rnd)
    print(f"  {n:,} artifacts x 5 features loaded in {time.perf_counter() - t0:.0f} s")
    t0 = time.perf_counter()
    _insert_records(instance, n_records, random.Random(seed + 1))
    print(f"  {n_records:,} records loaded in {time.perf_counter() - t0:.0f} s")
    if not instance.db.is_sqlite:
        # What autovacuum does on its own after a load this size; VACUUM also sets the
        # visibility map, which index-only scans rely on. SQLite gets no ANALYZE: nothing runs
        # it on a user's instance, so the queries must plan well without statistics.
        t0 = time.perf_counter()
        with instance.db.engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("VACUUM ANALYZE")
        print(f"  VACUUM ANALYZE in {time.perf_counter() - t0:.0f} s")
    return instance


def _define_features() -> dict[str, int]:
    defs = {
        "read_count": int,
        "gc_content": float,
        "cell_type": str,
        "experiment_date": dt.date,
        "treatment": str,
    }
    return {name: ln.Feature(name=name, dtype=dtype).save().id for name, dtype in defs.items()}


def _chunks(n: int) -> Iterator[range]:
    for start in range(0, n, BATCH):
        yield range(start, min(start + BATCH, n))


def _insert_artifacts(instance: Any, n: int, path: Path) -> list[int]:
    from sqlalchemy import select

    from biolake.registries.artifact import Artifact

    source = path / "bench-seed.txt"
    source.write_text("benchmark\n")
    seed = ln.Artifact(source, key="bench/seed.txt").save()
    base = {
        "suffix": ".txt", "kind": "file", "size": seed.size, "hash": seed.hash, "version": "1",
        "is_latest": True, "storage_id": seed.storage_id, "storage_key": seed.storage_key,
        "visibility": "default", "created_at": seed.created_at, "created_by_id": seed.created_by_id,
    }  # fmt: skip
    columns = ["uid", "stem", "key", *base]
    rows = (
        [f"b{i:015d}0000", f"b{i:015d}", f"bench/sample{i:07d}.txt", *base.values()]
        for i in range(n)
    )
    _bulk_insert(instance, "artifacts", columns, rows)
    query = select(Artifact.id).where(Artifact.key.startswith("bench/sample")).order_by(Artifact.id)
    ids = instance.db.session.execute(query).scalars().all()
    instance.db.end_read()
    return list(ids)


def _insert_values(instance: Any, host_ids: list[int], features: dict[str, int], rnd: Any) -> None:
    def rows() -> Iterator[list[Any]]:
        for host_id in host_ids:
            day = FIRST_DAY + dt.timedelta(days=rnd.randrange(6 * 365))
            yield [host_id, features["read_count"], rnd.randrange(2_000_001), None, None, None]
            yield [host_id, features["gc_content"], None, rnd.uniform(0.3, 0.7), None, None]
            yield [host_id, features["cell_type"], None, None, rnd.choice(CELL_TYPES), None]
            yield [host_id, features["experiment_date"], None, None, None, day]
            yield [host_id, features["treatment"], None, None, rnd.choice(TREATMENTS), None]

    columns = ["host_id", "feature_id", "value_int", "value_float", "value_str", "value_date"]
    _bulk_insert(instance, "artifact_feature_values", columns, rows(), extra={"idx": 0})


def record_name(i: int, rnd: Any) -> str:
    """Gene-like sample names: 'KRAS-ko12_345', 'TP53mutant7_1002' …"""
    gene = "".join(rnd.choice("ABCDEFGHIKLMNPRSTVWXY") for _ in range(rnd.randint(3, 5)))
    return f"{gene}{rnd.randint(1, 20)}{rnd.choice(KINDS)}{rnd.randint(1, 99)}_{i}"


def _insert_records(instance: Any, n: int, rnd: Any) -> None:
    sample_type = ln.Record(name="Sample", is_type=True).save()
    user_id = current_user_id(instance)
    now = dt.datetime.now(dt.UTC)
    columns = ["uid", "name", "type_id", "is_type", "visibility", "created_at", "created_by_id"]
    rows = (
        [f"r{i:011d}", record_name(i, rnd), sample_type.id, False, "default", now, user_id]
        for i in range(n)
    )
    _bulk_insert(instance, "records", columns, rows)


def _bulk_insert(
    instance: Any, table: str, columns: list[str], rows: Iterator[list[Any]], extra: Any = None
) -> None:
    """Insert ``rows`` in batches: executemany on SQLite, COPY on PostgreSQL."""
    from sqlalchemy import insert

    from biolake.core.schema.base import Base

    extra = extra or {}
    target = Base.metadata.tables[table]
    batch: list[list[Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) == BATCH:
            _flush(instance, target, columns, batch, extra, insert)
            batch = []
    if batch:
        _flush(instance, target, columns, batch, extra, insert)


def _flush(
    instance: Any, target: Any, columns: list[str], batch: list[Any], extra: Any, insert: Any
) -> None:
    names = [*columns, *extra]
    if instance.db.is_sqlite:
        with instance.db.write() as session:
            session.execute(
                insert(target),
                [dict(zip(names, [*r, *extra.values()], strict=True)) for r in batch],
            )
        return
    with instance.db.engine.connect() as conn:
        raw = conn.connection.driver_connection
        assert raw is not None
        with (
            raw.cursor() as cur,
            cur.copy(f"COPY {target.name} ({', '.join(names)}) FROM STDIN") as copy,
        ):
            for row in batch:
                copy.write_row([*row, *extra.values()])
        raw.commit()


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="feature_data")
    parser.add_argument("--dir", required=True, help="an empty folder for the instance")
    parser.add_argument("--n", type=int, default=1_000_000, help="artifacts, 5 values each")
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--db", default=None, help="a postgresql:// URL (default: SQLite)")
    args = parser.parse_args(argv)
    generate(Path(args.dir), args.n, args.records, args.db)
