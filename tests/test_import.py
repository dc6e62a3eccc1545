"""Importing biolake does nothing: no heavy modules, no database, no files; a tested __all__."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import biolake as ln

HEAVY = ["pandas", "anndata", "pyarrow", "psycopg", "alembic", "boto3", "s3fs", "numpy"]


def run_python(code: str, **env: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_import_loads_nothing_heavy(tmp_path: Path) -> None:
    home = tmp_path / "home"
    out = run_python(
        f"""
        import sys
        import biolake
        import biolake as ln
        heavy = {HEAVY!r} + ["sqlalchemy", "platformdirs", "biolake.setup"]
        heavy += ["biolake.core.connect", "biolake.core.db"]
        print(sorted(m for m in sys.modules if m.split(".")[0] in heavy or m in heavy))
        """,
        BIOLAKE_HOME=str(home),
    )
    assert out == "[]"
    assert not home.exists()  # no default instance, no files


def test_errors_import_loads_nothing_heavy() -> None:
    out = run_python(
        """
        import sys
        import biolake as ln
        ln.errors.BiolakeError
        print("sqlalchemy" in sys.modules)
        """
    )
    assert out == "False"


def test_first_query_loads_no_data_libraries(tmp_path: Path) -> None:
    ln.setup.init(storage=tmp_path / "d")
    ln.setup.close()
    out = run_python(
        f"""
        import sys
        import biolake as ln
        ln.User.filter(handle="x").first()
        print(sorted(m for m in {HEAVY!r} if m in sys.modules))
        """,
        BIOLAKE_INSTANCE=str(tmp_path / "d"),
    )
    assert out == "[]"


def test_first_query_leaves_storage_and_feature_planning_for_later(tmp_path: Path) -> None:
    """Startup stays what it was before the layering: the storage package (blake3, a thread
    pool) and the feature filter planning load on first use, not with the registries."""
    ln.setup.init(storage=tmp_path / "d")
    ln.setup.close()
    later = ["biolake.storage", "blake3", "biolake.features.filters", "biolake.features.frame"]
    code = f"""
        import sys
        import biolake as ln
        ln.User.filter(handle="x").first()
        print(sorted(m for m in {later!r} if m in sys.modules))
        """
    assert run_python(code, BIOLAKE_INSTANCE=str(tmp_path / "d")) == "[]"


def test_all_is_sorted_and_resolves() -> None:
    assert ln.__all__ == sorted(ln.__all__)
    assert len(set(ln.__all__)) == len(ln.__all__)
    for name in ln.__all__:
        assert getattr(ln, name) is not None, name
    assert sorted(dir(ln)) == sorted(ln.__all__)


def test_public_registries_and_api() -> None:
    for name in ["User", "Project", "Transform", "Run"]:
        assert issubclass(getattr(ln, name), ln.Registry)
    assert ln.settings is ln.setup.settings
    assert callable(ln.save)
    assert callable(ln.setup.init)
    assert callable(ln.setup.connect)
    assert isinstance(ln.__version__, str)


def test_unknown_attribute() -> None:
    try:
        ln.NoSuchThing  # noqa: B018
    except AttributeError as exc:
        assert "NoSuchThing" in str(exc)
    else:  # pragma: no cover
        raise AssertionError("no error")


def test_py_typed_is_shipped() -> None:
    assert (Path(ln.__file__).parent / "py.typed").is_file()
