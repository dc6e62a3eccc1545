"""The run of the process (``ln.track`` / ``ln.finish``), and how the process ends it.

- ``finish()``: ``completed``;
- an uncaught exception: ``errored``, with the traceback as the status reason (and in the
  report, where the process printed it);
- ``sys.exit(n)`` with n not 0: ``errored``, with the exit code; a clean exit without
  ``finish()``: ``completed``, marked as finished implicitly;
- SIGTERM: ``aborted``, then the previous handler runs, so the process still ends as the
  scheduler expects (an ignored SIGTERM is left ignored); Ctrl-C (SIGINT): ``aborted`` when the
  ``KeyboardInterrupt`` ends the process, nothing when the script catches it.

While the run is open, stdout and stderr are teed into its report, registered when it ends.
"""

from __future__ import annotations

import atexit
import os
import signal
import sys
import threading
import traceback
from typing import Any

from biolake.core.connect import current_instance
from biolake.core.instance import Instance
from biolake.core.log import logger
from biolake.core.values import checked_params
from biolake.errors import TrackingError
from biolake.tracking import context, run_files
from biolake.tracking.report import Report
from biolake.tracking.runs import (
    Models,
    end_run,
    mark_crashed,
    new_run,
    place_of,
    set_report,
)
from biolake.tracking.source import script_source
from biolake.tracking.transforms import upsert_transform


def track(models: Models, *, params: dict[str, Any] | None, project: str | None, path: Any) -> Any:
    """Open the run of this process (``ln.track``); a run still open is finished first."""
    params = checked_params(params)  # before anything changes: a mistake leaves the last run open
    source = script_source(path)
    instance = current_instance()
    instance.db.check_writable()  # before git runs or stdout is teed: a run is a write
    # Git first: its one process runs while the database is asked.
    place = place_of(models, instance, os.path.dirname(source.path) if source.path else None)
    try:
        mark_crashed(models, instance)
        transform = upsert_transform(models.transform, instance, source)
    finally:
        where = place()  # also on an error: so that git's process is waited for
    if _process is not None:
        _process.end("completed")
    run = new_run(models, instance, transform, params, project, place=where)
    _ProcessRun(models, run, instance).start()
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

    def __init__(self, models: Models, run: Any, instance: Instance) -> None:
        self.models = models
        self.run = run
        self.instance = instance
        self.pid = os.getpid()
        self.exit_code: int | None = None
        self.sigterm = False  # a SIGTERM arrived and the script's own handler took it
        self.report = Report(run_files.report_path(instance, run.uid))
        self._excepthook = sys.excepthook
        self._exit = sys.exit
        self._signals: dict[int, Any] = {}

    def start(self) -> None:
        global _process
        _process = self
        context.set_process_run(self.run)
        try:
            self.report.start()
        except OSError as exc:
            logger.warning(f"run {self.run.uid} keeps no report: {exc!r}")
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
        self.report.stop()
        if status == "aborted":
            # The end first: a scheduler's SIGKILL may follow SIGTERM soon, and the report can
            # be large. The report follows; a crashed run's report is registered later anyway.
            end_run(self.run, self.instance, status, **details)
            self._link_report(self._save_report())
            return
        report_id = self._save_report()  # then one write records the end and links it
        linked: dict[str, Any] = {} if report_id is None else {"report_id": report_id}
        if not end_run(self.run, self.instance, status, **linked, **details):
            self._link_report(report_id)  # the end was recorded before: the report is its own

    def _save_report(self) -> int | None:
        try:
            return run_files.save_report(
                self.models.artifact, self.instance, self.run.uid, self.report.path
            )
        except Exception as exc:
            logger.warning(f"could not save the report of run {self.run.uid}: {exc!r}")
            return None

    def _link_report(self, report_id: int | None) -> None:
        try:
            set_report(self.run, self.instance, report_id)
        except Exception as exc:
            logger.warning(f"could not link the report of run {self.run.uid}: {exc!r}")

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
        self._excepthook(kind, value, tb)  # first: the traceback goes into the report too
        if hasattr(sys, "ps1") or sys.flags.interactive:
            return  # a prompt shows the error and goes on: so does the run
        if isinstance(value, KeyboardInterrupt):  # Ctrl-C that nothing caught
            self.end("aborted", reason="the process received SIGINT (KeyboardInterrupt)")
        else:
            reason = "".join(traceback.format_exception(kind, value, tb))
            self.end("errored", reason=reason, exit_code=1)

    def _on_exit(self, code: Any = None) -> None:
        if threading.current_thread() is threading.main_thread():  # elsewhere it ends a thread
            self.exit_code = code if isinstance(code, int) else (0 if code is None else 1)
        self._exit(code)

    def _at_exit(self) -> None:
        code = self.exit_code
        # An uncaught exception that another excepthook (rich's, say) took instead of ours:
        # the interpreter keeps it in sys.last_value before it calls any hook.
        uncaught = getattr(sys, "last_value", None) if not sys.flags.interactive else None
        if code:
            self.end("errored", exit_code=code, reason=f"the process exited with code {code}")
        elif isinstance(uncaught, KeyboardInterrupt) or self.sigterm:
            signal_name = "SIGINT (KeyboardInterrupt)" if uncaught else "SIGTERM"
            self.end("aborted", reason=f"the process received {signal_name}")
        elif isinstance(uncaught, Exception):
            reason = "".join(traceback.format_exception(uncaught))
            self.end("errored", reason=reason, exit_code=1)
        else:
            self.end("completed", exit_code=code, implicitly=True)

    def _on_sigterm(self, signum: int, frame: Any) -> None:
        previous = self._signals.get(signum, signal.SIG_DFL)
        if callable(previous):  # the script's own handler (a checkpoint, a graceful stop):
            self.sigterm = True  # the run goes on until finish() or the exit (then aborted)
            previous(signum, frame)
            return
        if os.getpid() == self.pid and not self.instance.db.in_write:
            # (Inside a write the status would join a transaction that never commits: then
            # the run is found crashed later, rather than recorded wrong.)
            self.end("aborted", reason="the process received SIGTERM")
        signal.signal(signum, previous)  # the default action, as if we had never been there
        signal.raise_signal(signum)
