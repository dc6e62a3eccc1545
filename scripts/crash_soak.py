"""Kill saving and migrating processes thousands of times, and audit after every kill.

Usage: python scripts/crash_soak.py [--kills N] [--migration-kills N] [--postgres URL] [--seed S]

The same harness as ``tests/artifacts/test_crash_safety.py`` (``tests/artifacts/
crash_harness.py``), at a large budget: saves of a 9 MB file, bulk saves of 20 files, folders
and AnnData, each killed with SIGKILL at a random real event (a write of the copy, an fsync, the
publish, before or after a commit) or a random moment, then schema migrations killed the same
way (on PostgreSQL in batches, each on a new database). Stops at the first finding; prints the
kills by scenario and point, what each round left, the leftovers (unreferenced objects, temp
files) that ``ln.check --repair --yes`` removes, and a full rehash afterwards.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "artifacts"))

from crash_harness import Tally, audit, kill_migrations, kill_rounds

import biolake as ln

SCENARIOS = ["file", "bulk", "folder", "anndata"]
# PostgreSQL keeps a slot for every dropped column (at most 1,600 per table, even after VACUUM
# FULL), and each downgrade-upgrade round drops and adds the columns of two migrations: so the
# migration rounds run on a fresh database every this many rounds.
PG_MIGRATION_ROUNDS = 40


def _postgres_database(url: str) -> str:
    import psycopg

    name = f"biolake_soak_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"{url.rsplit('/', 1)[0]}/{name}"


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="crash_soak")
    parser.add_argument("--kills", type=int, default=2000)
    parser.add_argument("--migration-kills", type=int, default=200)
    parser.add_argument("--postgres", metavar="URL", help="run on a new database of this server")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        db = _postgres_database(args.postgres) if args.postgres else None
        instance = ln.setup.init(storage=Path(tmp) / "data", db=db, name="soak")
        tally = Tally()
        start = time.monotonic()
        kill_rounds(instance, Path(tmp) / "inputs", SCENARIOS, args.kills, args.seed, tally)
        left = audit(instance, set())
        backend = "PostgreSQL" if db else "SQLite"
        print(f"{backend}, seed {args.seed}, {time.monotonic() - start:.0f} s")
        print(tally.summary())
        print(
            f"left: {left.rows} rows, {len(left.missing)} missing and {len(left.corrupt)} corrupt "
            f"objects, {len(left.unreferenced)} unreferenced objects, {len(left.temp)} temp entries"
        )
        repaired = ln.check(repair=True, yes=True)
        print(f"check --repair --yes: {len(repaired.findings)} findings repaired, ok={repaired.ok}")
        final = ln.check(rehash=True)
        print(f"check --rehash afterwards: ok={final.ok}, {len(final.findings)} findings")
        migrations = Tally()
        batch = PG_MIGRATION_ROUNDS if args.postgres else args.migration_kills
        for n, start in enumerate(range(0, args.migration_kills, batch)):
            db = _postgres_database(args.postgres) if args.postgres else None
            migrating = ln.setup.init(storage=Path(tmp) / f"migrating{n}", db=db, name=f"mig{n}")
            for i in range(3):
                (Path(tmp) / f"kept{i}.txt").write_text(f"kept {i} in {n}")
                ln.Artifact(Path(tmp) / f"kept{i}.txt", key=f"kept/{i}.txt").save()
            rounds = min(batch, args.migration_kills - start)
            kill_migrations(migrating, rounds, args.seed + n, migrations)
        print(migrations.summary())
        ln.setup.close()


if __name__ == "__main__":
    main(sys.argv[1:])
