"""Runs that tell the truth about how they ended: start, end, and the process's own run.

``track`` opens the run of the process and watches how the process ends:

- ``finish()``: ``completed``;
- an uncaught exception: ``errored``, with the traceback as the report;
- ``sys.exit(n)`` with n not 0: ``errored``, with the exit code; a clean exit without
  ``finish()``: ``completed``, marked as finished implicitly;
- SIGTERM: ``aborted``, then the previous handler runs, so the process still ends as the
  scheduler expects (an ignored SIGTERM is left ignored); Ctrl-C (SIGINT): ``aborted`` when the
  ``KeyboardInterrupt`` ends the process, nothing when the script catches it.

A run stays ``started`` only while its process lives: it records its pid and host, and the next
``ln.track()`` on that host (or ``ln.Run.mark_crashed()``) marks ``crashed`` the runs whose
process was killed outright (SIGKILL, out of memory, ``os._exit``).
"""

from __future__ import annotations

import atexit
import json
import os
import shlex
import signal
import socket
import sys
import threading
import traceback
from dataclasses import dataclass
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm.attributes import set_committed_value

from biolake.core.connect import current_instance
from biolake.core.instance import Instance
from biolake.core.log import logger
from biolake.core.schema.base import utcnow
from biolake.errors import IntegrityError, TrackingError, ValidationError
from biolake.tracking import context
from biolake.tracking.source import script_source
from biolake.tracking.transforms import upsert_transform


@dataclass(frozen=True)
class Models:
    """The registry classes tracking creates rows of, passed in by ``biolake.registries``."""

    run: Any
    transform: Any
    project: Any


def new_run(
    models: Models,
    instance: Instance,
    transform: Any,
    params: dict[str, Any] | None,
    project: str | None = None,
    initiated_by: Any = None,
) -> Any:
    """Insert a ``started`` run of ``transform`` in this process."""
    run = models.run(transform=transform, params=_checked(params), initiated_by_run=initiated_by)
    run.status = "started"
    run.pid, run.host = os.getpid(), socket.gethostname()
    run.entrypoint = shlex.join(sys.argv) if sys.argv and sys.argv[0] else None
    if project is not None:
        run.projects.append(_project(models.project, project))
    elif initiated_by is not None:  # a tracked call belongs to the projects of its caller
        run.projects.extend(initiated_by.projects)
    with instance.db.write():
        run.save()
    return run


def end_run(
    run: Any,
    instance: Instance,
    status: str,
    *,
    report: str | None = None,
    exit_code: int | None = None,
    implicitly: bool = False,
) -> bool:
    """Record how ``run`` ended, in its own instance, if it is still ``started`` (an ended run
    keeps its end); returns whether it changed. A failure to record it is a warning, never the
    user's error."""
    values: dict[str, Any] = {
        "status": status,
        "finished_at": utcnow(),
        "exit_code": exit_code,
        "finished_implicitly": implicitly or None,
    }
    if report is not None:
        values["report"] = report
    table = type(run).__table__
    run_id, uid = run.__dict__.get("id"), run.__dict__.get("uid")
    try:
        with instance.db.write() as session:
            still_started = (table.c.id == run_id) & (table.c.status == "started")
            result: Any = session.execute(update(table).where(still_started).values(**values))
    except Exception as exc:  # the process is ending or the database is gone
        logger.warning(f"could not record that run {uid} {status}: {exc!r}")
        return False
    if not result.rowcount:
        return False
    for name, value in values.items():  # what the object says, without another write
        set_committed_value(run, name, value)
    return True


def _checked(params: dict[str, Any] | None) -> dict[str, Any] | None:
    if params is None:
        return None
    if not isinstance(params, dict) or not all(isinstance(k, str) for k in params):
        raise ValidationError(f"params must be a dict with str keys, not {params!r}.")
    for name, value in params.items():
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError):
            raise ValidationError(
                f"params[{name!r}] = {value!r} is not JSON (str, int, float, bool, None, lists "
                "and dicts of them): store it as a string, or as an artifact and pass its uid."
            ) from None
    return params


def _project(model: Any, name: str) -> Any:
    """The project named ``name``: restored from the trash, or created (once, also when
    concurrent jobs create it at the same moment)."""
    found = model.filter(name=name, visibility__in=["default", "trash"]).one_or_none()
    if found is not None:
        if found.visibility != "default":
            found.restore()
            logger.info(f"restored project {name!r} from the trash")
        return found
    try:
        project = model(name=name).save()
    except IntegrityError:  # another job created it first
        return model.get(name=name)
    logger.info(f"created project {name!r}")
    return project


def mark_crashed(model: Any, instance: Instance) -> int:
    """Mark ``crashed`` the runs still ``started`` on this host whose process is gone (killed by
    SIGKILL, out of memory, ``os._exit``); returns how many. Runs of other hosts are left: their
    processes cannot be seen from here."""
    host, crashed = socket.gethostname(), 0
    started = model.filter(status="started", host=host).to_list()
    for run in started:
        if run.pid is not None and run.pid != os.getpid() and not _alive(run.pid):
            report = f"its process (pid {run.pid} on {host}) ended without recording how"
            crashed += end_run(run, instance, "crashed", report=report)
    return crashed


def _alive(pid: int) -> bool:
    if os.name != "posix":  # signal 0 only asks on POSIX (on Windows os.kill terminates)
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


# --- the process's run ----------------------------------------------------------------------


def track(models: Models, *, params: dict[str, Any] | None, project: str | None, path: Any) -> Any:
    """Open the run of this process (``ln.track``); a run still open is finished first."""
    params = _checked(params)  # before anything changes: a mistake leaves the last run open
    source = script_source(path)
    instance = current_instance()
    mark_crashed(models.run, instance)
    transform = upsert_transform(models.transform, instance, source)
    if _process is not None:
        _process.end("completed")
    run = new_run(models, instance, transform, params, project)
    _ProcessRun(run, instance).start()
    logger.info(f"started run {run.uid} of {transform.key} (version {transform.version})")
    return run


def finish() -> None:
    """Close the run of this process as ``completed`` (``ln.finish``)."""
    if _process is None:
        raise TrackingError("ln.finish() found no run to finish: call ln.track() first.")
    _process.end("completed")


_process: _ProcessRun | None = None


class _ProcessRun:
    """Watches how the process ends, for its run; restores every hook it replaced when done.

    Every hook falls through to the one it replaced in a forked child (another pid), which
    does not own the run.
    """

    def __init__(self, run: Any, instance: Instance) -> None:
        self.run = run
        self.instance = instance
        self.pid = os.getpid()
        self.exit_code: int | None = None
        self._excepthook = sys.excepthook
        self._exit = sys.exit
        self._signals: dict[int, Any] = {}

    def start(self) -> None:
        global _process
        _process = self
        context.set_process_run(self.run)
        sys.excepthook = self._on_exception
        sys.exit = self._on_exit  # type: ignore[assignment]
        atexit.register(self._at_exit)
        if threading.current_thread() is threading.main_thread():
            previous = signal.getsignal(signal.SIGTERM)
            if previous is not signal.SIG_IGN:  # an ignored SIGTERM stays ignored
                self._signals[signal.SIGTERM] = signal.signal(signal.SIGTERM, self._on_sigterm)

    def end(self, status: str, **details: Any) -> None:
        global _process
        if _process is not self or os.getpid() != self.pid:
            return
        _process = None
        context.set_process_run(None)
        self._restore()
        end_run(self.run, self.instance, status, **details)

    def _restore(self) -> None:
        if sys.excepthook == self._on_exception:
            sys.excepthook = self._excepthook
        if sys.exit == self._on_exit:
            sys.exit = self._exit
        atexit.unregister(self._at_exit)
        for signum, handler in self._signals.items():
            if signal.getsignal(signum) == self._on_sigterm:
                signal.signal(signum, handler)

    def _on_exception(self, kind: Any, value: Any, tb: Any) -> None:
        if isinstance(value, KeyboardInterrupt):  # Ctrl-C that nothing caught
            self.end("aborted", report="the process received SIGINT (KeyboardInterrupt)")
        else:
            report = "".join(traceback.format_exception(kind, value, tb))
            self.end("errored", report=report, exit_code=1)
        self._excepthook(kind, value, tb)

    def _on_exit(self, code: Any = None) -> None:
        if threading.current_thread() is threading.main_thread():  # elsewhere it ends a thread
            self.exit_code = code if isinstance(code, int) else (0 if code is None else 1)
        self._exit(code)

    def _at_exit(self) -> None:
        code = self.exit_code
        if code:
            self.end("errored", exit_code=code, report=f"the process exited with code {code}")
        else:
            self.end("completed", exit_code=code, implicitly=True)

    def _on_sigterm(self, signum: int, frame: Any) -> None:
        previous = self._signals.get(signum, signal.SIG_DFL)
        if os.getpid() == self.pid and not self.instance.db.in_write:
            # (Inside a write the status would join a transaction that never commits: then
            # the run is found crashed later, rather than recorded wrong.)
            self.end("aborted", report="the process received SIGTERM")
        if callable(previous):
            previous(signum, frame)
        else:  # the default action, as if we had never been there
            signal.signal(signum, previous)
            signal.raise_signal(signum)
