"""Which Python environment a run executes in: a cheap fingerprint, and the full package list.

:func:`fingerprint` runs on every ``ln.track()``. It lists the ``*.dist-info`` and ``*.egg-info``
names in the ``sys.path`` folders, whose names carry each distribution's name and version (an
editable install has its dist-info too), so no metadata file is opened, and hashes them, sorted,
with the Python version, implementation, ABI and platform. Installing, removing, upgrading or
downgrading a distribution changes it; the same environment in another process or at another
path does not. An ``.egg-info`` named without a version (``setup.py develop``) has its version
read from its ``PKG-INFO``.

:func:`package_list` reads the metadata of every distribution (tens of milliseconds): call it
only for a fingerprint not seen before.
"""

from __future__ import annotations

import os
import platform
import re
import sys
from collections.abc import Iterable

from biolake.storage.hashing import hash_bytes

__all__ = ["fingerprint", "package_list"]

_SUFFIXES = (".dist-info", ".egg-info")


def fingerprint() -> str:
    """A hash of the installed distributions, the Python version and the platform.

    Example::

        >>> fingerprint()
        'blake3:5f0c7a...'
    """
    names = sorted(_distribution_names(sys.path))
    text = "\n".join([_interpreter(), *names])
    return hash_bytes(text.encode("utf-8", "surrogateescape"))


def package_list() -> str:
    """The installed distributions as sorted ``name==version`` lines, under a header.

    Names are normalised (PEP 503); a distribution installed twice counts as the one that
    ``import`` finds first on ``sys.path``.

    Example::

        >>> print(package_list())
        # python 3.11.7 (cpython, linux x86_64)
        # executable /home/me/.venv/bin/python
        anndata==0.10.9
        ...
    """
    versions: dict[str, str] = {}
    import importlib.metadata  # only for a new fingerprint: it costs a few ms to import

    for dist in importlib.metadata.distributions():
        # get_all: reading a missing key with [] is deprecated, and will raise.
        name, version = (dist.metadata.get_all(key) for key in ("Name", "Version"))
        if name and version:  # a metadata folder left without its files names nothing
            versions.setdefault(_normalise(name[0]), version[0])
    header = [f"# python {_interpreter()}", f"# executable {sys.executable}"]
    return "\n".join(header + [f"{name}=={versions[name]}" for name in sorted(versions)]) + "\n"


def _interpreter() -> str:
    abi = getattr(sys, "abiflags", "")  # e.g. "t" for a free-threaded build; absent on Windows
    impl = f"{sys.implementation.name}{abi}"
    return f"{platform.python_version()} ({impl}, {sys.platform} {platform.machine()})"


def _distribution_names(entries: Iterable[str]) -> list[str]:
    names = []
    for entry in entries:
        folder = entry or "."  # "" stands for the current folder
        if folder.endswith(".egg"):  # an egg on sys.path is a distribution itself
            names.append(os.path.basename(folder).lower())
        try:
            with os.scandir(folder) as found:
                for item in found:
                    if item.name.endswith(_SUFFIXES):
                        names.append(_versioned(item).lower())
        except OSError:  # a zip file, a path hook's name, or a folder that is gone
            continue
    return names


def _versioned(item: os.DirEntry[str]) -> str:
    if "-" in item.name.rpartition(".")[0]:  # "name-version.dist-info"
        return item.name
    # "name.egg-info" of a development install: its version is only in PKG-INFO.
    pkg_info = os.path.join(item.path, "PKG-INFO") if item.is_dir() else item.path
    return f"{item.name}:{_metadata_version(pkg_info)}"


def _metadata_version(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if line.startswith("Version:"):
                    return line[len("Version:") :].strip()
                if not line.strip():  # the headers end at the first blank line
                    break
    except OSError:
        pass
    return ""


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()
