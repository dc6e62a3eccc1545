"""Fixtures: every test gets a fresh instance; registry tests run on SQLite and PostgreSQL.

Set ``BIOLAKE_TEST_POSTGRES_URL`` (e.g. postgresql://postgres@127.0.0.1:5432/test) to run the
``instance`` tests on PostgreSQL too. The session creates its own database on that server and
drops it at the end; each test gets a fresh schema in it.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

POSTGRES_URL = os.environ.get("BIOLAKE_TEST_POSTGRES_URL")
BACKENDS = ["sqlite", "postgres"] if POSTGRES_URL else ["sqlite"]
_schemas = itertools.count()


@pytest.fixture(autouse=True)
def _isolated_home(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """Keep the default instance and the instance index out of the user's home."""
    import biolake.setup

    monkeypatch.setenv("BIOLAKE_HOME", str(tmp_path_factory.mktemp("home")))
    monkeypatch.delenv("BIOLAKE_INSTANCE", raising=False)
    monkeypatch.setenv("BIOLAKE_USER", "testuser")
    yield
    biolake.setup.close()


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str | None]:
    """A fresh PostgreSQL database for this test run (one per xdist worker)."""
    if not POSTGRES_URL:
        yield None
        return
    import psycopg

    name = f"biolake_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = POSTGRES_URL.rsplit("/", 1)[0]
    yield f"{base}/{name}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def postgres_url_for_test(database_url: str) -> str:
    """A URL whose connections live in a new, empty schema of the test database."""
    import psycopg

    schema = f"t{os.getpid()}_{next(_schemas)}"
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    return f"{database_url}?options=-csearch_path%3D{schema}"


@pytest.fixture(params=BACKENDS)
def instance(request: pytest.FixtureRequest, tmp_path: Path, postgres_database: str | None):
    """A fresh, connected instance in ``tmp_path`` on each backend."""
    import biolake as ln

    db = None
    if request.param == "postgres":
        assert postgres_database is not None
        db = postgres_url_for_test(postgres_database)
    return ln.setup.init(storage=tmp_path / "data", db=db, name=f"test-{request.param}")


@pytest.fixture
def backend(instance) -> str:
    return "sqlite" if instance.db.is_sqlite else "postgres"


CHURN = Path(__file__).with_name("churn.py")


@pytest.fixture
def churn() -> Iterator[Callable[..., None]]:
    """Start ``tests/churn.py`` in another process: ``churn("rewrite", path)`` returns once it
    has made its first change, and the process runs until the test ends."""
    processes: list[subprocess.Popen[str]] = []

    def start(mode: str, *args: str | os.PathLike[str]) -> None:
        command = [sys.executable, str(CHURN), mode, *map(os.fspath, args)]
        process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        processes.append(process)
        assert process.stdout is not None and process.stdout.readline() == "ready\n"

    yield start
    for process in processes:
        process.terminate()
        process.wait(timeout=30)
        assert process.stdout is not None
        process.stdout.close()
