"""``check(rehash=True)``: hash every stored object that rows reference again, in threads
(BLAKE3 and file reads release the GIL), with a progress bar, resumably.

Each object hashed is appended to ``<instance>/.biolake/check/rehash.jsonl`` (one JSON line:
its key and the hash its bytes have now). An interrupted rehash (Ctrl-C, a killed process)
leaves that file behind, and the next ``check(rehash=True)`` hashes only the objects it does
not list; ``resume=False`` starts over. A rehash that completes removes the file. Stored
objects never change (their key is their content hash), so a hash from an interrupted run is
still what the bytes hash to, unless something outside biolake changed them in between.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

from biolake.core.instance import META_DIR, Instance
from biolake.errors import BiolakeError
from biolake.integrity.objects import ArtifactRow, label
from biolake.integrity.report import Finding
from biolake.storage.hashing import hash_path

__all__ = ["STATE_FILE", "rehash"]

STATE_FILE = f"{META_DIR}/check/rehash.jsonl"


def rehash(
    instance: Instance,
    rows: Sequence[ArtifactRow],
    keys: set[str],
    *,
    workers: int | None,
    resume: bool,
) -> tuple[list[Finding], dict[str, int]]:
    """Findings for the objects among ``keys`` whose bytes no longer hash to their rows' hash,
    and counts: objects ``rehashed`` now and ``resumed`` (taken from an interrupted run)."""
    state = instance.root / STATE_FILE
    done = _read_state(state) if resume else {}
    todo = sorted(k for k in keys if k not in done)
    state.parent.mkdir(parents=True, exist_ok=True)
    with open(state, "a" if resume else "w", encoding="utf-8") as log, _Progress(len(todo)) as bar:

        def record(key: str, outcome: dict[str, str]) -> None:
            done[key] = outcome
            log.write(json.dumps({"key": key, **outcome}) + "\n")
            log.flush()  # a killed check loses at most the line being written
            bar.advance()

        _hash_all(instance, todo, workers, record)
    state.unlink()
    by_key: dict[str, list[ArtifactRow]] = {}
    for row in rows:
        by_key.setdefault(row.storage_key, []).append(row)
    findings = []
    for key in sorted(keys):
        findings += _compare(key, done[key], by_key[key])
    counts = {"rehashed": len(todo), "resumed": len(keys) - len(todo)}
    return findings, counts


def _read_state(path: Path) -> dict[str, dict[str, str]]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    done = {}
    for line in text.splitlines():
        try:
            entry = json.loads(line)
            done[entry.pop("key")] = entry
        except (ValueError, KeyError, AttributeError):  # a line cut short by the interruption
            continue
    return done


def _hash_all(
    instance: Instance,
    keys: list[str],
    workers: int | None,
    record: Callable[[str, dict[str, str]], None],
) -> None:
    """Hash ``keys`` in ``workers`` threads, recording each in this thread as it completes."""
    storage = instance.storage

    def one(key: str) -> dict[str, str]:
        try:
            return {"hash": hash_path(storage.local_path(key))}
        except (OSError, BiolakeError) as exc:  # unreadable, or changed while read
            return {"error": str(exc)}

    count = workers or min(4, os.cpu_count() or 1)
    in_flight = 4 * count  # a million objects are not a million futures at once
    with ThreadPoolExecutor(max_workers=count) as pool:
        pending: dict[Future[dict[str, str]], str] = {}
        try:
            for key in keys:
                while len(pending) >= in_flight:
                    _collect(pending, record, block=True)
                pending[pool.submit(one, key)] = key
                _collect(pending, record, block=False)
            while pending:
                _collect(pending, record, block=True)
        except BaseException:  # Ctrl-C: what completed is recorded, the rest is not started
            pool.shutdown(wait=True, cancel_futures=True)
            raise


def _collect(
    pending: dict[Future[dict[str, str]], str],
    record: Callable[[str, dict[str, str]], None],
    *,
    block: bool,
) -> None:
    if not block:
        ready = [f for f in pending if f.done()]
    else:
        ready = list(wait(pending, return_when=FIRST_COMPLETED).done)
    for future in sorted(ready, key=lambda f: pending[f]):
        record(pending.pop(future), future.result())


def _compare(key: str, outcome: dict[str, str], rows: list[ArtifactRow]) -> list[Finding]:
    now = outcome.get("hash")
    wrong = [row for row in rows if row.hash != now]
    if not wrong:
        return []
    what = f"its bytes hash to {now}" if now else f"its bytes cannot be read: {outcome['error']}"
    return [
        Finding(
            kind="hash_mismatch",
            what=f"{what}, not {row.hash} (object {key})",
            where=label(row),
            fix=(
                "the stored bytes changed after the save: if you still have the original file, "
                f"move {key} out of the storage folder and save the file again; otherwise use "
                "another version (artifact.versions) or delete the artifact"
            ),
            repair="none",
            details={"uid": row.uid, "storage_key": key, "expected": row.hash, "actual": now},
        )
        for row in wrong
    ]


class _Progress:
    """A rich progress bar on stderr while objects are hashed (nothing when not a terminal)."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.bar: Any = None

    def __enter__(self) -> _Progress:
        from rich.console import Console

        console = Console(stderr=True)
        if self.total and console.is_terminal:
            from rich.progress import Progress

            self.bar = Progress(console=console, transient=True)
            self.bar.start()
            self.task = self.bar.add_task("rehashing objects", total=self.total)
        return self

    def advance(self) -> None:
        if self.bar is not None:
            self.bar.advance(self.task)

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()
