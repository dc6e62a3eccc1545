"""Worker processes for the race tests: each runs one action per round, between two barriers.

Started with multiprocessing's spawn method, so each worker is a fresh process that opens the
instance itself (through ``BIOLAKE_INSTANCE``), as a separate job on a cluster would.
"""

from __future__ import annotations

import os
import threading
import traceback
from pathlib import Path
from typing import Any


def _delete_permanently(ln: Any, folder: Path, i: int) -> None:
    ln.Artifact.get(key=f"a{i}.txt").delete(permanent=True)


def _save_same_bytes(ln: Any, folder: Path, i: int) -> None:
    ln.Artifact(folder / f"bytes{i}.txt", key=f"c{i}.txt").save()


def _save_taken_version(ln: Any, folder: Path, i: int) -> None:
    ln.Artifact(folder / f"new{i}.txt", key=f"k{i}.txt", version="1").save()


def _save_under_other_key(ln: Any, folder: Path, i: int) -> None:
    ln.Artifact(folder / f"new{i}.txt", key=f"other{i}.txt").save()


def _rename(source: str) -> Any:
    def rename(ln: Any, folder: Path, i: int) -> None:
        artifact = ln.Artifact.get(key=f"{source}{i}.txt")
        artifact.key = f"same{i}.txt"
        artifact.save()

    return rename


def _trash_latest(ln: Any, folder: Path, i: int) -> None:
    ln.Artifact.get(key=f"t{i}.txt").delete()


def _save_new_version(ln: Any, folder: Path, i: int) -> None:
    ln.Artifact(folder / f"t{i}_v2.txt", key=f"t{i}.txt").save()


def _resave_original(ln: Any, folder: Path, i: int) -> None:
    ln.Artifact(folder / f"orig{i}.txt", key=f"d{i}.txt").save()


def _delete_other_copy(ln: Any, folder: Path, i: int) -> None:
    ln.Artifact.get(key=f"e{i}.txt").delete(permanent=True)


ACTIONS = {
    "resave_original": _resave_original,
    "delete_other_copy": _delete_other_copy,
    "delete_permanently": _delete_permanently,
    "save_same_bytes": _save_same_bytes,
    "save_taken_version": _save_taken_version,
    "save_under_other_key": _save_under_other_key,
    "rename_r1": _rename("r1_"),
    "rename_r2": _rename("r2_"),
    "trash_latest": _trash_latest,
    "save_new_version": _save_new_version,
}


def work(
    instance_root: str, folder: str, action: str, rounds: int, barrier: Any, results: Any
) -> None:
    """Run ``action`` once per round: wait for the round to start, act, report, wait."""
    os.environ["BIOLAKE_INSTANCE"] = instance_root
    import biolake as ln

    ln.User.filter().count()  # connect before the first round
    try:
        for i in range(rounds):
            _round(ln, Path(folder), action, i, barrier, results)
    except threading.BrokenBarrierError:  # the test stopped early (it failed): just leave
        pass


def _round(ln: Any, folder: Path, action: str, i: int, barrier: Any, results: Any) -> None:
    barrier.wait()
    try:
        ACTIONS[action](ln, folder, i)
        outcome = "ok"
    except ln.errors.BiolakeError as error:
        outcome = type(error).__name__
    except Exception:
        outcome = "crash: " + traceback.format_exc()
    results.put((action, i, outcome))
    barrier.wait()
