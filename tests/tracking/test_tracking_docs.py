"""docs/tracking.md: each script block runs, in order, as `python <name>.py` on one instance."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import biolake as ln

DOC = Path(__file__).resolve().parents[2] / "docs" / "tracking.md"


def scripts() -> list[tuple[str, str]]:
    pattern = r"<!-- script: (\S+) -->\n```python\n(.*?)```"
    return re.findall(pattern, DOC.read_text(), flags=re.DOTALL)


def test_tracking_doc_scripts_run_in_order(instance, tmp_path: Path) -> None:
    blocks = scripts()
    assert [name for name, _ in blocks] == ["preprocess.py", "inspect_lineage.py"]
    env = {**os.environ, "BIOLAKE_INSTANCE": str(instance.root)}
    outputs = []
    for name, code in blocks:
        (tmp_path / name).write_text(code)
        done = subprocess.run(
            [sys.executable, name], cwd=tmp_path, env=env, capture_output=True, text=True,
            timeout=120,
        )  # fmt: skip
        assert done.returncode == 0, f"{name}:\n{done.stderr}"
        outputs.append(done.stdout)
    lines = outputs[1].splitlines()
    key, _, rest = lines[0].partition(" ")
    assert key == "preprocess.py:normalise" and rest.endswith(" completed")
    assert "'input_key': 'raw/counts.csv'" in rest and "'scale': 1.0" in rest
    assert lines[1:3] == ["['raw/counts.csv']", "True"]
    assert lines[-1].startswith("→ started run") and lines[-1].endswith(
        " of preprocess.py (version 1)"
    )
    assert (tmp_path / "lineage.svg").read_text().startswith("<svg")
    assert ln.Transform.get(name="preprocess.py").description == "Normalise the raw counts."
