"""The run that is current: what the save path and the load path ask for.

Two levels: the run of the process (``ln.track()`` in a script or notebook), seen by every
thread, and the run of a ``@ln.tracked()`` call, a ``ContextVar``, so threads and asyncio tasks
each see their own and a call's run ends with it. The call's run wins while it lasts.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar, Token
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from biolake.registries.run import Run

_UNTRACKED: Any = object()  # current in a block that records nothing (a run's own files)
_current_run: ContextVar[Run | None] = ContextVar("biolake_current_run", default=None)


_process_run: Run | None = None


def current_run() -> Run | None:
    """The current run, or None when nothing is tracked."""
    run = _current_run.get()
    if run is _UNTRACKED:
        return None
    return run if run is not None else _process_run


def set_process_run(run: Run | None) -> None:
    """Make ``run`` the run of this process (``ln.track()``), or clear it (None)."""
    global _process_run
    _process_run = run


def enter_run(run: Run | None) -> Token[Run | None]:
    """Make ``run`` current in this context (a tracked call); ``leave_run`` ends it."""
    return _current_run.set(run)


def leave_run(token: Token[Run | None]) -> None:
    _current_run.reset(token)


@contextlib.contextmanager
def run_context(run: Run | None) -> Iterator[None]:
    """Make ``run`` the current run inside the block, then restore the previous one."""
    token = enter_run(run)
    try:
        yield
    finally:
        leave_run(token)


def untracked() -> contextlib.AbstractContextManager[None]:
    """No run is current inside the block, not even the process's: what is saved there is
    nobody's output, and what is read nobody's input."""
    return run_context(_UNTRACKED)
