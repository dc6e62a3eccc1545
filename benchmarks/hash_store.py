"""Throughput of storing a large file: LocalStorage.put_file against hashing and plain copies.

Usage: python benchmarks/run.py hash_store [--size-mib 1024] [--repeat 5] [--dir PATH]

The source file sits in the page cache (it is read once before timing). Each repetition stores
a fresh copy: the stored object is deleted, and outstanding writeback flushed with sync(),
between repetitions, outside the timed region. Figures are medians in GB/s (10^9 bytes/s).
The "copy + fsync" line is the same durable write without hashing: the disk's ceiling.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from _util import machine, report

from biolake.storage import LocalStorage
from biolake.storage.hashing import hash_file


def _median_gbps(
    size: int, repeat: int, run: Callable[[], object], reset: Callable[[], None]
) -> float:
    seconds = []
    for _ in range(repeat):
        reset()
        os.sync()  # start each repetition without the previous one's dirty pages
        t0 = time.perf_counter()
        run()
        seconds.append(time.perf_counter() - t0)
    return size / statistics.median(seconds) / 1e9


def _make_source(path: Path, size: int) -> None:
    block = os.urandom(8 * 1024 * 1024)
    with open(path, "wb") as f:
        for offset in range(0, size, len(block)):
            f.write(block[: size - offset])
    hash_file(path)  # read once: the page cache is warm from here on


def _copy_fsync(src: Path, dst: Path) -> None:
    with open(src, "rb") as fin, open(dst, "wb") as fout:
        shutil.copyfileobj(fin, fout, 8 * 1024 * 1024)
        fout.flush()
        os.fsync(fout.fileno())


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="hash_store")
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--dir", default=None, help="where to create the file and the store")
    args = parser.parse_args(argv)
    size = args.size_mib * 1024 * 1024
    print(f"hash_store: {args.size_mib} MiB file, {args.repeat} repetitions, {machine()}")
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        src, copy = Path(tmp) / "source.bin", Path(tmp) / "copy.bin"
        _make_source(src, size)
        for fsync in (True, False):
            storage = LocalStorage(Path(tmp) / "store", fsync=fsync)
            key = storage.put_file(src, ".bin").key

            def put(storage: LocalStorage = storage) -> object:
                return storage.put_file(src, ".bin")

            def delete(storage: LocalStorage = storage, key: str = key) -> None:
                storage.delete(key)

            gbps = _median_gbps(size, args.repeat, put, delete)
            name = (
                "LocalStorage.put_file (hash + copy + fsync)" if fsync else "put_file, fsync=False"
            )
            report(name, gbps, "GB/s", ">= 1.5" if fsync else "")
        report(
            "hash_file (hash only)",
            _median_gbps(size, args.repeat, lambda: hash_file(src), lambda: None),
            "GB/s",
        )
        gbps = _median_gbps(
            size, args.repeat, lambda: _copy_fsync(src, copy), lambda: copy.unlink(missing_ok=True)
        )
        report("reference: plain copy + fsync, no hash", gbps, "GB/s")
        storage.delete(key)
