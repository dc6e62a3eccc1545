"""Cost of tracking: ln.track() + ln.finish() in a fresh script, and one @ln.tracked call.

Usage: python benchmarks/run.py tracking [--scripts N] [--calls N]

- ``track + finish``: N fresh processes each run a script that times, inside itself, from just
  before ``ln.track()`` to just after ``ln.finish()`` (import and connect excluded: the script
  opens the instance first, as any first query would); p50 and p95 over the processes. The
  script prints a line, so its report is saved; the first process also records the
  environment, as every new environment does once. Measured twice: in a plain folder, and in
  a git repository (the script's git state: one ``git diff HEAD``).
- ``@ln.tracked`` overhead: the median time of a call of a tracked function that does nothing,
  minus that of the same function untracked, in one process with a run current.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

from _util import machine, median_seconds, report

SCRIPT = textwrap.dedent(
    """
    import time
    import biolake as ln
    ln.User.filter().count()  # import and connect are not part of the figure
    start = time.perf_counter()
    ln.track(params={"learning_rate": 0.01})
    print("training")
    ln.finish()
    print(time.perf_counter() - start)
    """
)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def bench_track(root: Path, folder: Path, n: int, label: str) -> None:
    folder.mkdir(exist_ok=True)
    script = folder / "tracked_step.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "BIOLAKE_INSTANCE": str(root / "instance")}
    seconds = []
    for _ in range(n):
        done = subprocess.run(
            [sys.executable, script.name], cwd=folder, env=env, capture_output=True, text=True
        )
        if done.returncode != 0:
            raise SystemExit(done.stderr)
        seconds.append(float(done.stdout.split()[-1]))
    p50, p95 = statistics.median(seconds), _percentile(seconds, 0.95)
    report(f"ln.track() + ln.finish(), {label}, p50", 1000 * p50, "ms", "<= 20 ms")
    report(f"ln.track() + ln.finish(), {label}, p95", 1000 * p95, "ms", "<= 40 ms")


def _git_repo(folder: Path) -> Path:
    folder.mkdir()
    for args in (
        ["init", "-q"],
        ["config", "user.email", "b@example.org"],
        ["config", "user.name", "b"],
    ):
        subprocess.run(["git", *args], cwd=folder, check=True)
    (folder / "tracked_step.py").write_text(SCRIPT)
    subprocess.run(["git", "add", "."], cwd=folder, check=True)
    subprocess.run(["git", "commit", "-qm", "step"], cwd=folder, check=True)
    return folder


def bench_tracked_call(calls: int) -> None:
    import biolake as ln

    def step(x: int, label: str = "a") -> int:
        return x

    tracked_step = ln.tracked()(step)
    tracked_step(0)  # the transform is created once per function and instance
    untracked = median_seconds(lambda: step(1), repeat=calls)
    tracked = median_seconds(lambda: tracked_step(1), repeat=calls)
    report("one @ln.tracked call, overhead", 1000 * (tracked - untracked), "ms", "<= 2 ms")


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="tracking")
    parser.add_argument("--scripts", type=int, default=30)
    parser.add_argument("--calls", type=int, default=200)
    args = parser.parse_args(argv)
    print(f"tracking benchmark on {machine()}, SQLite")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        import biolake as ln

        ln.setup.init(storage=root / "instance")
        bench_track(root, root / "plain", args.scripts, "plain folder")
        bench_track(root, _git_repo(root / "repo"), args.scripts, "git repository")
        bench_tracked_call(args.calls)
        ln.setup.close()
