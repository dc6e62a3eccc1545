"""Instances: init, connect, settings, BIOLAKE_INSTANCE, the default instance, migrations."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from conftest import POSTGRES_URL

import biolake as ln
from biolake.errors import InstanceError, InstanceNotFound

UNREACHABLE_PG = "postgresql://postgres@127.0.0.1:1/x"


def run_python(code: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> Any:
    """Run ``code`` in a fresh interpreter; returns the CompletedProcess (text)."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=cwd,
        timeout=120,
    )


# --- init & connect ---------------------------------------------------------------------------


def test_init_creates_storage_and_database(tmp_path: Path) -> None:
    instance = ln.setup.init(storage=tmp_path / "mydata")
    root = (tmp_path / "mydata").resolve()
    assert instance.root == root
    assert instance.name == "mydata"
    assert (root / ".biolake" / "instance.json").is_file()
    assert (root / ".biolake" / "biolake.db").is_file()
    assert json.loads((root / ".biolake" / "instance.json").read_text()) == {
        "name": "mydata",
        "db": None,
    }
    assert ln.settings.instance is instance
    assert ln.settings.storage == root
    assert ln.settings.user.handle == "testuser"
    assert "mydata" in repr(ln.settings)


def test_init_relative_path_and_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    instance = ln.setup.init(storage="./lab", name="my-lab")
    assert instance.root == (tmp_path / "lab").resolve()
    assert instance.name == "my-lab"


def test_init_again_connects(tmp_path: Path) -> None:
    first = ln.setup.init(storage=tmp_path / "d")
    ln.Project(name="P").save()
    ln.setup.close()
    again = ln.setup.init(storage=tmp_path / "d")
    assert again.root == first.root
    assert ln.Project.filter().count() == 1


def test_init_with_other_settings_on_an_instance_is_refused(tmp_path: Path) -> None:
    ln.setup.init(storage=tmp_path / "d", name="one")
    with pytest.raises(InstanceError, match=r"already holds the instance 'one'.*connect"):
        ln.setup.init(storage=tmp_path / "d", name="two")


def test_connect_by_path_and_by_name(tmp_path: Path) -> None:
    ln.setup.init(storage=tmp_path / "a", name="alpha")
    ln.Project(name="in-alpha").save()
    ln.setup.close()
    by_name = ln.setup.connect("alpha")
    assert by_name.root == (tmp_path / "a").resolve()
    assert ln.Project.get(name="in-alpha").name == "in-alpha"
    ln.setup.close()
    assert ln.setup.connect(tmp_path / "a").name == "alpha"
    assert ln.setup.connect(str(tmp_path / "a")).name == "alpha"


def test_several_instances_in_one_process(tmp_path: Path) -> None:
    a = ln.setup.init(storage=tmp_path / "a")
    ln.Project(name="in-a").save()
    b = ln.setup.init(storage=tmp_path / "b")
    ln.Project(name="in-b").save()
    assert ln.settings.instance is b
    assert [p.name for p in ln.Project.filter()] == ["in-b"]
    assert ln.setup.connect(tmp_path / "a") is a  # switching reuses the open instance
    assert [p.name for p in ln.Project.filter()] == ["in-a"]
    assert [p.name for p in ln.Project.objects(b).filter()] == ["in-b"]
    ln.setup.connect("b")
    assert [p.name for p in ln.Project.filter()] == ["in-b"]


def test_close_then_use_reconnects_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ln.setup.init(storage=tmp_path / "d")
    ln.Project(name="P").save()
    ln.setup.close()
    monkeypatch.setenv("BIOLAKE_INSTANCE", str(tmp_path / "d"))
    assert ln.Project.get(name="P").name == "P"
    assert ln.settings.instance.root == (tmp_path / "d").resolve()


def test_biolake_instance_selects_the_instance(tmp_path: Path) -> None:
    ln.setup.init(storage=tmp_path / "d")
    ln.Project(name="shared").save()
    ln.setup.close()
    result = run_python(
        """
        import biolake as ln
        print(ln.Project.get(name="shared").name, ln.settings.storage)
        """,
        env={"BIOLAKE_INSTANCE": str(tmp_path / "d")},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["shared", str((tmp_path / "d").resolve())]
    assert result.stderr == ""  # connecting to an existing instance is silent


def test_explicit_connect_wins_over_biolake_instance(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ln.setup.init(storage=tmp_path / "env")
    ln.setup.init(storage=tmp_path / "explicit")
    ln.setup.close()
    monkeypatch.setenv("BIOLAKE_INSTANCE", str(tmp_path / "env"))
    ln.setup.connect(tmp_path / "explicit")
    assert ln.settings.instance.name == "explicit"


def test_default_instance_is_created_on_first_use(tmp_path: Path) -> None:
    home = tmp_path / "home"
    code = """
        import biolake as ln
        ln.Project(name="P").save()
        print(ln.settings.storage)
        print(ln.Project.filter().count())
    """
    env = {"BIOLAKE_HOME": str(home)}
    first = run_python(code, env)
    assert first.returncode == 0, first.stderr
    assert first.stdout.split() == [str(home / "default"), "1"]
    lines = first.stderr.strip().splitlines()
    assert len(lines) == 1, first.stderr
    assert "default instance" in lines[0]
    assert str(home / "default") in lines[0]
    assert "BIOLAKE_INSTANCE" in lines[0]
    second = run_python("import biolake as ln; print(ln.Project.filter().count())", env)
    assert second.returncode == 0, second.stderr
    assert second.stdout.strip() == "1"
    assert second.stderr == ""


def test_default_instance_in_process(tmp_path: Path) -> None:
    ln.Project(name="P").save()  # nothing configured
    default = Path(os.environ["BIOLAKE_HOME"]) / "default"
    assert ln.settings.storage == default
    assert ln.settings.instance.name == "default"
    assert ln.setup.connect("default").root == default


# --- bad input --------------------------------------------------------------------------------


def test_init_on_a_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "data.csv"
    path.write_text("a,b\n")
    with pytest.raises(InstanceError, match=r"it is a file.*folder"):
        ln.setup.init(storage=path)
    assert path.read_text() == "a,b\n"


def test_init_with_an_unreachable_database(tmp_path: Path) -> None:
    with pytest.raises(InstanceError) as info:
        ln.setup.init(storage=tmp_path / "d", db=UNREACHABLE_PG)
    message = str(info.value)
    assert "Cannot reach the database" in message
    assert "127.0.0.1:1" in message
    assert "Check that the server runs" in message
    assert not (tmp_path / "d" / ".biolake" / "instance.json").exists()
    # nothing half-made blocks a later init
    assert ln.setup.init(storage=tmp_path / "d").name == "d"


def test_init_with_an_unsupported_database_url(tmp_path: Path) -> None:
    with pytest.raises(InstanceError, match=r"Unsupported db 'mysql://x'.*postgresql://"):
        ln.setup.init(storage=tmp_path / "d", db="mysql://x")


def test_connect_to_an_unknown_name(tmp_path: Path) -> None:
    ln.setup.init(storage=tmp_path / "d", name="my-lab")
    with pytest.raises(InstanceNotFound) as info:
        ln.setup.connect("my-lb")
    message = str(info.value)
    assert "No instance at 'my-lb'" in message
    assert "Did you mean 'my-lab'?" in message
    assert "ln.setup.init(storage='my-lb')" in message
    assert isinstance(info.value, LookupError)


def test_connect_to_a_name_whose_folder_is_gone(tmp_path: Path) -> None:
    ln.setup.init(storage=tmp_path / "d", name="gone")
    ln.setup.close()
    (tmp_path / "d" / ".biolake" / "instance.json").unlink()
    with pytest.raises(InstanceNotFound, match=r"registered at .*no instance is there"):
        ln.setup.connect("gone")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "is not a storage folder path"),
        ("   ", "is not a storage folder path"),
        ("no/such/relative/dir", "is not a storage folder path"),
        ("/no/such/absolute/dir", "biolake init --storage /no/such/absolute/dir"),
    ],
)
def test_malformed_biolake_instance(
    monkeypatch: pytest.MonkeyPatch, value: str, message: str
) -> None:
    monkeypatch.setenv("BIOLAKE_INSTANCE", value)
    with pytest.raises(InstanceError) as info:
        ln.User.filter().count()
    assert message in str(info.value)
    assert "BIOLAKE_INSTANCE" in str(info.value)


def test_biolake_instance_pointing_at_a_plain_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BIOLAKE_INSTANCE", str(tmp_path))
    with pytest.raises(InstanceNotFound, match=r"no instance there.*biolake init --storage"):
        ln.User.filter().count()


def test_corrupt_instance_settings(tmp_path: Path) -> None:
    ln.setup.init(storage=tmp_path / "d")
    ln.setup.close()
    (tmp_path / "d" / ".biolake" / "instance.json").write_text("{not json")
    with pytest.raises(InstanceError, match=r"corrupt.*backup"):
        ln.setup.connect(tmp_path / "d")


# --- migrations -------------------------------------------------------------------------------


def test_opening_applies_pending_migrations(tmp_path: Path) -> None:
    ln.setup.init(storage=tmp_path / "d")
    ln.setup.close()
    (tmp_path / "d" / ".biolake" / "biolake.db").unlink()  # an empty database: schema pending
    ln.setup.connect(tmp_path / "d")
    assert ln.Project(name="P").save().id == 1


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    instance = ln.setup.init(storage=tmp_path / "d")
    with instance.db.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '9999'")
    ln.setup.close()
    with pytest.raises(InstanceError, match=r"newer biolake.*pip install -U biolake"):
        ln.setup.connect(tmp_path / "d")


def test_opening_a_current_instance_does_not_import_alembic(tmp_path: Path) -> None:
    ln.setup.init(storage=tmp_path / "d")
    ln.setup.close()
    result = run_python(
        f"""
        import sys
        import biolake as ln
        ln.setup.connect({str(tmp_path / "d")!r})
        ln.User.filter(handle="x").first()
        ln.Project(name="P").save()
        print("alembic" in sys.modules)
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_sqlite_pragmas(tmp_path: Path) -> None:
    instance = ln.setup.init(storage=tmp_path / "d")
    with instance.db.engine.connect() as conn:
        pragma = conn.exec_driver_sql
        assert pragma("PRAGMA journal_mode").scalar() == "wal"
        assert pragma("PRAGMA foreign_keys").scalar() == 1
        assert pragma("PRAGMA busy_timeout").scalar() >= 5000
        assert pragma("PRAGMA synchronous").scalar() == 1  # NORMAL


CONCURRENT_INIT = """
import sys, time
from pathlib import Path
import biolake as ln
import biolake.registries, biolake.core.schema.migrate  # import before the barrier
barrier, me, other, root, db = sys.argv[1:]
(Path(barrier) / me).touch()
while not (Path(barrier) / other).exists():  # both start initialising at the same moment
    time.sleep(0.002)
ln.setup.init(storage=root, db=db or None, name="shared")
ln.User.filter().count()
print("migrated" if "alembic" in sys.modules else "waited")
"""


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_two_processes_initialise_one_instance_at_once(
    backend: str, tmp_path: Path, postgres_database: str | None
) -> None:
    if backend == "postgres":
        if not POSTGRES_URL:
            pytest.skip("set BIOLAKE_TEST_POSTGRES_URL to run on PostgreSQL")
        from conftest import postgres_url_for_test

        assert postgres_database is not None
        db = postgres_url_for_test(postgres_database)
    else:
        db = ""
    root = tmp_path / "shared"
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CONCURRENT_INIT, str(barrier), me, other, str(root), db],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for me, other in [("a", "b"), ("b", "a")]
    ]
    outputs = [p.communicate(timeout=120) for p in procs]
    for proc, (_out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err
    assert sorted(out.strip() for out, _ in outputs) == ["migrated", "waited"]
    ln.setup.connect(root)
    assert ln.settings.instance.name == "shared"
    with ln.settings.instance.db.engine.connect() as conn:
        rows = conn.exec_driver_sql("SELECT version_num FROM alembic_version").all()
    assert len(rows) == 1


def test_an_explicit_name_in_use_is_refused(tmp_path: Path) -> None:
    ln.setup.init(storage=tmp_path / "one", name="lab")
    with pytest.raises(ln.errors.InstanceError, match=r"name 'lab' is taken by the instance at"):
        ln.setup.init(storage=tmp_path / "two", name="lab")
    assert not (tmp_path / "two" / ".biolake").exists()
    assert ln.setup.connect("lab").root == (tmp_path / "one").resolve()


def test_a_folder_name_in_use_leaves_the_first_instance_reachable(tmp_path: Path) -> None:
    first = ln.setup.init(storage=tmp_path / "a" / "data")
    second = ln.setup.init(storage=tmp_path / "b" / "data")  # implicit name "data" is taken
    assert second.root != first.root
    assert ln.setup.connect("data").root == first.root
    assert ln.setup.connect(tmp_path / "b" / "data").root == second.root
