"""Change a file or a link on disk in a loop, as another program would while biolake saves it.

Started as a separate process by the ``churn`` fixture (``tests/conftest.py``)::

    python tests/churn.py swap-link LINK TARGET_A TARGET_B   # repoint LINK, atomically
    python tests/churn.py rewrite FILE     # write a new generation into both ends of FILE
    python tests/churn.py truncate FILE    # the same, after cutting FILE in half and back

``rewrite`` and ``truncate`` keep the file's size and put its mtime back after every change
(``os.utime``), so that only its ctime tells. The process prints ``ready`` once it has made its
first change and runs until it is terminated.
"""

from __future__ import annotations

import itertools
import os
import sys

END = 4096  # bytes rewritten at each end of the file


def swap_link(link: str, targets: list[str]) -> None:
    # Made next to the folder, not in it: a save must see only the link itself.
    tmp = os.path.join(os.path.dirname(os.path.dirname(link)), "link.swap")
    for i in itertools.count():
        os.symlink(targets[i % 2], tmp)
        os.replace(tmp, link)  # atomic: the link always exists and points somewhere
        if i == 0:
            print("ready", flush=True)


def rewrite(path: str, truncate: bool = False) -> None:
    """Write generation 1, 2, … into the first and then the last END bytes, so that a copy read
    from start to end while this runs ends with a newer generation than it starts with; with
    ``truncate``, cut the file in half and back (its tail then reads as zeros) first."""
    st = os.stat(path)
    fd = os.open(path, os.O_WRONLY)
    for generation in itertools.count(1):
        if truncate:
            os.ftruncate(fd, st.st_size // 2)
            os.ftruncate(fd, st.st_size)
        fill = generation.to_bytes(8, "little") * (END // 8)
        os.pwrite(fd, fill, 0)
        os.pwrite(fd, fill, st.st_size - END)
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # only the ctime tells
        if generation == 1:
            print("ready", flush=True)


if __name__ == "__main__":
    mode, *args = sys.argv[1:]
    if mode == "swap-link":
        swap_link(args[0], args[1:3])
    elif mode in ("rewrite", "truncate"):
        rewrite(args[0], truncate=mode == "truncate")
    else:
        raise SystemExit(f"unknown mode {mode!r}")
