"""The biolake exception tree.

Every error biolake raises on purpose derives from :class:`BiolakeError`, and each class also
derives from the builtin exception it refines, so ``except ValueError`` keeps working::

    BiolakeError
    ├── ObjectDoesNotExist (LookupError)      every ``Registry.DoesNotExist`` subclasses it
    ├── MultipleResultsFound (LookupError)
    ├── ValidationError (ValueError)          a value or a definition is invalid
    ├── InvalidArgument (ValueError)          a call's arguments are invalid (e.g. unknown field)
    ├── InstanceError (RuntimeError)          an instance cannot be created, found or opened
    │   ├── InstanceNotFound (LookupError)
    │   └── ReadOnlyInstance (PermissionError) a write to an instance opened read-only
    ├── IntegrityError (RuntimeError)         the database refused a write (e.g. a duplicate)
    ├── TrackingError (RuntimeError)          a run cannot be tracked (no script, no current run)
    └── StorageError (OSError)                stored bytes cannot be written or read
        └── CorruptObjectError                a stored object no longer matches its hash

Messages name the bad value and say what to do next; unknown names suggest close matches.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable
from typing import Any


class BiolakeError(Exception):
    """Root of every error raised by biolake."""


class ObjectDoesNotExist(BiolakeError, LookupError):
    """A query expected one row and found none.

    ``hint`` (a "Did you mean …?" that costs a query) is computed when the message is first
    shown, so code that catches the error to create the missing row never pays for it.
    """

    def __init__(self, *args: Any, hint: Callable[[], str] | None = None) -> None:
        super().__init__(*args)
        self._hint = hint if len(args) == 1 else None

    def __str__(self) -> str:
        if self._hint is not None:
            hint, self._hint = self._hint, None
            try:
                extra = hint()
            except Exception:  # a failing hint must never hide the error itself
                extra = ""
            self.args = (f"{self.args[0]}{extra}",)
        return super().__str__()

    def __reduce__(self) -> tuple[Any, ...]:
        # The hint holds a query and its database: pickle the message, with the hint in it.
        return (type(self), (str(self),) if self._hint else self.args)


class MultipleResultsFound(BiolakeError, LookupError):
    """A query expected one row and found several."""


class ValidationError(BiolakeError, ValueError):
    """A value or a definition is invalid."""


class InvalidArgument(BiolakeError, ValueError):
    """The arguments of a call are invalid."""


class InstanceError(BiolakeError, RuntimeError):
    """An instance cannot be created, connected to or migrated."""


class InstanceNotFound(InstanceError, LookupError):
    """No instance exists at the given location or under the given name."""


class ReadOnlyInstance(InstanceError, PermissionError):
    """A write (save, delete, track …) to an instance that is open read-only: opened with
    ``read_only=True``, in a folder this user cannot write, or through a database role that
    may only read. The message names the instance and how to get write access."""


class IntegrityError(BiolakeError, RuntimeError):
    """The database refused a write, for example a duplicate of a unique value."""


class TrackingError(BiolakeError, RuntimeError):
    """A run cannot be started or finished: no script to track, or no run to finish."""


class StorageError(BiolakeError, OSError):
    """Stored bytes could not be written, read or deleted."""


class CorruptObjectError(StorageError):
    """A stored object's bytes no longer hash to the hash it was saved with (it was edited,
    truncated or replaced in place). The message names the artifact, both hashes and the ways
    to recover."""


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """Return ``" Did you mean 'x'?"`` for close matches of ``name``, or ``""``."""
    return suggestion(difflib.get_close_matches(name, list(candidates), n=3, cutoff=0.6))


def suggestion(matches: Iterable[str]) -> str:
    """Return ``" Did you mean 'a', 'b'?"`` for ``matches``, or ``""`` for none."""
    quoted = ", ".join(repr(m) for m in matches)
    return f" Did you mean {quoted}?" if quoted else ""


def join_capped(names: Iterable[str], limit: int = 20) -> str:
    """``"a, b, c"``; beyond ``limit`` names, the first ones and ``"… and N more"``."""
    shown = list(names)
    if len(shown) <= limit:
        return ", ".join(shown)
    return ", ".join(shown[:limit]) + f", … and {len(shown) - limit} more"


def short_repr(value: Any, limit: int = 60) -> str:
    """``repr`` cut to about ``limit`` characters, still quoted or bracketed as a whole."""
    text = repr(value)
    if len(text) <= limit:
        return text
    if isinstance(value, str):
        return repr(value[: limit - 5]) + "…"
    return text[: limit - 4] + " …" + text[-1]
