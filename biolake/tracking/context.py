"""The run that is current in this thread or task: what the save path (and later the load
path) asks for.

A ``ContextVar``, so threads and asyncio tasks each see their own run, and a run opened inside
a function call ends with it. ``ln.track()`` will set it; until then it is always None.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from biolake.registries.run import Run

_current_run: ContextVar[Run | None] = ContextVar("biolake_current_run", default=None)


def current_run() -> Run | None:
    """The current run, or None when nothing is tracked."""
    return _current_run.get()


@contextlib.contextmanager
def run_context(run: Run | None) -> Iterator[None]:
    """Make ``run`` the current run inside the block, then restore the previous one."""
    token = _current_run.set(run)
    try:
        yield
    finally:
        _current_run.reset(token)
