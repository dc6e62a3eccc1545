"""A run's report: everything the process writes to ``sys.stdout`` and ``sys.stderr``, teed
into a file while the user still sees all of it.

The tee wraps the Python streams, so it sees ``print``, logging to the console and
tracebacks; bytes that C code or child processes write to file descriptors 1 and 2 directly
pass it by. The file is line-buffered: after SIGKILL it still holds every finished line, and
the next ``ln.track()`` on the host registers it with the crashed run.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import IO, Any


class _TeeStream:
    """A text stream that writes to ``stream`` and copies into ``copy``; everything else (the
    encoding, ``fileno``, Jupyter's ``set_parent``) is the wrapped stream's."""

    def __init__(self, stream: Any, copy: IO[str]) -> None:
        self._stream = stream
        self._copy = copy

    def write(self, text: str) -> int:
        written = self._stream.write(text)
        try:  # noqa: SIM105  (every print passes here: a plain try costs least)
            self._copy.write(text)
        except (ValueError, OSError, UnicodeError):  # closed or full: the user's output matters
            pass
        return written

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        self._stream.flush()
        try:  # noqa: SIM105
            self._copy.flush()
        except (ValueError, OSError):
            pass

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):  # copy/pickle probe an instance before __init__ has run
            raise AttributeError(name)
        return getattr(self._stream, name)


class Report:
    """Tees ``sys.stdout`` and ``sys.stderr`` into ``path`` from ``start()`` to ``stop()``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[str] | None = None
        self._streams: tuple[Any, Any] | None = None

    def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Appending: a forked child (a multiprocessing worker) writes into the same file.
        self._file = open(  # noqa: SIM115  (open until stop())
            self.path, "a", encoding="utf-8", errors="backslashreplace", buffering=1
        )
        self._streams = (sys.stdout, sys.stderr)
        if sys.stdout is not None:
            sys.stdout = _TeeStream(sys.stdout, self._file)
        if sys.stderr is not None:
            sys.stderr = _TeeStream(sys.stderr, self._file)

    def stop(self) -> None:
        """Put the streams back (unless someone replaced ours since) and close the file."""
        if self._file is None or self._streams is None:
            return
        stdout, stderr = self._streams
        if isinstance(sys.stdout, _TeeStream) and sys.stdout._copy is self._file:
            sys.stdout = stdout
        if isinstance(sys.stderr, _TeeStream) and sys.stderr._copy is self._file:
            sys.stderr = stderr
        self._file.close()
        self._file = None
