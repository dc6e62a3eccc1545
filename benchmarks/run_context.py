"""Cost of describing where a run executes: git state, environment fingerprint, scheduler.

Usage: python benchmarks/run.py run_context [--calls N]

Each of these runs on every ``ln.track()`` (budget ~20 ms in all); each figure is the median of
N calls in one process:

- ``git_state``: on this repository, with its one ``git diff HEAD``, and without it (the file
  reads alone: commit, branch, remote);
- ``fingerprint()``: on this interpreter's ``sys.path``, then with 300 more ``*.dist-info``
  folders on it, as in a large environment;
- ``scheduler_context()`` on this process's environment;
- ``package_list()``, which runs only for a fingerprint not seen before, for scale.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import sys
import tempfile
from pathlib import Path

from _util import machine, median_seconds, report

from biolake.tracking.environment import fingerprint, package_list
from biolake.tracking.git import git_state
from biolake.tracking.scheduler import scheduler_context

ROOT = Path(__file__).resolve().parents[1]


def bench_git(calls: int) -> None:
    if git_state(ROOT) is None:
        print(f"{ROOT} is not a git repository: git_state skipped")
        return
    full = median_seconds(lambda: git_state(ROOT), repeat=calls)
    files = median_seconds(lambda: git_state(ROOT, diff=False), repeat=calls)
    report("git_state(repo), with git diff", 1000 * full, "ms")
    report("git_state(repo, diff=False), files only", 1000 * files, "ms", "< 1 ms")


def bench_fingerprint(calls: int) -> None:
    count = sum(1 for _ in importlib.metadata.distributions())
    here = median_seconds(fingerprint, repeat=calls)
    report(f"fingerprint(), {count} distributions", 1000 * here, "ms", "a few ms")
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(300):
            (Path(tmp) / f"package_{i}-1.{i}.dist-info").mkdir()
        sys.path.append(tmp)
        try:
            large = median_seconds(fingerprint, repeat=calls)
        finally:
            sys.path.remove(tmp)
    report(f"fingerprint(), {count + 300} distributions", 1000 * large, "ms", "a few ms")


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="run_context")
    parser.add_argument("--calls", type=int, default=50)
    args = parser.parse_args(argv)
    print(f"run context benchmark on {machine()}")
    bench_git(args.calls)
    bench_fingerprint(args.calls)
    scheduler = median_seconds(scheduler_context, repeat=args.calls)
    report("scheduler_context()", 1000 * scheduler, "ms")
    listing = median_seconds(package_list, repeat=max(1, args.calls // 10))
    report("package_list() (only for a new fingerprint)", 1000 * listing, "ms")
