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
from biolake.tracking.runs import Models, end_run, new_run, place_of
from biolake.tracking.source import function_source
from biolake.tracking.transforms import upsert_transform

F = TypeVar("F", bound=Callable[..., Any])


def tracked(models: Models, *, cache: bool = False) -> Callable[[F], F]:
    """The decorator: ``@ln.tracked()`` above a function or method, sync or async; with
    ``cache=True`` a call returns an earlier call's result when that is still valid (see
    ``reuse.py``)."""

    def decorate(function: F) -> F:
        if inspect.isgeneratorfunction(function) or inspect.isasyncgenfunction(function):
            raise InvalidArgument(
                f"@ln.tracked() cannot track the generator {function.__qualname__}: its body "
                "runs after the call returns. Track a function that consumes it instead."
            )
        call = _Calls(models, function, cache)
        if inspect.iscoroutinefunction(function):

            @functools.wraps(function)
            async def run_async(*args: Any, **kwargs: Any) -> Any:
                started = call.start(args, kwargs)
                if started is not None and started[0] is _REUSED:
                    return started[1]
                try:
                    result = await function(*args, **kwargs)
                except BaseException as exc:
                    call.end(started, exc)
                    raise
                call.end(started, result=result)
                return result

            return run_async  # type: ignore[return-value]

        @functools.wraps(function)
        def run_sync(*args: Any, **kwargs: Any) -> Any:
            started = call.start(args, kwargs)
            if started is not None and started[0] is _REUSED:
                return started[1]
            try:
                result = function(*args, **kwargs)
            except BaseException as exc:
                call.end(started, exc)
                raise
            call.end(started, result=result)
            return result

        return run_sync  # type: ignore[return-value]

    return decorate


_REUSED: Any = object()  # start() found an earlier call's result to return


class _Calls:
    """The runs of one tracked function; its transform, and where it runs when no run calls
    it (git state, environment), are looked up once per instance."""

    def __init__(self, models: Models, function: Callable[..., Any], cache: bool) -> None:
        self.models = models
        self.signature = inspect.signature(function)
        self.source = function_source(function)
        self.cache = cache
        self.known: dict[str, tuple[Any, dict[str, Any]]] = {}  # by instance root
        self.warned: set[str] = set()  # the warnings given: each once per function

    def start(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...] | None:
        """(run, context token, instance) of a new call, (_REUSED, result) for a call served
        from the cache, or None when it runs untracked."""
        try:
            instance = current_instance()
            transform, place = self._known(instance)
            arguments = bound_arguments(self.signature, args, kwargs)
            params = {name: param_value(value) for name, value in arguments.items()}
            exact = all(map(exact_value, arguments.values()))
            caller = context.current_run()
            if caller is not None and not caller._belongs_to(instance):
                caller = None  # a run of another instance cannot be the caller here
            if self.cache and not exact:
                self._warn_once(
                    f"{self.source.key} has cache=True but an argument is recorded only by "
                    "its type or name (a DataFrame, a path …), not by its content: it runs on "
                    "every such call. Pass an artifact, or JSON values, to make it reusable."
                )
            elif self.cache:
                from biolake.tracking.reuse import reusable  # only for cache=True

                environment = caller.environment_id if caller else place.get("environment_id")
                found = reusable(self.models, instance, transform, params, environment)
                if found is not None:
                    logger.info(
                        f"{self.source.key}: returning what run {found[0].uid} returned (same "
                        "source, params, inputs and environment; cache=True)"
                    )
                    return _REUSED, found[1]
            run = new_run(self.models, instance, transform, params, None, caller, place=place)
        except Exception as exc:  # tracking must never stop the user's code from running
            logger.warning(f"{self.source.key} runs untracked: {exc!r}")
            return None
        run._exact_params = exact
        return run, context.enter_run(run), instance

    def _known(self, instance: Any) -> tuple[Any, dict[str, Any]]:
        known = self.known.get(str(instance.root))
        if known is None:
            code_dir = os.path.dirname(self.source.path) if self.source.path else None
            place = place_of(self.models, instance, code_dir)  # git runs meanwhile
            try:
                transform = upsert_transform(self.models.transform, instance, self.source)
            finally:
                where = place()  # also on an error: so that git's process is waited for
            known = transform, where
            self.known[str(instance.root)] = known
        return known

    def end(
        self,
        started: tuple[Any, ...] | None,
        failure: BaseException | None = None,
        result: Any = None,
    ) -> None:
        if started is None:
            return
        run, token, instance = started
        context.leave_run(token)
        status = _status_of(failure)
        reason = None if status == "completed" else "".join(traceback.format_exception(failure))
        more = {"result": self._result(result)} if self.cache and failure is None else {}
        # Params known only by type cannot tell two calls apart: no fingerprint then.
        end_run(run, instance, status, reason=reason, comparable=run._exact_params, **more)

    def _result(self, result: Any) -> Any:
        from biolake.tracking.reuse import NotReusable, result_value

        try:
            return {"value": result_value(result)}  # wrapped: a None result is stored too
        except NotReusable as exc:
            self._warn_once(
                f"{self.source.key} has cache=True but returned a {exc}: only artifacts "
                "and JSON values can be returned again, so it runs on every call"
            )
            return None

    def _warn_once(self, message: str) -> None:
        if message not in self.warned:
            self.warned.add(message)
            logger.warning(message)


def _status_of(failure: BaseException | None) -> str:
    """How a call ended: normally or ``sys.exit(0)`` is completed; Ctrl-C or a cancelled task
    is aborted; any other exception errored."""
    if failure is None or (isinstance(failure, SystemExit) and failure.code in (None, 0)):
        return "completed"
    if isinstance(failure, KeyboardInterrupt | asyncio.CancelledError):
        return "aborted"
    return "errored"


def bound_arguments(
    signature: inspect.Signature, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> dict[str, Any]:
    """The arguments of a call by name, defaults included, ``self`` and ``cls`` left out."""
    bound = signature.bind(*args, **kwargs)
    bound.apply_defaults()
    return {k: v for k, v in bound.arguments.items() if k not in ("self", "cls")}


def exact_value(value: Any) -> bool:
    """Whether :func:`param_value` records ``value`` itself (JSON, a registry object's uid),
    not a stand-in (``"<DataFrame>"``, a path whose content may change)."""
    if value is None or isinstance(value, bool | str | numbers.Integral):
        return True
    if isinstance(value, numbers.Real):
        return math.isfinite(float(value))
    if isinstance(value, list | tuple):
        return all(map(exact_value, value))
    if isinstance(value, dict):
        return all(isinstance(k, str) for k in value) and all(map(exact_value, value.values()))
    return hasattr(value, "__tablename__") and isinstance(getattr(value, "uid", None), str)


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
