"""The command line: init, connect, info; clean errors; fast --help."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import biolake as ln
from biolake.cli import cli

UNREACHABLE_PG = "postgresql://postgres@127.0.0.1:1/x"


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_init(tmp_path: Path) -> None:
    code, out, _err = invoke("init", "--storage", str(tmp_path / "mydata"), "--name", "lab")
    assert code == 0
    root = (tmp_path / "mydata").resolve()
    assert f"Instance 'lab' at {root}" in out
    assert f"export BIOLAKE_INSTANCE={root}" in out
    assert (root / ".biolake" / "instance.json").is_file()


def test_connect_prints_the_export_line(tmp_path: Path) -> None:
    ln.setup.init(storage=tmp_path / "my data", name="lab")
    ln.setup.close()
    code, out, err = invoke("connect", "lab")
    assert code == 0
    root = (tmp_path / "my data").resolve()
    assert out == f"export BIOLAKE_INSTANCE='{root}'\n"  # quoted for the shell
    assert 'eval "$(biolake connect lab)"' in err


def test_info(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ln.setup.init(storage=tmp_path / "d", name="lab")
    ln.Project(name="P").save()
    ln.setup.close()
    monkeypatch.setenv("BIOLAKE_INSTANCE", str(tmp_path / "d"))
    code, out, _err = invoke("info")
    assert code == 0
    assert "instance:  lab" in out
    assert f"storage:   {(tmp_path / 'd').resolve()}" in out
    assert "db:        sqlite:///" in out
    assert "user:      testuser" in out
    assert "Project      1" in out
    assert "User         1" in out


def test_info_json_and_instance_option(tmp_path: Path) -> None:
    ln.setup.init(storage=tmp_path / "a", name="a")
    ln.setup.init(storage=tmp_path / "b", name="b")
    ln.Project(name="P").save()
    ln.setup.close()
    code, out, _err = invoke("--instance", "b", "info", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["instance"] == "b"
    assert data["counts"]["Project"] == 1
    assert {"User", "Project", "Transform", "Run"} <= set(data["counts"])
    code, out, _err = invoke("-i", str(tmp_path / "a"), "info", "--json")
    assert json.loads(out)["counts"]["Project"] == 0


def test_errors_are_one_clean_line(tmp_path: Path) -> None:
    file = tmp_path / "data.csv"
    file.write_text("x")
    cases = [
        (["init", "--storage", str(file)], "it is a file"),
        (["init", "--storage", str(tmp_path / "d"), "--db", UNREACHABLE_PG], "Cannot reach"),
        (["connect", "no-such-instance"], "ln.setup.init"),
        (["--instance", "no-such-instance", "info"], "No instance at 'no-such-instance'"),
    ]
    for args, message in cases:
        code, out, err = invoke(*args)
        assert code == 1, args
        assert out == ""
        assert err.startswith("Error: ")
        assert message in err
        assert "Traceback" not in err


def test_malformed_biolake_instance(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BIOLAKE_INSTANCE", "not/a/folder")
    code, _out, err = invoke("info")
    assert code == 1
    assert "BIOLAKE_INSTANCE='not/a/folder' is not a storage folder path" in err


def test_usage_errors_exit_2() -> None:
    code, _out, err = invoke("init")
    assert code == 2
    assert "Missing option '--storage'" in err


@pytest.mark.parametrize("command", [[], ["init"], ["connect"], ["info"], ["check"]])
def test_every_help_has_an_example(command: list[str]) -> None:
    code, out, _err = invoke(*command, "--help")
    assert code == 0
    assert "Example:" in out
    assert "biolake " in out.split("Example:")[1]


def biolake_script() -> list[str]:
    script = Path(sys.executable).with_name("biolake")
    if script.exists():
        return [str(script)]
    found = shutil.which("biolake")
    return [found] if found else [sys.executable, "-m", "biolake.cli"]


def test_the_installed_script_end_to_end(tmp_path: Path) -> None:
    env = {**os.environ, "BIOLAKE_HOME": str(tmp_path / "home")}
    env.pop("BIOLAKE_INSTANCE", None)

    def run(*args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*biolake_script(), *args],
            capture_output=True,
            text=True,
            env={**env, **extra},
            timeout=60,
        )

    created = run("init", "--storage", str(tmp_path / "d"), "--name", "lab")
    assert created.returncode == 0, created.stderr
    root = created.stdout.strip().rsplit("BIOLAKE_INSTANCE=", 1)[1]
    info = run("info", "--json", BIOLAKE_INSTANCE=root)
    assert info.returncode == 0, info.stderr
    assert json.loads(info.stdout)["instance"] == "lab"
    failed = run("connect", "nope")
    assert failed.returncode == 1
    assert failed.stderr.startswith("Error: No instance at 'nope'")


def test_help_imports_only_click() -> None:
    # What keeps `biolake --help` fast (timed in benchmarks/startup.py, target 0.15 s).
    code = (
        "import sys\nfrom biolake.cli import main\nsys.argv = ['biolake', '--help']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "heavy = ('sqlalchemy', 'pandas', 'platformdirs', 'biolake.setup',\n"
        "         'biolake.core.connect', 'biolake.core.db')\n"
        "print([m for m in heavy if m in sys.modules], file=sys.stderr)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "[]"
    assert "Usage: biolake" in result.stdout
