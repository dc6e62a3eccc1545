"""Run one benchmark workload and print its figures.

Usage: python benchmarks/run.py WORKLOAD [args...]

Each workload is a module ``benchmarks/<workload>.py`` with a ``main(argv)`` function that prints
medians. Timings never go into tests; they live here.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def available() -> list[str]:
    return sorted(p.stem for p in HERE.glob("*.py") if p.stem not in {"run", "_util"})


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in available():
        print(__doc__)
        print("workloads:", ", ".join(available()))
        raise SystemExit(2)
    sys.path.insert(0, str(HERE))
    module = importlib.import_module(sys.argv[1])
    module.main(sys.argv[2:])


if __name__ == "__main__":
    main()
