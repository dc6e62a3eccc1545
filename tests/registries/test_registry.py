"""The registry base: save, trash/restore/permanent delete, get, creator, timestamps, ln.save."""

from __future__ import annotations

import datetime as dt
import inspect
from typing import Any

import pytest

import biolake as ln
from biolake.errors import IntegrityError, InvalidArgument, ObjectDoesNotExist


def test_save_returns_the_object_with_identity(instance: Any) -> None:
    project = ln.Project(name="Cancer Drug Screen 2025")
    assert project.id is None
    assert project.save() is project
    assert project.id is not None
    assert len(project.uid) == 12
    assert ln.Project.get(name="Cancer Drug Screen 2025").uid == project.uid


def test_save_again_updates(instance: Any) -> None:
    project = ln.Project(name="P").save()
    project.description = "now described"
    project.save()
    assert ln.Project.filter(name="P").count() == 1
    assert ln.Project.get(project.uid).description == "now described"


def test_created_at_is_aware_utc(instance: Any) -> None:
    before = dt.datetime.now(dt.UTC)
    project = ln.Project(name="P").save()
    after = dt.datetime.now(dt.UTC)
    assert project.created_at.tzinfo is not None
    assert project.created_at.utcoffset() == dt.timedelta(0)
    assert before <= project.created_at <= after
    ln.setup.close()
    ln.setup.connect(instance.root)
    reloaded = ln.Project.get(name="P")
    assert reloaded.created_at.utcoffset() == dt.timedelta(0)
    assert abs(reloaded.created_at - project.created_at) < dt.timedelta(milliseconds=1)


def test_created_by_is_the_current_user(instance: Any) -> None:
    transform = ln.Transform(key="a.py").save()
    run = ln.Run(transform=transform).save()
    for row in (transform, run, ln.Project(name="P").save()):
        assert row.created_by.handle == "testuser"
        assert row.created_by_id == ln.settings.user.id


def test_trash_restore_and_permanent_delete(instance: Any) -> None:
    project = ln.Project(name="P").save()
    project.delete()
    assert ln.Project.filter(name="P").count() == 0
    with pytest.raises(ln.Project.DoesNotExist):
        ln.Project.get(name="P")
    assert ln.Project.filter(visibility="trash").one().uid == project.uid
    assert project.restore() is project
    assert ln.Project.get(name="P").visibility == "default"
    project.delete(permanent=True)
    assert ln.Project.filter(name="P", visibility__in=["default", "trash"]).count() == 0


def test_permanent_delete_of_a_referenced_row_is_refused(instance: Any) -> None:
    transform = ln.Transform(key="a.py").save()
    ln.Run(transform=transform).save()
    with pytest.raises(IntegrityError, match=r"still referenced"):
        transform.delete(permanent=True)
    assert ln.Transform.filter(key="a.py").count() == 1


def test_does_not_exist_tree(instance: Any) -> None:
    for model in (ln.User, ln.Project, ln.Transform, ln.Run):
        assert issubclass(model.DoesNotExist, ObjectDoesNotExist)
        assert issubclass(model.DoesNotExist, LookupError)
        assert issubclass(model.MultipleResultsFound, ln.errors.MultipleResultsFound)
    assert ln.User.DoesNotExist is not ln.Project.DoesNotExist
    assert ln.User.DoesNotExist.__qualname__ == "User.DoesNotExist"
    assert ln.User.DoesNotExist.__module__ == "biolake.registries.user"
    with pytest.raises(ln.Project.DoesNotExist, match=r"Project.*name='nope'"):
        ln.Project.get(name="nope")


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("User", ["handle", "name"]),
        ("Project", ["name", "description"]),
        ("Transform", ["key", "kind", "description", "source_code", "source_hash", "version"]),
        ("Run", ["transform", "params", "initiated_by_run"]),
    ],
)
def test_constructors_have_real_signatures(model: str, expected: list[str]) -> None:
    params = inspect.signature(getattr(ln, model).__init__).parameters
    assert list(params)[1:] == expected
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in list(params.values())[1:])


def test_wrong_constructor_calls_name_the_registry_and_show_the_call() -> None:
    """Python's own message only says "__init__() ..."; ours names the registry."""
    with pytest.raises(TypeError) as info:
        ln.User(hande="alice")  # type: ignore[call-arg]
    assert str(info.value) == (
        "ln.User(): unexpected argument 'hande'. Did you mean 'handle'? "
        "Call it as ln.User(*, handle, name=None)."
    )
    with pytest.raises(TypeError, match=r"^ln.Record\(\): too many positional arguments\. "):
        ln.Record("sample_1")  # type: ignore[misc]
    with pytest.raises(TypeError) as info:
        ln.Record()  # type: ignore[call-arg]
    assert str(info.value) == (
        "ln.Record(): missing a required argument: 'name'. "
        "Call it as ln.Record(*, name, type=None, is_type=False, description=None)."
    )
    with pytest.raises(TypeError, match=r"Call it as ln.Artifact\(path, \*, key=None"):
        ln.Artifact()  # type: ignore[call-arg]
    with pytest.raises(TypeError, match=r"ln.Feature\(\): missing a required argument: 'dtype'"):
        ln.Feature(name="x")  # type: ignore[call-arg]


def test_a_type_error_from_inside_a_constructor_is_left_alone(monkeypatch: Any) -> None:
    from biolake.registries import record

    def broken(name: str, type_: Any) -> None:
        raise TypeError("inner problem")

    monkeypatch.setattr(record, "_check_type", broken)
    with pytest.raises(TypeError, match=r"^inner problem$"):
        ln.Record(name="x")


def test_repr_is_readable(instance: Any) -> None:
    user = ln.User(handle="alice", name="Alice Smith")
    assert repr(user) == "User(handle='alice', name='Alice Smith')"
    user.save()
    text = repr(user)
    assert text.startswith(f"User(uid='{user.uid}', handle='alice', name='Alice Smith'")
    assert "created_at='" in text
    assert "visibility" not in text
    run = ln.Run(transform=ln.Transform(key="a.py").save(), params={"x": "y" * 100}).save()
    assert "params={'x': 'yyy" in repr(run) and " …}" in repr(run)  # cut, still bracketed
    assert len(repr(run)) < 400
    assert repr(ln.User(handle="h" * 80)) == "User(handle=" + repr("h" * 55) + "…)"


# --- ln.save ----------------------------------------------------------------------------------


def test_ln_save_saves_many(instance: Any) -> None:
    users = ln.save([ln.User(handle=f"u{i}") for i in range(20)])
    assert all(u.id is not None for u in users)
    assert ln.User.filter(handle__startswith="u").count() == 20
    assert ln.save([]) == []


def test_ln_save_mixed_registries(instance: Any) -> None:
    transform = ln.Transform(key="a.py")
    run = ln.Run(transform=transform)
    ln.save([ln.Project(name="P"), transform, run])
    assert ln.Run.get(run.uid).transform.key == "a.py"
    assert run.created_by.handle == "testuser"


def test_ln_save_is_all_or_nothing(instance: Any) -> None:
    ln.User(handle="taken").save()
    batch = [ln.User(handle="new1"), ln.User(handle="taken"), ln.User(handle="new2")]
    with pytest.raises(IntegrityError) as info:
        ln.save(batch)
    message = str(info.value)
    assert "handle" in message
    assert ".get(" in message
    assert ln.User.filter(handle__in=["new1", "new2"]).count() == 0
    assert ln.User.filter(handle="taken").count() == 1
    # the instance stays usable, and the good objects can be saved after fixing the batch
    ln.save([batch[0], batch[2]])
    assert ln.User.filter(handle__in=["new1", "new2"]).count() == 2


def test_ln_save_duplicates_within_the_batch(instance: Any) -> None:
    with pytest.raises(IntegrityError):
        ln.save([ln.User(handle="twin"), ln.User(handle="twin"), ln.Project(name="P")])
    assert ln.User.filter(handle="twin").count() == 0
    assert ln.Project.filter(name="P").count() == 0


def test_ln_save_rejects_non_registry_objects(instance: Any) -> None:
    with pytest.raises(InvalidArgument, match="registry objects"):
        ln.save([ln.User(handle="a"), "b"])  # type: ignore[list-item]
    assert ln.User.filter(handle="a").count() == 0


def test_duplicate_save_raises_biolake_integrity_error(instance: Any) -> None:
    ln.Project(name="P").save()
    with pytest.raises(IntegrityError, match=r"refused the write.*name.*\.get\(") as info:
        ln.Project(name="P").save()
    assert isinstance(info.value, ln.errors.BiolakeError)
    assert ln.Project.filter(name="P").count() == 1
    ln.Project(name="Q").save()  # the session is usable after the failed write
    assert ln.Project.filter().count() == 2


def test_objects_go_to_the_instance_they_were_saved_in(instance: Any, tmp_path: Any) -> None:
    first = ln.Project(name="first").save()
    ln.setup.init(storage=tmp_path / "second")
    second = ln.Project(name="second").save()
    assert [p.name for p in ln.Project.filter()] == ["second"]
    first.description = "edited while another instance is current"
    first.save()
    ln.setup.connect(instance.root)
    assert ln.Project.get(name="first").description.startswith("edited")
    assert ln.Project.filter(name="second").count() == 0
    assert second.id is not None


def test_every_registry_describes_itself(instance: Any) -> None:
    transform = ln.Transform(key="preprocessing.py").save()
    run = ln.Run(transform=transform, params={"learning_rate": 0.01}).save()
    text = run.describe(return_str=True)
    assert text is not None
    import re

    assert re.search(r"transform +preprocessing\.py \(version 1, script\)", text)
    assert re.search(r"created_by +testuser", text)
    assert "learning_rate" in text
    assert "preprocessing.py" in (transform.describe(return_str=True) or "")
    sample = ln.Record(name="Sample", is_type=True).save()
    assert "is_type" in (sample.describe(return_str=True) or "")
    assert run.describe() is None  # printed


def test_text_longer_than_its_column_or_not_unicode_is_refused_on_both_backends(
    instance: Any, tmp_path: Any
) -> None:
    """PostgreSQL refused these with a raw driver error; SQLite stored them. Now both say why,
    before anything is written."""
    from biolake.errors import ValidationError

    cases = [
        (lambda: ln.Record(name="r" * 256), r"Record\.name is at most 255 characters, got 256"),
        (lambda: ln.Project(name="p" * 300), r"Project\.name is at most 255 characters"),
        (lambda: ln.User(handle="h" * 65), r"User\.handle is at most 64 characters"),
        (lambda: ln.Record(name="bad\udc80"), r"Record\.name must not contain a lone surrogate"),
        (
            lambda: ln.Record(name="ok", description="\ud800"),
            r"Record\.description must not contain a lone surrogate",
        ),
    ]
    for make, message in cases:
        with pytest.raises(ValidationError, match=message):
            make().save()
    run = ln.Run(transform=ln.Transform(key="t.py").save())
    run.params = {"k": ["fine", {"nested\udfff": 1}]}
    with pytest.raises(ValidationError, match=r"Run\.params must not contain a lone surrogate"):
        run.save()
    assert ln.Record(name="r" * 255).save().name == "r" * 255  # at the limit: fine
    long_suffix = tmp_path / ("x." + "s" * 64)
    long_suffix.write_text("x")
    with pytest.raises(ValidationError, match=r"Artifact\.suffix is at most 64 characters"):
        ln.Artifact(long_suffix, key=None).save()
    assert (ln.Project.filter().count(), ln.Artifact.filter().count()) == (0, 0)
    assert ln.User.filter(handle="h" * 65).count() == 0


def test_text_with_nul_is_refused_on_save_and_in_queries(instance: Any) -> None:
    """PostgreSQL cannot store NUL; SQLite could, but nothing could find the row by it."""
    from biolake.errors import ValidationError

    with pytest.raises(ValidationError, match=r"Record.name must not contain NUL"):
        ln.Record(name="a\x00b").save()
    with pytest.raises(ValidationError, match=r"Record.description must not contain NUL"):
        ln.Record(name="ok", description="x\x00").save()
    project = ln.Project(name="p1").save()
    project.name = "p\x002"
    with pytest.raises(ValidationError, match=r"Project.name must not contain NUL"):
        project.save()
    with instance.db.engine.connect() as conn:  # the bad name never reached the database
        assert conn.exec_driver_sql("SELECT name FROM projects").scalar() == "p1"
    project.name = "p1"
    with pytest.raises(ValidationError, match=r"Record.name must not contain NUL"):
        ln.save([ln.Record(name="fine"), ln.Record(name="bad\x00")])
    assert ln.Record.filter().count() == 0  # all or nothing
    for lookups in [{"name": "a\x00b"}, {"name__in": ["x", "\x00"]}, {"type__name": "\x00"}]:
        with pytest.raises(InvalidArgument, match=r"must not contain NUL characters"):
            ln.Record.filter(**lookups).count()
    with pytest.raises(InvalidArgument, match=r"must not contain NUL characters"):
        ln.Record.get(name="a\x00b")
    with pytest.raises(InvalidArgument, match=r"uid='ab\\x00': text to compare must not"):
        ln.Record.get("ab\x00")


def test_nul_in_an_unsaved_change_or_json_is_refused_and_the_session_recovers(
    instance: Any,
) -> None:
    """A changed row is flushed when the next write starts: its NUL is refused there, and the
    session keeps working (on PostgreSQL a failed flush used to block every later call)."""
    from biolake.errors import ValidationError

    record = ln.Record(name="r1").save()
    record.description = "q\x00"  # changed, not saved
    with pytest.raises(ValidationError, match=r"Record.description must not contain NUL"):
        ln.Record(name="r2").save()
    assert ln.Record.get(name="r1").description is None  # rolled back
    assert ln.Record(name="r3").save().id is not None  # the session works
    transform = ln.Transform(key="t.py").save()
    with pytest.raises(ValidationError, match=r"Run.params must not contain NUL"):
        ln.Run(transform=transform, params={"a": ["ok", {"b": "x\x00"}]}).save()
    with pytest.raises(ValidationError, match=r"Run.params must not contain NUL"):
        ln.Run(transform=transform, params={"k\x00": 1}).save()
    assert ln.Run.filter().count() == 0
