"""Races between processes on the save, delete and rename paths, on SQLite and PostgreSQL.

Two worker processes act at the same moment (a barrier) in each of ROUNDS rounds; the test
process sets up each round and checks it afterwards. 100 rounds miss a race that shows in 5 % of
rounds with a chance of 0.6 %.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from race_workers import work

import biolake as ln
from biolake.core.instance import Instance

ROUNDS = 100


class Race:
    """Two spawned workers, each running one action per round, and the test between rounds."""

    def __init__(self, instance: Instance, folder: Path, actions: list[str]) -> None:
        context = multiprocessing.get_context("spawn")
        self.barrier = context.Barrier(len(actions) + 1, timeout=120)
        self.results = context.Queue()
        self.workers = [
            context.Process(
                target=work,
                args=(str(instance.root), str(folder), a, ROUNDS, self.barrier, self.results),
            )
            for a in actions
        ]
        for worker in self.workers:
            worker.start()

    def run(
        self, setup: Callable[[int], None], check: Callable[[int, dict[str, str]], None]
    ) -> None:
        """Per round: ``setup(i)`` here, both workers act at once, then ``check(i, outcomes)``."""
        for i in range(ROUNDS):
            setup(i)
            self.barrier.wait()  # the workers act
            self.barrier.wait()  # they are done
            outcomes = {}
            for _ in self.workers:
                action, round_, outcome = self.results.get(timeout=60)
                assert round_ == i
                assert not outcome.startswith("crash"), outcome
                outcomes[action] = outcome
            check(i, outcomes)

    def close(self) -> None:
        self.barrier.abort()
        for worker in self.workers:
            worker.join(timeout=30)
            if worker.is_alive():
                worker.kill()


@pytest.fixture
def race(instance, tmp_path: Path) -> Iterator[Callable[[list[str]], Race]]:
    started: list[Race] = []

    def start(actions: list[str]) -> Race:
        started.append(Race(instance, tmp_path, actions))
        return started[-1]

    yield start
    for r in started:
        r.close()


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_permanent_delete_never_removes_bytes_a_concurrent_save_registers(
    instance, race, tmp_path: Path
) -> None:
    def setup(i: int) -> None:
        source = _write(tmp_path / f"bytes{i}.txt", f"shared bytes of round {i}")
        ln.Artifact(source, key=f"a{i}.txt").save()

    def check(i: int, outcomes: dict[str, str]) -> None:
        assert outcomes == {"delete_permanently": "ok", "save_same_bytes": "ok"}
        saved = ln.Artifact.get(key=f"c{i}.txt")
        assert saved.load() == f"shared bytes of round {i}", f"round {i}: bytes lost"

    race(["delete_permanently", "save_same_bytes"]).run(setup, check)


def test_failed_save_never_removes_bytes_a_concurrent_save_registers(
    instance, race, tmp_path: Path
) -> None:
    def setup(i: int) -> None:
        ln.Artifact(_write(tmp_path / f"old{i}.txt", f"v1 {i}"), key=f"k{i}.txt").save()
        _write(tmp_path / f"new{i}.txt", f"new bytes of round {i}")

    def check(i: int, outcomes: dict[str, str]) -> None:
        # Version "1" of k{i} is taken: that save fails and cleans up what it stored.
        assert outcomes == {"save_taken_version": "ValidationError", "save_under_other_key": "ok"}
        other = ln.Artifact.get(key=f"other{i}.txt")
        assert other.load() == f"new bytes of round {i}", f"round {i}: bytes lost"
        assert ln.Artifact.filter(key=f"k{i}.txt").count() == 1

    race(["save_taken_version", "save_under_other_key"]).run(setup, check)


def test_a_resave_repairs_a_damaged_object_while_another_copy_is_deleted(
    instance, race, tmp_path: Path
) -> None:
    """The repair (a replace of the damaged object) and the permanent delete of the other row
    sharing it both run under the bytes' lock: the re-saved artifact always ends up intact."""
    import os

    def setup(i: int) -> None:
        source = _write(tmp_path / f"orig{i}.txt", f"original bytes of round {i}")
        damaged = ln.Artifact(source, key=f"d{i}.txt").save()
        ln.Artifact(source, key=f"e{i}.txt").save()
        path = instance.storage.local_path(damaged.storage_key)
        os.chmod(path, 0o644)
        with open(path, "r+b") as f:
            f.write(b"O")  # same size, in place
        os.chmod(path, 0o444)

    def check(i: int, outcomes: dict[str, str]) -> None:
        assert outcomes == {"resave_original": "ok", "delete_other_copy": "ok"}
        repaired = ln.Artifact.get(key=f"d{i}.txt")
        assert repaired.load() == f"original bytes of round {i}", f"round {i}: not repaired"
        assert ln.Artifact.filter(key=f"e{i}.txt").count() == 0

    race(["resave_original", "delete_other_copy"]).run(setup, check)


def test_two_renames_to_one_key_leave_one_latest_version(instance, race, tmp_path: Path) -> None:
    def setup(i: int) -> None:
        ln.Artifact(_write(tmp_path / f"r1_{i}.txt", f"one {i}"), key=f"r1_{i}.txt").save()
        ln.Artifact(_write(tmp_path / f"r2_{i}.txt", f"two {i}"), key=f"r2_{i}.txt").save()

    def check(i: int, outcomes: dict[str, str]) -> None:
        assert sorted(outcomes.values()) == ["ValidationError", "ok"], outcomes
        rows = ln.Artifact.filter(key=f"same{i}.txt").to_list()
        assert len(rows) == 1, f"round {i}: {rows}"
        assert ln.Artifact.get(key=f"same{i}.txt").is_latest

    race(["rename_r1", "rename_r2"]).run(setup, check)


def test_trashing_the_latest_version_while_a_new_one_is_saved(instance, race, tmp_path) -> None:
    """Both change which version is latest: the new version is saved, one version is latest."""

    def setup(i: int) -> None:
        ln.Artifact(_write(tmp_path / f"t{i}_v1.txt", f"v1 {i}"), key=f"t{i}.txt").save()
        _write(tmp_path / f"t{i}_v2.txt", f"v2 {i}")

    def check(i: int, outcomes: dict[str, str]) -> None:
        assert outcomes == {"trash_latest": "ok", "save_new_version": "ok"}
        versions = ln.Artifact.filter(key=f"t{i}.txt", visibility__in=["default", "trash"])
        latest = [a for a in versions if a.is_latest]
        assert len(latest) == 1, f"round {i}: {list(versions)}"

    race(["trash_latest", "save_new_version"]).run(setup, check)
