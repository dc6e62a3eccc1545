"""What code runs: the calling script or a given file, or a function, with its source and hash.

A script is the first frame outside biolake that comes from a file on disk; ``path=`` names the
file instead (a notebook, or a front end that runs code from elsewhere). A notebook's source is
its code cells, so editing markdown or outputs does not make a new transform version.
"""

from __future__ import annotations

import ast
import inspect
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from biolake.errors import TrackingError
from biolake.storage.hashing import hash_bytes


@dataclass(frozen=True)
class Source:
    """The code a transform stands for."""

    key: str  # the file name, or "<file name>:<qualified name>" for a function
    kind: str  # "script", "notebook" or "function"
    code: str | None
    hash: str
    description: str | None


def script_source(path: str | os.PathLike[str] | None) -> Source:
    """The source of ``path``, else of the script that called into biolake."""
    file = os.path.abspath(path) if path is not None else _calling_file()
    try:
        with open(file, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as exc:
        raise TrackingError(f"Cannot read the code to track at {file!r}: {exc}.") from None
    if file.endswith(".ipynb"):
        code = _notebook_code(file, text)
        return Source(os.path.basename(file), "notebook", code, _hash(code), None)
    return Source(os.path.basename(file), "script", text, _hash(text), _docstring(text))


def function_source(function: Callable[..., Any]) -> Source:
    """A function's source; its docstring describes the transform."""
    file = inspect.getsourcefile(function) or "<unknown>"
    try:
        code: str | None = inspect.getsource(function)
    except (OSError, TypeError):  # defined in a REPL: the name identifies it
        code = None
    key = f"{os.path.basename(file)}:{function.__qualname__}"
    return Source(key, "function", code, _hash(code or key), inspect.getdoc(function))


def _calling_file() -> str:
    frame = sys._getframe(1)
    while frame is not None and frame.f_globals.get("__name__", "").split(".")[0] == "biolake":
        frame = frame.f_back  # type: ignore[assignment]
    file = frame.f_code.co_filename if frame is not None else "<unknown>"
    if not os.path.isfile(file):
        raise TrackingError(
            f"ln.track() cannot find the file of the code that calls it ({file}): in a notebook "
            "or an interactive session, name it: ln.track(path='analysis.ipynb')."
        )
    return os.path.abspath(file)


def _notebook_code(file: str, text: str) -> str:
    try:
        cells = json.loads(text)["cells"]
        sources = [c["source"] for c in cells if c.get("cell_type") == "code"]
    except (ValueError, KeyError, TypeError) as exc:
        raise TrackingError(f"{file!r} is not a Jupyter notebook ({exc!r}).") from None
    return "\n\n".join(s if isinstance(s, str) else "".join(s) for s in sources)


def _docstring(code: str) -> str | None:
    try:
        return ast.get_docstring(ast.parse(code))
    except SyntaxError:
        return None


def _hash(code: str) -> str:
    return hash_bytes(code.encode("utf-8", "surrogatepass"))
