"""Read-only instances: opened on request, for a folder this user cannot write, or through a
PostgreSQL role that may only read. Reads work; every write raises ReadOnlyInstance and changes
nothing, in the database or on disk."""

from __future__ import annotations

import ctypes
import os
import socket
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import POSTGRES_URL, postgres_url_for_test

import biolake as ln
from biolake.errors import InstanceError, ReadOnlyInstance

CSV = "a,b\n1,2\n3,4\n"


def seed(tmp_path: Path) -> None:
    """An artifact with a feature value, a project, and a run left ``started`` by a process of
    this host that is gone: a connect for writing would mark it crashed, a read-only one not."""
    source = tmp_path / "counts.csv"
    source.write_text(CSV)
    ln.Feature(name="read_count", dtype=int).save()
    artifact = ln.Artifact(str(source), key="rna/counts.csv").save()
    artifact.features.add_values({"read_count": 7})
    ln.Project(name="Screen").save()
    gone = subprocess.Popen([sys.executable, "-c", ""])
    gone.wait()
    run = ln.Run(transform=ln.Transform(key="gone.py").save())
    run.pid, run.host = gone.pid, socket.gethostname()
    run.save()


def counts() -> dict[str, int]:
    return {
        model.__name__: model.objects().filter(visibility__in=["default", "trash"]).count()
        for model in (ln.Artifact, ln.Project, ln.Run, ln.Transform, ln.User, ln.Feature)
    }


def files_under(root: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``root`` (SQLite's -shm and -wal aside) with its size and mtime."""
    return {
        str(path.relative_to(root)): (path.stat().st_size, path.stat().st_mtime_ns)
        for path in root.rglob("*")
        if path.is_file() and not path.name.endswith(("-shm", "-wal"))
    }


def writes(tmp_path: Path) -> dict[str, Callable[[], Any]]:
    """One of each kind of write, against the instance current when called."""
    new_file = tmp_path / "new.csv"
    new_file.write_text("x\n1\n")
    script = tmp_path / "pipeline.py"
    script.write_text("print('hi')\n")

    def edit() -> None:
        project = ln.Project.get(name="Screen")
        project.name = "Renamed"
        project.save()

    return {
        "save": lambda: ln.Project(name="New").save(),
        "edit": edit,
        "ln.save": lambda: ln.save([ln.Project(name="A"), ln.Project(name="B")]),
        "artifact": lambda: ln.Artifact(str(new_file), key="new.csv").save(),
        "feature value": lambda: ln.Artifact.get(key="rna/counts.csv").features.add_values(
            {"read_count": 8}
        ),
        "trash": lambda: ln.Artifact.get(key="rna/counts.csv").delete(),
        "delete": lambda: ln.Project.get(name="Screen").delete(permanent=True),
        "queryset delete": lambda: ln.Project.filter().delete(),
        "track": lambda: ln.track(path=script),
    }


def check_reads_and_refusals(root: Path, tmp_path: Path, how_to_write: str) -> None:
    """On the current, read-only instance: reads work, every write is refused and leaves the
    database and the folder as they were."""
    before, on_disk = counts(), files_under(root)
    assert ln.Run.get(transform__key="gone.py").status == "started"  # connecting wrote nothing
    artifact = ln.Artifact.get(key="rna/counts.csv")
    assert artifact.cache().read_text() == CSV
    assert artifact.cache().is_relative_to(root)  # the stored object itself: nothing copied
    assert artifact.load().to_dict(orient="list") == {"a": [1, 3], "b": [2, 4]}
    assert ln.Artifact.filter(read_count=7).count() == 1
    for name, write in writes(tmp_path).items():
        with pytest.raises(ReadOnlyInstance) as info:
            write()
        message = str(info.value)
        assert f"the instance {ln.settings.instance.name!r} ({root})" in message, name
        assert "read-only" in message and how_to_write in message, name
        assert isinstance(info.value, PermissionError)
        assert ln.Project.filter(name="Screen").count() == 1, name  # reads still work
    handle = os.environ["BIOLAKE_USER"]
    os.environ["BIOLAKE_USER"] = "newcomer"  # no row, and none can be created
    try:
        assert (ln.settings.user.handle, ln.settings.user.id) == ("newcomer", None)
    finally:
        os.environ["BIOLAKE_USER"] = handle
    assert ln.settings.user.handle == handle and ln.settings.user.id is not None
    assert counts() == before
    assert files_under(root) == on_disk
    assert ln.Artifact.get(key="rna/counts.csv").visibility == "default"


def test_read_only_true_reads_and_refuses_every_write(instance: Any, tmp_path: Path) -> None:
    seed(tmp_path)
    ln.setup.close()
    opened = ln.setup.connect(instance.root, read_only=True)
    assert opened.read_only and repr(opened).endswith("read_only=True)")
    check_reads_and_refusals(instance.root, tmp_path, "connect without read_only=True")
    # The writable instance is another connection: a plain connect writes again.
    assert not ln.setup.connect(instance.root).read_only
    assert ln.Project(name="After").save().id is not None
    assert ln.setup.connect(instance.root, read_only=True) is opened


def test_a_refused_edit_leaves_reads_working(instance: Any) -> None:
    ln.Project(name="Screen").save()
    ln.setup.close()
    ln.setup.connect(instance.root, read_only=True)
    project = ln.Project.get(name="Screen")
    project.name = "Renamed"  # changed in memory, never written
    with pytest.raises(ReadOnlyInstance):
        project.save()
    assert [p.name for p in ln.Project.filter()] == ["Screen"]
    assert ln.Project.filter(name="Renamed").count() == 0


# --- a folder this user cannot write ----------------------------------------------------------


def _without_root_bypass() -> None:
    """In the child: drop the capabilities that let root ignore file permissions, so that a
    read-only folder is read-only for the test process too (PR_CAPBSET_DROP, then exec)."""
    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
        if libc.prctl(24, capability, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def run_unprivileged(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter for which file permissions hold (also as root)."""
    preexec = _without_root_bypass if os.geteuid() == 0 else None
    try:
        return subprocess.run(
            [sys.executable, "-c", textwrap.dedent(code)],
            capture_output=True,
            text=True,
            env={**os.environ, **env},
            preexec_fn=preexec,
            timeout=120,
        )
    except subprocess.SubprocessError as exc:
        pytest.skip(f"cannot drop root's file permission bypass here: {exc}")


@pytest.fixture
def read_only_folder(tmp_path: Path) -> Iterator[Path]:
    """A SQLite instance with data, whose folder nobody may write (as a shared archive)."""
    root = tmp_path / "archive"
    ln.setup.init(storage=root)
    seed(tmp_path)
    ln.setup.close()
    modes = {path: path.stat().st_mode for path in [root, *root.rglob("*")]}
    for path in modes:
        path.chmod(0o555 if path.is_dir() else 0o444)
    yield root
    for path, mode in sorted(modes.items(), key=lambda item: len(item[0].parts)):
        path.chmod(mode | 0o200)


READ_A_READ_ONLY_FOLDER = """
    import os, tempfile
    from pathlib import Path
    import biolake as ln
    from core.test_read_only import check_reads_and_refusals

    root = Path(os.environ["ARCHIVE"])
    assert ln.setup.connect(root).read_only
    check_reads_and_refusals(root, Path(tempfile.mkdtemp()), "ask its owner for write access")
    print("ok")
"""


def test_a_folder_this_user_cannot_write_opens_read_only(read_only_folder: Path) -> None:
    on_disk = sorted(p.name for p in (read_only_folder / ".biolake").iterdir())
    tests = str(Path(__file__).parent.parent)
    result = run_unprivileged(
        READ_A_READ_ONLY_FOLDER, ARCHIVE=str(read_only_folder), PYTHONPATH=tests
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
    assert "opened the instance 'archive' read-only because" in result.stderr
    # No -wal or -shm files: the database was opened immutable
    assert sorted(p.name for p in (read_only_folder / ".biolake").iterdir()) == on_disk


def test_write_access_demanded_on_a_read_only_folder(read_only_folder: Path) -> None:
    result = run_unprivileged(
        f"""
        import biolake as ln
        from biolake.errors import InstanceError, ReadOnlyInstance
        for call in (
            lambda: ln.setup.connect({str(read_only_folder)!r}, read_only=False),
            lambda: ln.setup.init(storage={str(read_only_folder)!r}),
            lambda: ln.setup.init(storage={str(read_only_folder / "inside")!r}),
        ):
            try:
                call()
            except InstanceError as exc:
                print(type(exc).__name__, "|", exc)
        try:
            ln.Project.filter().count()
        except InstanceError as exc:
            print("then", "|", exc)
        """
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 4, result.stdout
    assert lines[0].startswith("ReadOnlyInstance | Cannot open the instance at")
    assert "not writable for this user" in lines[0]
    assert lines[1].startswith("ReadOnlyInstance | Cannot open the instance at")
    assert lines[2].startswith("InstanceError | Cannot create an instance at")
    assert "the folder is not writable" in lines[2] and "read_only=True" in lines[2]
    assert lines[3].startswith("then | No instance is connected: ln.setup.init(")
    assert not (read_only_folder / "inside").exists()


def test_a_write_ahead_log_no_reader_can_see_is_refused(read_only_folder: Path) -> None:
    meta = read_only_folder / ".biolake"
    meta.chmod(0o755)
    (meta / "biolake.db-wal").write_bytes(b"")  # left by a writer that was killed
    meta.chmod(0o555)
    result = run_unprivileged(
        f"""
        import biolake as ln
        try:
            ln.setup.connect({str(read_only_folder)!r})
        except ln.errors.InstanceError as exc:
            print(exc)
        """
    )
    assert result.returncode == 0, result.stderr
    assert "biolake.db-wal holds changes" in result.stdout
    assert "open the instance once" in result.stdout


def test_a_database_refusing_a_write_raises_read_only_never_a_driver_error(
    tmp_path: Path,
) -> None:
    # The file turns read-only while the instance is open for writing: SQLite's own refusal
    # reaches the caller as ReadOnlyInstance, not as sqlite3.OperationalError.
    result = run_unprivileged(
        f"""
        import os
        import biolake as ln
        instance = ln.setup.init(storage={str(tmp_path / "d")!r})
        ln.Project(name="P").save()
        ln.setup.close()
        opened = ln.setup.connect({str(tmp_path / "d")!r})
        os.chmod({str(tmp_path / "d" / ".biolake" / "biolake.db")!r}, 0o444)
        opened.db.engine.dispose()  # the next connection opens the file as it is now
        try:
            ln.Project(name="Q").save()
        except ln.errors.ReadOnlyInstance as exc:
            print(exc)
        print(ln.Project.filter().count())
        """
    )
    assert result.returncode == 0, result.stderr
    message, count = result.stdout.strip().splitlines()
    assert message.startswith("Cannot write to the instance 'd' (")
    assert "the database refused the write (attempt to write a readonly database)" in message
    assert count == "1"


# --- PostgreSQL roles -------------------------------------------------------------------------


@pytest.fixture
def pg_instance(tmp_path: Path, postgres_database: str | None) -> Iterator[tuple[Path, str]]:
    """A PostgreSQL instance whose URL names no user (each person connects as their own role,
    PGUSER or the login), seeded as the server's superuser; yields its root and schema."""
    if not POSTGRES_URL:
        pytest.skip("set BIOLAKE_TEST_POSTGRES_URL to run on PostgreSQL")
    assert postgres_database is not None
    url = postgres_url_for_test(postgres_database)
    owner, rest = url.split("://", 1)[1].split("@", 1)
    root = tmp_path / "lab"
    os.environ["PGUSER"] = owner
    try:
        ln.setup.init(storage=root, db=f"postgresql://{rest}")
        seed(tmp_path)
        ln.setup.close()
        yield root, url.rsplit("%3D", 1)[1]
    finally:
        os.environ.pop("PGUSER", None)


@pytest.fixture
def role(pg_instance: tuple[Path, str], postgres_database: str) -> Iterator[Callable[..., str]]:
    """Make a login role with the given grants on the instance's schema; dropped afterwards."""
    import psycopg

    made: list[str] = []

    def make(*grants: str) -> str:
        name = f"r_{uuid.uuid4().hex[:10]}"
        schema = pg_instance[1]
        with psycopg.connect(postgres_database, autocommit=True) as conn:
            conn.execute(f'CREATE ROLE "{name}" LOGIN')
            conn.execute(f'GRANT USAGE ON SCHEMA "{schema}" TO "{name}"')
            for grant in grants:
                conn.execute(grant.format(schema=f'"{schema}"', role=f'"{name}"'))
        made.append(name)
        return name

    yield make
    ln.setup.close()
    with psycopg.connect(postgres_database, autocommit=True) as conn:
        for name in made:
            conn.execute(f'DROP OWNED BY "{name}"')
            conn.execute(f'DROP ROLE "{name}"')


READER_GRANTS = ("GRANT SELECT ON ALL TABLES IN SCHEMA {schema} TO {role}",)
WRITER_GRANTS = (
    "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {schema} TO {role}",
    "GRANT USAGE ON ALL SEQUENCES IN SCHEMA {schema} TO {role}",
)


def test_a_select_only_role_reads_and_refuses_every_write(
    pg_instance: tuple[Path, str], role: Callable[..., str], tmp_path: Path
) -> None:
    root, _schema = pg_instance
    reader = role(*READER_GRANTS)
    os.environ["PGUSER"] = reader
    opened = ln.setup.connect(root)
    assert opened.read_only
    check_reads_and_refusals(root, tmp_path, f"the database role {reader!r} may only read")
    with pytest.raises(ReadOnlyInstance, match=r"Cannot open the instance at .* for writing"):
        ln.setup.connect(root, read_only=False)


def test_a_role_refused_a_write_raises_read_only_never_a_driver_error(
    pg_instance: tuple[Path, str], role: Callable[..., str], postgres_database: str
) -> None:
    import psycopg

    root, schema = pg_instance
    writer = role(*WRITER_GRANTS)
    os.environ["PGUSER"] = writer
    assert not ln.setup.connect(root).read_only
    assert ln.Project(name="Mine").save().id is not None
    with psycopg.connect(postgres_database, autocommit=True) as conn:
        conn.execute(f'REVOKE INSERT ON "{schema}".projects FROM "{writer}"')
    with pytest.raises(ReadOnlyInstance) as info:
        ln.Project(name="Refused").save()
    assert "the database refused the write (permission denied for table projects)" in str(
        info.value
    )
    assert ln.Project.filter(name__in=["Mine", "Refused"]).count() == 1


def test_a_role_that_may_not_read_gets_a_clear_error(
    pg_instance: tuple[Path, str], role: Callable[..., str]
) -> None:
    root, _schema = pg_instance
    os.environ["PGUSER"] = role()  # USAGE on the schema, no SELECT
    with pytest.raises(InstanceError, match=r"may not read it .*permission denied.*GRANT|Grant"):
        ln.setup.connect(root)
    with pytest.raises(InstanceError, match=r"No instance is connected"):
        ln.Project.filter().count()
