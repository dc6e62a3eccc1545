"""The walkthrough behind `make demo` runs on a fresh default instance, and runs again."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

DEMO = Path(__file__).resolve().parent.parent / "examples" / "demo.py"


def run_demo(home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "BIOLAKE_HOME": str(home), "BIOLAKE_USER": "demo"}
    env.pop("BIOLAKE_INSTANCE", None)
    return subprocess.run(
        [sys.executable, str(DEMO)], env=env, capture_output=True, text=True, timeout=300
    )


def test_demo_walks_through_the_contract_twice(tmp_path: Path) -> None:
    first = run_demo(tmp_path)
    assert first.returncode == 0, first.stderr
    out = first.stdout
    assert "using the default instance" in first.stderr or "default instance" in first.stderr
    assert "second save: version 2, latest=True" in out
    assert "same artifact: True" in out
    assert "after delete, latest is version 1" in out
    assert "read_count > 1e6 and T cell: ['demo/counts/sample2.csv']" in out
    assert "rejected: Nothing was stored" in out
    assert "demo.py (version 1) -> completed" in out
    assert "demo.py:tracked_pipeline.<locals>.scale_expression: params {" in out
    assert (
        "inputs: ['demo/processed_data.parquet'] | outputs: ['demo/expression_scaled.parquet']"
        in out
    )
    assert "initiated by the script's run: True" in out
    assert (
        "ancestors of the summary: ['demo/expression_scaled.parquet', "
        "'demo/processed_data.parquet']" in out
    )
    assert "the script's report starts: → started run" in out
    picture = out.split("lineage picture: ")[1].split(" (")[0]
    assert Path(picture).read_text().startswith("<svg")
    assert "search 'p53': ['P53mutant1'" in out
    again = run_demo(tmp_path)  # same instance: existing content is found, nothing breaks
    assert again.returncode == 0, again.stderr
    assert "returning the existing artifact" in again.stderr
