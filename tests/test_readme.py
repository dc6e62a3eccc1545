"""The README's Python examples run, in order, in a fresh process and a fresh folder."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)


def test_readme_opens_with_the_two_commands() -> None:
    first_block = re.search(r"```sh\n(.*?)```", README.read_text(), flags=re.DOTALL)
    assert first_block is not None
    commands = [line.split("#")[0].strip() for line in first_block.group(1).splitlines()]
    assert commands == ["make demo", "make test"]
    makefile = (README.parent / "Makefile").read_text()
    assert "\ndemo:" in makefile
    assert "\ntest:" in makefile


def test_readme_python_examples_run(tmp_path: Path) -> None:
    blocks = python_blocks()
    assert len(blocks) >= 3
    env = {**os.environ, "BIOLAKE_HOME": str(tmp_path / "home"), "BIOLAKE_USER": "readme"}
    env.pop("BIOLAKE_INSTANCE", None)
    result = subprocess.run(
        [sys.executable, "-c", "\n".join(blocks)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "Did you mean 'handle'?" in result.stdout
    assert (tmp_path / "mydata" / ".biolake" / "instance.json").is_file()
