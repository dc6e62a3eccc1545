"""Artifact workloads: save, new version, bulk save, 1 GiB hash+store, get by key.

Usage: python benchmarks/run.py artifacts [--n-bulk 10000] [--n-get 100000] [--gib 1]

Prints medians on this machine. Every workload uses a fresh instance in a temp folder.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from _util import machine, median_seconds, report


def fresh_instance(tmp: Path, name: str):
    import biolake as ln

    return ln.setup.init(storage=tmp / name)


def bench_small_save(tmp: Path) -> None:
    import biolake as ln

    fresh_instance(tmp, "small")
    src = tmp / "small-src"
    src.mkdir()
    paths = []
    for i in range(300):
        p = src / f"f{i}.bin"
        p.write_bytes(os.urandom(4096))
        paths.append(p)
    it = iter(range(300))

    def save_one() -> None:
        i = next(it)
        ln.Artifact(paths[i], key=f"small/f{i}.bin").save()

    for _ in range(20):  # warm up: connection, user, storage rows, statement caches
        save_one()
    report("save of a new 4 KiB file", median_seconds(save_one, 200) * 1e3, "ms", "< 2 ms")


def bench_new_version(tmp: Path) -> None:
    import biolake as ln

    fresh_instance(tmp, "versions")
    path = tmp / "v.bin"
    counter = iter(range(10**6))

    def new_version() -> None:
        path.write_bytes(next(counter).to_bytes(8, "little") * 512)
        ln.Artifact(path, key="versions/data.bin").save()

    for _ in range(10):
        new_version()
    # Time only the save. Our fsync makes ext4 commit its journal, which also flushes the source
    # file if it was written a moment ago; report both cases.
    for flushed in (True, False):
        times = []
        for _ in range(200):
            path.write_bytes(next(counter).to_bytes(8, "little") * 512)
            if flushed:
                os.sync()
            t0 = time.perf_counter()
            ln.Artifact(path, key="versions/data.bin").save()
            times.append(time.perf_counter() - t0)
        label = "source already on disk" if flushed else "source written just before"
        report(f"new version of a key ({label})", statistics.median(times) * 1e3, "ms", "< 3 ms")


BULK_ROUNDS = 3  # the first batch of a process also pays one-time costs (statements, folders):
# reported on its own line too


def bench_bulk(tmp: Path, n: int) -> None:
    import logging

    import biolake as ln

    logging.getLogger("biolake").setLevel(logging.WARNING)
    fresh_instance(tmp, "bulk")
    rates = []
    for batch in range(BULK_ROUNDS):  # new files and keys each time: nothing is deduplicated
        src = tmp / f"bulk-src-{batch}"
        src.mkdir()
        for i in range(n):
            (src / f"f{i}.txt").write_bytes(os.urandom(512) + str(i).encode())
        t0 = time.perf_counter()
        keys = [f"bulk{batch}/f{i}.txt" for i in range(n)]
        artifacts = [ln.Artifact(src / f"f{i}.txt", key=keys[i]) for i in range(n)]
        ln.save(artifacts)
        rates.append(n / (time.perf_counter() - t0))
        assert ln.Artifact.filter(key__startswith=f"bulk{batch}/").count() == n
        print(f"  batch {batch + 1}: {rates[-1]:,.0f} files/s", flush=True)
    report(
        f"ln.save of {n:,} small files (median of {BULK_ROUNDS})",
        statistics.median(rates),
        "files/s",
        ">= 5,000 files/s",
    )
    report("  first batch of the process (a pipeline's usual case)", rates[0], "files/s")
    logging.getLogger("biolake").setLevel(logging.INFO)


def bench_big_file(tmp: Path, gib: float) -> None:
    from biolake.storage import LocalStorage
    from biolake.storage.hashing import hash_file

    size = int(gib * 2**30)
    path = tmp / "big.bin"
    block = os.urandom(2**20)
    with open(path, "wb") as f:
        for _ in range(size // len(block)):
            f.write(block[:-8] + os.urandom(8))
    hash_file(path)  # warm the page cache
    storage = LocalStorage(tmp / "big-store")
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        stored = storage.put_file(path, ".bin")
        times.append(time.perf_counter() - t0)
        storage.delete(stored.key)
    report(
        f"hash+store of a {gib:g} GiB file",
        size / statistics.median(times) / 1e9,
        "GB/s",
        ">= 1.5 GB/s",
    )
    path.unlink()


def bench_get_by_key(tmp: Path, n: int) -> None:
    """Rows are inserted directly (Core) so that building 100,000 artifacts stays quick;
    the lookup itself goes through the public API."""
    import biolake as ln
    from biolake.registries.base import new_uid

    instance = fresh_instance(tmp, "get")
    path = tmp / "g.txt"
    path.write_text("seed")
    seed = ln.Artifact(path, key="get/seed.txt").save()
    rows = []
    for i in range(n):
        stem = new_uid(16)
        rows.append(
            {
                "uid": stem + "0000",
                "stem": stem,
                "key": f"get/k{i:06d}.txt",
                "suffix": ".txt",
                "kind": "file",
                "size": 4,
                "hash": seed.hash,
                "version": "1",
                "is_latest": True,
                "storage_id": seed.storage_id,
                "storage_key": seed.storage_key,
                "visibility": "default",
                "created_at": seed.created_at,
                "created_by_id": seed.created_by_id,
            }
        )
    with instance.db.write() as session:
        session.execute(ln.Artifact.__table__.insert(), rows)
    keys = [f"get/k{i:06d}.txt" for i in range(0, n, max(n // 500, 1))]
    it = iter(keys * 10)
    ln.Artifact.get(key=keys[0])
    median = median_seconds(lambda: ln.Artifact.get(key=next(it)), 500)
    report(f"Artifact.get(key=...) among {n:,} artifacts", median * 1e3, "ms", "< 0.5 ms")


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="artifacts")
    parser.add_argument("--n-bulk", type=int, default=10_000)
    parser.add_argument("--n-get", type=int, default=100_000)
    parser.add_argument("--gib", type=float, default=1.0)
    parser.add_argument("--only", choices=["small", "version", "bulk", "big", "get"])
    args = parser.parse_args(argv)
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        os.environ["BIOLAKE_HOME"] = str(tmp / "home")
        runs = {
            "small": lambda: bench_small_save(tmp),
            "version": lambda: bench_new_version(tmp),
            "bulk": lambda: bench_bulk(tmp, args.n_bulk),
            "big": lambda: bench_big_file(tmp, args.gib),
            "get": lambda: bench_get_by_key(tmp, args.n_get),
        }
        for name, run in runs.items():
            if args.only in (None, name):
                run()
