"""Startup cost, each figure the median over fresh processes.

- ``import biolake`` alone;
- import + connect (``BIOLAKE_INSTANCE``) + a first query, ``ln.User.filter(handle="x").first()``;
- ``biolake --help``.

Usage: python benchmarks/run.py startup [--repeat N]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _util import machine, report

PYTHON = sys.executable
FIRST_QUERY = "import biolake as ln; ln.User.filter(handle='x').first()"


def _script() -> list[str]:
    script = Path(PYTHON).with_name("biolake")
    if script.exists():
        return [str(script)]
    found = shutil.which("biolake")
    return [found] if found else [PYTHON, "-m", "biolake.cli"]


def _median_process_seconds(cmd: list[str], env: dict[str, str], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="startup", description=__doc__)
    parser.add_argument("--repeat", type=int, default=15, help="fresh processes per figure")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="biolake-bench-") as tmp:
        root = Path(tmp) / "data"
        env = {
            **os.environ,
            "BIOLAKE_HOME": str(Path(tmp) / "home"),
            "BIOLAKE_USER": "bench",
        }
        env.pop("BIOLAKE_INSTANCE", None)
        # Create the instance (and the user) once, outside the timings.
        subprocess.run(
            [
                PYTHON,
                "-c",
                f"import biolake as ln; ln.setup.init(storage={str(root)!r}); ln.settings.user",
            ],
            env=env,
            check=True,
            stderr=subprocess.DEVNULL,
        )
        with_instance = {**env, "BIOLAKE_INSTANCE": str(root)}

        print(f"startup, median of {args.repeat} fresh processes ({machine()})")
        baseline = _median_process_seconds([PYTHON, "-c", "pass"], env, args.repeat)
        report("python -c pass (interpreter baseline)", baseline, "s")
        seconds = _median_process_seconds([PYTHON, "-c", "import biolake"], env, args.repeat)
        report("import biolake", seconds, "s")
        seconds = _median_process_seconds([PYTHON, "-c", FIRST_QUERY], with_instance, args.repeat)
        report("import + connect + first query", seconds, "s", "< 0.6 s")
        seconds = _median_process_seconds([*_script(), "--help"], env, args.repeat)
        report("biolake --help", seconds, "s", "< 0.15 s")
