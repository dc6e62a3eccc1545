"""Saves and migrations killed with SIGKILL at random points lose nothing and corrupt nothing.

Each round forks a child that saves (a 9 MB file, a bulk save of 20 files, a folder, an AnnData)
or migrates, and kills it at a random one of its real events: a write of the copy, an fsync,
the publish of the object, before or after a commit, a SQL statement of a migration, or a
random moment (see ``crash_harness.py``). After every kill, every artifact row has its object
with its hash, ``ln.check()`` finds nothing but temp files and never-committed objects (which
``check --repair --yes`` removes), a round is saved whole or not at all, and a save that returned
is there; after a killed migration the next connect finishes it. ``scripts/crash_soak.py`` runs
thousands.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from crash_harness import kill_migrations, kill_rounds

import biolake as ln

SAVE_KILLS = 84  # per backend: with the migrations, 100 kills per backend in CI
MIGRATION_KILLS = 16


@pytest.mark.parametrize("seed", [1])
def test_killed_saves_leave_every_row_with_its_bytes(instance, tmp_path: Path, seed: int) -> None:
    tally = kill_rounds(
        instance, tmp_path / "inputs", ["file", "bulk", "folder", "anndata"], SAVE_KILLS, seed
    )
    assert sum(tally.kills.values()) == SAVE_KILLS
    assert tally.outcomes["partial"] == 0 and not tally.findings
    # every kind of point was hit, and some saves were killed before and some after the commit
    assert {k.split("/")[1] for k in tally.kills} >= {"copy", "publish", "before_commit", "timer"}
    assert tally.outcomes["absent"] > 0 and tally.outcomes["saved"] > 0
    # what the kills left, check removes; then a full rehash finds every object intact
    assert tally.leftovers["temp_file"] > 0 and tally.leftovers["stray_object"] > 0
    assert ln.check(repair=True, yes=True).ok
    final = ln.check(rehash=True)
    assert final.ok, final.findings
    # the next save works, and what was saved loads
    path = tmp_path / "after.txt"
    path.write_text("after the kills")
    assert ln.Artifact(path, key="after.txt").save().load() == "after the kills"
    for artifact in ln.Artifact.filter(key__startswith="crash/file"):
        assert artifact.cache().stat().st_size == artifact.size


def test_killed_migrations_are_finished_by_the_next_connect(instance, tmp_path: Path) -> None:
    for n in range(3):
        (tmp_path / f"{n}.txt").write_text(f"kept {n}")
        ln.Artifact(tmp_path / f"{n}.txt", key=f"kept/{n}.txt").save()
    tally = kill_migrations(instance, MIGRATION_KILLS, seed=2)
    assert not tally.findings
    assert sum(tally.kills.values()) == MIGRATION_KILLS
    assert [ln.Artifact.get(key=f"kept/{n}.txt").load() for n in range(3)] == [
        "kept 0",
        "kept 1",
        "kept 2",
    ]
