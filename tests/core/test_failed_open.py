"""A failed ``init`` or ``connect`` leaves the process on no instance (never the one current
before, never the default instance) and leaves nothing half-made on disk or in the database."""

from __future__ import annotations

import functools
import os
import re
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import POSTGRES_URL, postgres_url_for_test

import biolake as ln
from biolake.errors import InstanceError

UNREACHABLE_PG = "postgresql://postgres@127.0.0.1:1/x"


def default_instance() -> Path:
    return Path(os.environ["BIOLAKE_HOME"]) / "default"


def newer_schema(tmp_path: Path) -> Path:
    """An instance whose schema a newer biolake wrote."""
    root = tmp_path / "newer"
    made = ln.setup.init(storage=root)
    with made.db.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '9999'")
    return root


def other_programs_database(tmp_path: Path) -> Path:
    """An instance folder whose database file another program replaced with its own."""
    root = tmp_path / "other"
    ln.setup.init(storage=root)
    db_file = root / ".biolake" / "biolake.db"
    ln.setup.close()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db_file}{suffix}").unlink(missing_ok=True)
    with sqlite3.connect(db_file) as conn:
        conn.execute("CREATE TABLE samples (id INTEGER PRIMARY KEY, name TEXT)")
    return root


def unreadable_settings(tmp_path: Path) -> Path:
    """A folder whose instance settings are a folder, not a file."""
    root = tmp_path / "odd"
    (root / ".biolake" / "instance.json").mkdir(parents=True)
    return root


def a_file(tmp_path: Path) -> Path:
    path = tmp_path / "data.csv"
    path.write_text("a,b\n")
    return path


# Each: (what to prepare, returning the call that fails; what the error says)
FAILURES: dict[str, tuple[Callable[[Path], Callable[[], Any]], str]] = {
    "unknown name": (lambda tmp: lambda: ln.setup.connect("no-such-lab"), "No instance at"),
    "a file": (lambda tmp: lambda: ln.setup.init(storage=a_file(tmp)), "it is a file"),
    "unreachable database": (
        lambda tmp: lambda: ln.setup.init(storage=tmp / "x", db=UNREACHABLE_PG),
        "Cannot reach the database",
    ),
    "newer schema": (
        lambda tmp: functools.partial(ln.setup.connect, newer_schema(tmp)),
        "migrated by a newer biolake",
    ),
    "unreadable settings": (
        lambda tmp: functools.partial(ln.setup.connect, unreadable_settings(tmp)),
        "Cannot read the instance settings",
    ),
    "another program's database": (
        lambda tmp: functools.partial(ln.setup.connect, other_programs_database(tmp)),
        "holds tables of another program (samples)",
    ),
}


@pytest.mark.parametrize("cause", sorted(FAILURES))
def test_after_a_failed_open_no_instance_is_current(
    instance: Any, tmp_path: Path, cause: str
) -> None:
    prepare, says = FAILURES[cause]
    fail = prepare(tmp_path)
    ln.setup.close()
    before = ln.setup.connect(instance.root)
    ln.Project(name="before").save()
    with pytest.raises(InstanceError, match=re.escape(says)):
        fail()
    for use in (
        lambda: ln.settings.instance,
        lambda: ln.Project(name="lost").save(),
        lambda: ln.Project.filter().count(),
    ):
        with pytest.raises(InstanceError, match=r"No instance is connected: ln\.setup\.") as info:
            use()
        assert says in str(info.value)
    assert "no instance: ln.setup." in repr(ln.settings)
    assert not default_instance().exists()
    assert [p.name for p in ln.Project.objects(before).filter()] == ["before"]
    # Connecting again ends it; the instance open before is still the same object.
    assert ln.setup.connect(instance.root) is before
    assert ln.Project.filter().count() == 1


def test_close_forgets_a_failed_connect(tmp_path: Path) -> None:
    with pytest.raises(InstanceError):
        ln.setup.connect(tmp_path / "missing")
    with pytest.raises(InstanceError, match="No instance is connected"):
        ln.Project.filter().count()
    ln.setup.close()  # back to the start: the default instance, as documented
    assert ln.Project.filter().count() == 0
    assert ln.settings.storage == default_instance()


FAILED_CONNECT_THEN_SAVE = """
    import os
    import biolake as ln
    try:
        ln.setup.connect(os.environ["TARGET"])
    except ln.errors.InstanceError:
        pass
    try:
        ln.Project(name="lost").save()
    except ln.errors.InstanceError as exc:
        print(exc)
"""


def test_a_failed_connect_in_a_script_saves_nowhere(tmp_path: Path) -> None:
    """A fresh process whose connect fails: neither BIOLAKE_INSTANCE nor the default instance
    receives the save that follows."""
    ln.setup.init(storage=tmp_path / "env")
    ln.setup.close()
    home = tmp_path / "home"
    env = {
        **os.environ,
        "BIOLAKE_HOME": str(home),
        "BIOLAKE_INSTANCE": str(tmp_path / "env"),
        "TARGET": str(tmp_path / "typo"),
    }
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(FAILED_CONNECT_THEN_SAVE)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(
        f"No instance is connected: ln.setup.connect({str(tmp_path / 'typo')!r}) failed"
    )
    assert not (home / "default").exists()
    ln.setup.connect(tmp_path / "env")
    assert ln.Project.filter().count() == 0


# --- nothing half-made ------------------------------------------------------------------------


def test_a_failed_init_removes_the_folders_it_made(tmp_path: Path) -> None:
    root = tmp_path / "new" / "lab"
    with pytest.raises(InstanceError, match="Cannot reach the database"):
        ln.setup.init(storage=root, db=UNREACHABLE_PG)
    assert not (tmp_path / "new").exists()
    existing = tmp_path / "kept"
    (existing / "notes.txt").parent.mkdir()
    (existing / "notes.txt").write_text("mine")
    with pytest.raises(InstanceError):
        ln.setup.init(storage=existing, db=UNREACHABLE_PG)
    assert [p.name for p in existing.iterdir()] == ["notes.txt"]


def test_init_refuses_a_sqlite_file_of_another_program(tmp_path: Path) -> None:
    root = tmp_path / "d"
    (root / ".biolake").mkdir(parents=True)
    with sqlite3.connect(root / ".biolake" / "biolake.db") as conn:
        conn.execute("CREATE TABLE samples (id INTEGER PRIMARY KEY)")
    with pytest.raises(InstanceError, match=r"tables of another program \(samples\)"):
        ln.setup.init(storage=root)
    with sqlite3.connect(root / ".biolake" / "biolake.db") as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
    assert tables == ["samples"]
    assert not (root / ".biolake" / "instance.json").exists()


def test_a_path_with_url_characters_keeps_its_database_inside(tmp_path: Path) -> None:
    """``?``, ``#`` and ``%`` in a folder name are part of the path, not of a URL: each
    instance has its own database file in its own folder."""
    first = ln.setup.init(storage=tmp_path / "run?1#a%41")
    ln.Project(name="first").save()
    ln.setup.init(storage=tmp_path / "run?2#b")
    assert ln.Project.filter().count() == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run?1#a%41", "run?2#b"]
    assert (first.root / ".biolake" / "biolake.db").is_file()
    assert str(first.root / ".biolake" / "biolake.db") in first.db.safe_url


# --- PostgreSQL -------------------------------------------------------------------------------


@pytest.fixture
def pg_url(postgres_database: str | None) -> str:
    if not POSTGRES_URL:
        pytest.skip("set BIOLAKE_TEST_POSTGRES_URL to run on PostgreSQL")
    assert postgres_database is not None
    return postgres_url_for_test(postgres_database)


def _schema_sql(url: str, *statements: str) -> list[Any]:
    import psycopg

    with psycopg.connect(url) as conn:
        rows: list[Any] = []
        for statement in statements:
            cursor = conn.execute(statement)
            if cursor.description:
                rows.extend(cursor.fetchall())
        conn.commit()
        return rows


PG_FAILURES = {
    "unknown role": (None, "Cannot reach the database"),
    "another program's tables": (
        ["CREATE TABLE samples (id int)", "INSERT INTO samples VALUES (1)"],
        r"holds tables of another program \(samples\)",
    ),
    "another program's alembic revision": (
        [
            "CREATE TABLE alembic_version (version_num varchar(32))",
            "INSERT INTO alembic_version VALUES ('ae1027a6acf')",
        ],
        "schema 'ae1027a6acf' of another program",
    ),
    "a newer biolake's schema": (
        [
            "CREATE TABLE alembic_version (version_num varchar(32))",
            "INSERT INTO alembic_version VALUES ('9999')",
        ],
        "migrated by a newer biolake",
    ),
}


@pytest.mark.parametrize("cause", sorted(PG_FAILURES))
def test_a_failed_postgres_init_leaves_the_folder_and_database_as_they_were(
    pg_url: str, tmp_path: Path, cause: str
) -> None:
    setup, says = PG_FAILURES[cause]
    url = pg_url
    if setup is None:
        url = pg_url.replace("postgres@", "no_such_role@", 1)
    else:
        _schema_sql(pg_url, *setup)
    before = _tables(pg_url)
    with pytest.raises(InstanceError, match=says):
        ln.setup.init(storage=tmp_path / "lab", db=url)
    assert not (tmp_path / "lab").exists()
    assert _tables(pg_url) == before
    with pytest.raises(InstanceError, match="No instance is connected"):
        ln.Project.filter().count()
    assert not default_instance().exists()


def _tables(url: str) -> list[str]:
    query = "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() ORDER BY 1"
    return [row[0] for row in _schema_sql(url, query)]


def test_a_failed_init_keeps_a_database_it_cannot_read(tmp_path) -> None:
    """In doubt (a locked or unreadable file), a failed init's clean-up keeps the file."""
    import sqlite3

    from biolake.core.half_made import remove_half_made

    meta = tmp_path / "data" / ".biolake"
    meta.mkdir(parents=True)
    db_file = meta / "biolake.db"
    writer = sqlite3.connect(db_file, isolation_level=None)
    writer.execute("PRAGMA locking_mode=EXCLUSIVE")
    writer.execute("BEGIN EXCLUSIVE")
    writer.execute("CREATE TABLE kept (x)")
    try:
        remove_half_made([meta], db_file)
        assert db_file.exists()
    finally:
        writer.execute("COMMIT")
        writer.close()
    assert sqlite3.connect(db_file).execute("SELECT count(*) FROM kept").fetchone() == (0,)
