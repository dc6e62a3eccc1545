"""docs/check.md: its Python example runs as written, on an instance with one problem."""

from __future__ import annotations

import re
from pathlib import Path

import biolake as ln

DOC = Path(__file__).resolve().parents[2] / "docs" / "check.md"


def test_the_python_example_runs(instance, tmp_path: Path, capsys) -> None:
    (code,) = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.DOTALL)
    source = tmp_path / "orphan.csv"
    source.write_text("bytes no row references\n")
    orphan = instance.storage.put_file(source, ".csv")
    names = {"ln": ln}
    exec(compile(code, str(DOC), "exec"), names)
    assert names["report"].ok is False
    assert [f.where for f in names["report"].by_kind()["stray_object"]] == [orphan.key]
    assert "stored objects no row references" in capsys.readouterr().out
