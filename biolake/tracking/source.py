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
from typing import Any, NamedTuple

from biolake.errors import TrackingError
from biolake.storage.hashing import hash_bytes


class Source(NamedTuple):  # not a frozen dataclass, which costs 0.7 ms to define
    """The code a transform stands for."""

    key: str  # the file name, or "<file name>:<qualified name>" for a function
    kind: str  # "script", "notebook" or "function"
    code: str | None
    hash: str
    description: str | None
    path: str | None = None  # the file, when there is one (its folder gives the git state)


def script_source(path: str | os.PathLike[str] | None) -> Source:
    """The source of ``path``, else of the notebook this kernel runs, else of the script that
    called into biolake."""
    file = os.path.abspath(path) if path is not None else notebook_path() or _calling_file()
    try:
        with open(file, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as exc:
        raise TrackingError(f"Cannot read the code to track at {file!r}: {exc}.") from None
    if file.endswith(".ipynb"):
        code = _notebook_code(file, text)
        return Source(os.path.basename(file), "notebook", code, _hash(code), None, file)
    return Source(os.path.basename(file), "script", text, _hash(text), _docstring(text), file)


def function_source(function: Callable[..., Any]) -> Source:
    """A function's source; its docstring describes the transform."""
    file = inspect.getsourcefile(function) or "<unknown>"
    try:
        code: str | None = inspect.getsource(function)
    except (OSError, TypeError):  # defined in a REPL: the name identifies it
        code = None
    key = f"{os.path.basename(file)}:{function.__qualname__}"
    path = file if os.path.isfile(file) else None
    return Source(key, "function", code, _hash(code or key), inspect.getdoc(function), path)


def notebook_path() -> str | None:
    """The notebook file this process runs as a Jupyter kernel, found offline: VS Code's
    ``__vsc_ipynb_file__``, Jupyter's ``__session__`` variable, or ``JPY_SESSION_NAME``, which
    Jupyter Server gives its kernels. None outside a kernel or when none names an existing
    file."""
    if "ipykernel" not in sys.modules:
        return None
    shell = _ipython()
    if shell is None or not hasattr(shell, "kernel"):  # not this process's kernel (a child
        return None  # of a notebook inherits JPY_SESSION_NAME)
    names = dict(getattr(shell, "user_ns", None) or {})
    candidates = [names.get("__vsc_ipynb_file__"), names.get("__session__")]
    candidates.append(os.environ.get("JPY_SESSION_NAME"))
    for candidate in candidates:
        if not isinstance(candidate, str) or not candidate.endswith(".ipynb"):
            continue
        if os.path.isfile(candidate):
            return os.path.abspath(candidate)
    return None


def _ipython() -> Any:
    module = sys.modules.get("IPython")
    get = getattr(module, "get_ipython", None)
    return get() if get is not None else None


def _calling_file() -> str:
    frame = sys._getframe(1)
    while frame is not None and frame.f_globals.get("__name__", "").split(".")[0] == "biolake":
        frame = frame.f_back  # type: ignore[assignment]
    file = frame.f_code.co_filename if frame is not None else "<unknown>"
    if not os.path.isfile(file):
        raise TrackingError(
            f"ln.track() cannot find the file of the code that calls it ({file}): in a notebook "
            "that does not say its path (Jupyter and VS Code do) or an interactive session, "
            "name it: ln.track(path='analysis.ipynb')."
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
