"""``@ln.tracked()``: each call of a function is a run of its own transform.

The function's transform is keyed ``"<file name>:<qualified name>"`` (kind ``function``, its
docstring the description). A call's run nests under the current run when there is one, is
current while the call lasts (its loads are inputs, its saves outputs), and ends ``completed``
(also on ``sys.exit(0)``), ``aborted`` on Ctrl-C or a cancelled task, or ``errored`` with the
traceback when the function raises; the exception propagates unchanged.

Arguments become the run's params by one rule (:func:`param_value`): JSON values as they are,
registry objects by uid, paths as text, anything else as ``"<TypeName>"``. ``self`` and ``cls``
are left out. Generator functions are refused: their body runs after the call returns.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import math
import numbers
import os
import traceback
from collections.abc import Callable
from typing import Any, TypeVar

from biolake.core.connect import current_instance
from biolake.core.log import logger
from biolake.errors import InvalidArgument
from biolake.tracking import context
from biolake.tracking.runs import Models, end_run, new_run
from biolake.tracking.source import function_source
from biolake.tracking.transforms import upsert_transform

F = TypeVar("F", bound=Callable[..., Any])


def tracked(models: Models) -> Callable[[F], F]:
    """The decorator: ``@ln.tracked()`` above a function or method, sync or async."""

    def decorate(function: F) -> F:
        if inspect.isgeneratorfunction(function) or inspect.isasyncgenfunction(function):
            raise InvalidArgument(
                f"@ln.tracked() cannot track the generator {function.__qualname__}: its body "
                "runs after the call returns. Track a function that consumes it instead."
            )
        call = _Calls(models, function)
        if inspect.iscoroutinefunction(function):

            @functools.wraps(function)
            async def run_async(*args: Any, **kwargs: Any) -> Any:
                started = call.start(args, kwargs)
                try:
                    result = await function(*args, **kwargs)
                except BaseException as exc:
                    call.end(started, exc)
                    raise
                call.end(started)
                return result

            return run_async  # type: ignore[return-value]

        @functools.wraps(function)
        def run_sync(*args: Any, **kwargs: Any) -> Any:
            started = call.start(args, kwargs)
            try:
                result = function(*args, **kwargs)
            except BaseException as exc:
                call.end(started, exc)
                raise
            call.end(started)
            return result

        return run_sync  # type: ignore[return-value]

    return decorate


class _Calls:
    """The runs of one tracked function; its transform is looked up once per instance."""

    def __init__(self, models: Models, function: Callable[..., Any]) -> None:
        self.models = models
        self.signature = inspect.signature(function)
        self.source = function_source(function)
        self.transforms: dict[str, Any] = {}  # by instance root

    def start(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...] | None:
        """(run, context token, instance) of a new call, or None when it runs untracked."""
        try:
            instance = current_instance()
            transform = self.transforms.get(str(instance.root))
            if transform is None:
                transform = upsert_transform(self.models.transform, instance, self.source)
                self.transforms[str(instance.root)] = transform
            params = call_params(self.signature, args, kwargs)
            caller = context.current_run()
            if caller is not None and not caller._belongs_to(instance):
                caller = None  # a run of another instance cannot be the caller here
            run = new_run(self.models, instance, transform, params, None, caller)
        except Exception as exc:  # tracking must never stop the user's code from running
            logger.warning(f"{self.source.key} runs untracked: {exc!r}")
            return None
        return run, context.enter_run(run), instance

    def end(self, started: tuple[Any, ...] | None, failure: BaseException | None = None) -> None:
        if started is None:
            return
        run, token, instance = started
        context.leave_run(token)
        status = _status_of(failure)
        report = None if status == "completed" else "".join(traceback.format_exception(failure))
        end_run(run, instance, status, report=report)


def _status_of(failure: BaseException | None) -> str:
    """How a call ended: normally or ``sys.exit(0)`` is completed; Ctrl-C or a cancelled task
    is aborted; any other exception errored."""
    if failure is None or (isinstance(failure, SystemExit) and failure.code in (None, 0)):
        return "completed"
    if isinstance(failure, KeyboardInterrupt | asyncio.CancelledError):
        return "aborted"
    return "errored"


def call_params(
    signature: inspect.Signature, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> dict[str, Any]:
    """The bound arguments of a call, each by :func:`param_value` (defaults included)."""
    bound = signature.bind(*args, **kwargs)
    bound.apply_defaults()
    return {
        name: param_value(value)
        for name, value in bound.arguments.items()
        if name not in ("self", "cls")
    }


def param_value(value: Any) -> Any:
    """A JSON value standing for ``value``: JSON values as they are (a non-finite float as
    text), lists, tuples and dicts with str keys element by element, a registry object by its
    uid, a path as text, anything else as ``"<TypeName>"``."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, numbers.Integral):  # numpy's too
        return int(value)
    if isinstance(value, numbers.Real):
        number = float(value)
        return number if math.isfinite(number) else str(number)
    if isinstance(value, list | tuple):
        return [param_value(v) for v in value]
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {k: param_value(v) for k, v in value.items()}
    if hasattr(value, "__tablename__") and isinstance(getattr(value, "uid", None), str):
        return value.uid
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return f"<{type(value).__name__}>"
