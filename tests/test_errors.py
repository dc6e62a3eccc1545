"""The exception tree and the messages of database refusals."""

from __future__ import annotations

import inspect
from typing import Any

import pytest

import biolake as ln
from biolake import errors
from biolake.errors import BiolakeError, did_you_mean, join_capped

BUILTIN_PARENT = {
    "ObjectDoesNotExist": LookupError,
    "MultipleResultsFound": LookupError,
    "ValidationError": ValueError,
    "InvalidArgument": ValueError,
    "InstanceError": RuntimeError,
    "InstanceNotFound": LookupError,
    "ReadOnlyInstance": PermissionError,
    "IntegrityError": RuntimeError,
    "TrackingError": RuntimeError,
    "StorageError": OSError,
    "CorruptObjectError": OSError,
}


def error_classes() -> dict[str, type[BaseException]]:
    return {
        name: value
        for name, value in vars(errors).items()
        if inspect.isclass(value) and issubclass(value, BaseException)
    }


def test_ln_errors_is_the_module() -> None:
    assert ln.errors is errors


@pytest.mark.parametrize(("name", "builtin"), sorted(BUILTIN_PARENT.items()))
def test_every_error_is_a_biolake_error_and_its_builtin(name: str, builtin: type) -> None:
    cls = getattr(errors, name)
    assert issubclass(cls, BiolakeError)
    assert issubclass(cls, builtin)


def test_the_docstring_draws_every_class() -> None:
    assert errors.__doc__ is not None
    for name in error_classes():
        assert name in errors.__doc__, name
    assert set(error_classes()) == {"BiolakeError", *BUILTIN_PARENT}


def test_instance_not_found_is_an_instance_error() -> None:
    assert issubclass(errors.InstanceNotFound, errors.InstanceError)


def test_did_you_mean() -> None:
    assert did_you_mean("hndle", ["handle", "name"]) == " Did you mean 'handle'?"
    assert did_you_mean("xyz", ["handle", "name"]) == ""
    assert did_you_mean("nam", ["name", "names", "nme", "other"]).count("'") == 6  # at most 3


def test_join_capped() -> None:
    assert join_capped(["a", "b"]) == "a, b"
    assert join_capped(["a", "b", "c"], limit=3) == "a, b, c"
    assert join_capped(["a", "b", "c", "d"], limit=2) == "a, b, … and 2 more"


def test_registry_errors_are_caught_by_the_tree(instance: Any) -> None:
    with pytest.raises(ln.errors.ObjectDoesNotExist):
        ln.User.get(handle="nobody")
    with pytest.raises(LookupError):
        ln.Project.get(name="nobody")
    with pytest.raises(BiolakeError):
        ln.Transform.filter(nope=1)
    try:
        ln.Run.get("0000")
    except ln.Run.DoesNotExist as exc:
        assert "uid='0000'" in str(exc)
    else:  # pragma: no cover
        raise AssertionError("no error")


def test_unique_violation_message(instance: Any) -> None:
    ln.User(handle="alice").save()
    with pytest.raises(errors.IntegrityError) as info:
        ln.User(handle="alice").save()
    message = str(info.value)
    assert "handle" in message
    assert "exists already" in message
    assert "sqlalche.me" not in message  # no SQLAlchemy boilerplate
    assert "INSERT INTO" not in message
    assert info.value.__cause__ is not None  # the driver's error stays attached


def test_missing_required_value_message(instance: Any) -> None:
    with pytest.raises(errors.IntegrityError, match="required field"):
        ln.Run(transform=None).save()  # type: ignore[arg-type]
    assert ln.Run.filter().count() == 0


def test_foreign_key_message(instance: Any) -> None:
    transform = ln.Transform(key="a.py").save()
    ln.Run(transform=transform).save()
    with pytest.raises(errors.IntegrityError, match="still referenced"):
        transform.delete(permanent=True)
