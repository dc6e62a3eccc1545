"""Run a batch of small-file work on both cores: half in a forked child process, half here.

Storing thousands of small files is many short syscalls plus Python around each; two threads
spend their time handing the GIL back and forth (measured: slower than one), while two
processes each run at full speed. The child is forked (cheap: it shares the parent's memory),
does its half, sends back what it finished (and its error, if any) through a pipe, and leaves
with ``os._exit`` so that it never touches the parent's database connections or buffers.

Linux only: elsewhere, or on one core, the work runs here in one piece.
"""

from __future__ import annotations

import os
import pickle
import sys
import warnings
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from biolake.errors import StorageError

T = TypeVar("T")
R = TypeVar("R")

PARALLEL_MIN = 500  # below this, forking costs more than it saves

# work(part, done, on_item): do ``part``, putting each finished result into ``done`` (by the
# item's own key) as it goes, and calling ``on_item(result)`` if given. It may raise.
Work = Callable[[Sequence[T], dict[Any, R], Callable[[R], None] | None], None]


def worth_splitting(n: int) -> bool:
    return n >= PARALLEL_MIN and sys.platform == "linux" and (os.cpu_count() or 1) >= 2


def run_on_both_cores(
    items: Sequence[T],
    work: Work[T, R],
    done: dict[Any, R],
    on_item: Callable[[R], None] | None = None,
) -> None:
    """Do ``work`` over ``items``, the second half in a child process.

    ``done`` ends up holding every result either half finished, also when a half fails; then
    the first error is raised (the parent's, else the child's), so the caller can clean up.
    """
    if not worth_splitting(len(items)):
        work(items, done, on_item)
        return
    half = len(items) // 2
    read_end, write_end = os.pipe()
    try:
        pid = _fork()
    except OSError:  # no process to spare (a process limit, memory): one core it is
        os.close(read_end)
        os.close(write_end)
        work(items, done, on_item)
        return
    if pid == 0:  # the child: never returns
        os.close(read_end)
        _child(items[half:], work, write_end)
    os.close(write_end)
    error: BaseException | None = None
    try:
        work(items[:half], done, on_item)
    except BaseException as exc:  # the child's finished results must still be collected
        error = exc
    child_done, child_error = _receive(read_end, pid)
    for key, result in child_done.items():
        done[key] = result
        if on_item is not None:
            on_item(result)
    if error is not None:
        raise error
    if child_error is not None:
        raise child_error


def _fork() -> int:
    with warnings.catch_warnings():
        # Python 3.12+ warns when forking with other threads alive (e.g. a notebook's). The
        # child only runs our file work and exits without running any other thread's code.
        warnings.filterwarnings("ignore", category=DeprecationWarning, message=".*fork")
        return os.fork()


def _child(part: Sequence[T], work: Work[T, Any], write_end: int) -> None:
    status = 1
    try:
        done: dict[Any, Any] = {}
        error: BaseException | None = None
        try:
            work(part, done, None)
        except BaseException as exc:
            error = exc
        try:
            payload = pickle.dumps((done, error))
        except Exception:  # an unpicklable error: send its text
            payload = pickle.dumps((done, StorageError(f"{type(error).__name__}: {error}")))
        view = memoryview(payload)
        while view:
            view = view[os.write(write_end, view) :]
        status = 0
    finally:
        os._exit(status)


def _receive(read_end: int, pid: int) -> tuple[dict[Any, Any], BaseException | None]:
    chunks = []
    try:
        while chunk := os.read(read_end, 1 << 20):
            chunks.append(chunk)
    finally:
        os.close(read_end)
        _, status = os.waitpid(pid, 0)
    try:
        done, error = pickle.loads(b"".join(chunks))
    except Exception:
        code = os.waitstatus_to_exitcode(status)
        return {}, StorageError(
            f"The helper process storing half of the batch ended without a result (exit "
            f"{code}); what it stored is left unregistered. Save the batch again."
        )
    return done, error
