"""What the integrity check costs a read: cache() of a small and of a large file.

Usage: python benchmarks/run.py integrity [--gib 1]

cache() compares the stored object's fingerprint (one stat) before handing out its path; only a
changed fingerprint makes it hash the object again. Printed: cache() with the check, the path
lookup alone (what cache() cost before the check), the check alone, and the rehash a changed
fingerprint costs (the first read of a row saved before migration 0007, or after a touch).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from _util import machine, median_seconds, report

CALLS = 2001


def bench_file(tmp: Path, name: str, size: int) -> None:
    import biolake as ln

    instance = ln.setup.init(storage=tmp / name)
    path = tmp / f"{name}.bin"
    with open(path, "wb") as f:
        block = os.urandom(2**20)
        for offset in range(0, size, len(block)):
            f.write(block[: min(len(block), size - offset)])
    artifact = ln.Artifact(path, key=f"{name}.bin").save()
    path.unlink()
    storage, key = instance.storage, artifact.storage_key
    artifact.cache()
    label = f"{size / 2**30:g} GiB" if size >= 2**30 else f"{size:,} B"
    cached = median_seconds(artifact.cache, CALLS)
    report(f"cache() of a {label} file, fingerprint checked", cached * 1e6, "us")
    lookup = median_seconds(lambda: storage.local_path(key), CALLS)
    report("  the path lookup alone (cache() before the check)", lookup * 1e6, "us")
    check = median_seconds(lambda: storage.check(key, artifact.hash, artifact.storage_fingerprint))
    report("  the fingerprint check alone (one stat)", check * 1e6, "us")
    t0 = time.perf_counter()
    storage.rehash(key)
    report("  a rehash, when the fingerprint changed", (time.perf_counter() - t0) * 1e3, "ms")
    ln.setup.close()


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="integrity")
    parser.add_argument("--gib", type=float, default=1.0)
    args = parser.parse_args(argv)
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        os.environ["BIOLAKE_HOME"] = str(tmp / "home")
        bench_file(tmp, "small", 4096)
        bench_file(tmp, "large", int(args.gib * 2**30))
