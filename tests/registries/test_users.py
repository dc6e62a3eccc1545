"""Users: the current user comes from BIOLAKE_USER or the OS login and is created on first use."""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import Any

import pytest

import biolake as ln
from biolake.errors import ValidationError
from biolake.registries.user import current_user_id


def test_current_user_from_biolake_user(instance: Any) -> None:
    assert ln.User.filter(handle="testuser").count() == 0  # not before first use
    user = ln.settings.user
    assert user.handle == "testuser"
    assert ln.User.get(handle="testuser").id == user.id
    assert ln.User.filter().count() == 1


def test_current_user_created_by_the_first_save(instance: Any) -> None:
    project = ln.Project(name="P").save()
    assert ln.User.get(handle="testuser").id == project.created_by_id


def test_os_login_when_biolake_user_is_unset(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("BIOLAKE_USER")
    monkeypatch.setattr(getpass, "getuser", lambda: "oslogin")
    ln.setup.init(storage=tmp_path / "data")
    assert ln.settings.user.handle == "oslogin"
    assert ln.Project(name="P").save().created_by.handle == "oslogin"


def test_blank_biolake_user_is_an_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("BIOLAKE_USER", "   ")
    ln.setup.init(storage=tmp_path / "data")
    with pytest.raises(ValidationError, match="BIOLAKE_USER"):
        ln.Project(name="P").save()
    assert ln.Project.filter().count() == 0


def test_users_per_process_and_instance(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    root = tmp_path / "data"
    ln.setup.init(storage=root)
    ln.Project(name="by-testuser").save()
    ln.setup.close()
    monkeypatch.setenv("BIOLAKE_USER", "alice")
    ln.setup.connect(root)
    ln.Project(name="by-alice").save()
    assert ln.Project.get(name="by-alice").created_by.handle == "alice"
    assert ln.Project.get(name="by-testuser").created_by.handle == "testuser"
    assert sorted(u.handle for u in ln.User.filter()) == ["alice", "testuser"]
    assert ln.Project.filter(created_by__handle="alice").one().name == "by-alice"


def test_existing_user_is_reused(instance: Any) -> None:
    existing = ln.User(handle="testuser", name="Test User").save()
    assert ln.Project(name="P").save().created_by_id == existing.id
    assert ln.settings.user.name == "Test User"
    assert ln.User.filter().count() == 1


def test_user_get_and_fields(instance: Any) -> None:
    ln.User(handle="researcher123", name="Ada").save()
    user = ln.User.get(handle="researcher123")
    assert user.name == "Ada"
    assert len(user.uid) == 8
    with pytest.raises(ln.User.DoesNotExist, match="handle='nobody'"):
        ln.User.get(handle="nobody")


def test_first_save_failing_does_not_lose_the_user(instance: Any) -> None:
    # The first save of a process creates the current user inside its transaction; when that
    # transaction rolls back, the next save must create the user again, not point at nothing.
    with pytest.raises(ln.errors.IntegrityError):
        ln.save([ln.Project(name="twin"), ln.Project(name="twin")])
    assert ln.User.filter().count() == 0
    project = ln.Project(name="ok").save()
    assert project.created_by.handle == "testuser"


def test_first_artifact_save_failing_leaves_no_user_or_storage_row(
    instance: Any, tmp_path: Any
) -> None:
    # The user and the storage root are created inside the save's transaction: a save that
    # fails (here on its description) leaves neither behind.
    source = tmp_path / "x.txt"
    source.write_text("x")
    with pytest.raises(ln.errors.ValidationError, match="NUL"):
        ln.Artifact(source, key="x.txt", description="bad\x00").save()
    assert (ln.User.filter().count(), ln.Storage.filter().count()) == (0, 0)
    artifact = ln.Artifact(source, key="x.txt").save()
    assert (artifact.created_by.handle, artifact.storage.root) == ("testuser", str(instance.root))


def test_user_created_by_another_process_at_the_same_moment(
    instance: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Another process inserts the same user between our lookup and our insert: the insert fails
    # on the unique handle inside a savepoint, and the save goes on with the other row.
    from sqlalchemy import create_engine, text

    other = create_engine(instance.db.engine.url)
    end_read = instance.db.end_read

    def insert_elsewhere() -> None:
        monkeypatch.setattr(instance.db, "end_read", end_read)
        end_read()
        with other.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO users (uid, handle, visibility, created_at) "
                    "VALUES ('racer001', 'testuser', 'default', CURRENT_TIMESTAMP)"
                )
            )

    monkeypatch.setattr(instance.db, "end_read", insert_elsewhere)
    if instance.db.is_sqlite:
        # SQLite writers queue on a lock: no race inside a write
        user_id = current_user_id(instance)
        project = ln.Project(name="P").save()
    else:
        project = ln.Project(name="P").save()  # the user is created inside this transaction
        user_id = project.created_by_id
    other.dispose()
    assert ln.User.get(handle="testuser").uid == "racer001"
    assert project.created_by_id == user_id == ln.User.get(handle="testuser").id
    assert ln.User.filter().count() == 1
