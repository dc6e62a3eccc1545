"""Kill saving processes with SIGKILL at chosen points, and audit the instance after each kill.

A save runs in a child process forked from a server that has imported biolake already (fast:
no interpreter start per kill). The child connects, arms a kill point, saves, and exits. A kill
point is a real event in the unmodified library, seen through ``sys.setprofile``:

- ``copy``: the nth write of bytes into the temp file (os.write, pwrite, sendfile, ...);
- ``fsync``: just after the nth fsync (the copy is durable, not yet published);
- ``publish``: just after the nth link/rename into ``.biolake/objects`` (the object is there,
  its row is not);
- ``before_commit`` / ``after_commit``: just before or after the nth database commit;
- ``statement``: just before the nth SQL statement (for migrations);
- ``timer``: none of these, but a SIGKILL from the parent after a random delay.

A calibration run of each scenario counts the events, so that the nth is drawn among those
that happen. After each kill, :func:`audit` checks that every artifact row has its object with
its hash (hashing each new object once), and ``ln.check()`` must find nothing but what a killed
save may leave and ``check(repair=True, yes=True)`` removes: temp files and objects whose row
was never committed. Used by
``tests/artifacts/test_crash_safety.py`` (a small budget) and ``scripts/crash_soak.py``.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MEDIUM = 9 * 1024 * 1024  # above one 8 MiB chunk: the pipelined copy with writer threads

WRITES = {"write", "pwrite", "pwritev", "sendfile", "copy_file_range", "writelines"}
LINKS = {"link", "rename", "replace"}
POINTS = ("copy", "fsync", "publish", "before_commit", "after_commit")
MIGRATION_POINTS = ("statement", "before_commit", "after_commit")


def _point_of(frame: Any, event: str, arg: Any) -> str | None:
    """The kill point an interpreter event is, if any."""
    if event in ("c_call", "c_return"):
        name = getattr(arg, "__name__", "")
        owner = getattr(getattr(arg, "__self__", None), "__name__", "")
        if event == "c_call" and name in WRITES:
            return "copy"
        if event == "c_return" and name == "fsync":
            return "fsync"
        if event == "c_return" and name in LINKS and owner in ("posix", "os"):
            return "publish"
        owner_type = type(getattr(arg, "__self__", None)).__name__
        if name == "commit" and owner_type == "Connection":  # sqlite3
            return "before_commit" if event == "c_call" else "after_commit"
        if event == "c_call" and name in ("execute", "executemany") and owner_type == "Cursor":
            return "statement"
        return None
    if event in ("call", "return") and "psycopg" in frame.f_code.co_filename:
        name, file = frame.f_code.co_name, frame.f_code.co_filename
        if name == "commit" and file.endswith("connection.py"):
            return "before_commit" if event == "call" else "after_commit"
        if event == "call" and name in ("execute", "executemany") and file.endswith("cursor.py"):
            return "statement"
    return None


class _Probe:
    """Counts kill points, or SIGKILLs this process at the nth occurrence of one."""

    def __init__(self, point: str | None, nth: int) -> None:
        self.point, self.nth = point, nth
        self.counts: Counter[str] = Counter()
        self.lock = threading.Lock()

    def __call__(self, frame: Any, event: str, arg: Any) -> None:
        found = _point_of(frame, event, arg)
        if found is None:
            return
        with self.lock:
            self.counts[found] += 1
            if found == self.point and self.counts[found] >= self.nth:
                os.kill(os.getpid(), signal.SIGKILL)

    def arm(self) -> None:
        threading.setprofile(self)  # the writer threads of a large copy too
        sys.setprofile(self)

    def disarm(self) -> None:
        sys.setprofile(None)
        threading.setprofile(None)  # type: ignore[arg-type]


# --- scenarios: what a child saves in round i ---------------------------------------------------


def prepare(scenario: str, folder: Path, i: int) -> Path:
    """Write round ``i``'s input for ``scenario`` (unique bytes, so every round stores anew)."""
    folder.mkdir(parents=True, exist_ok=True)
    if scenario == "file":
        path = folder / f"medium{i}.bin"
        with open(path, "wb") as handle:
            handle.write(f"round {i}\n".encode())
            handle.write(_filler(MEDIUM))
        return path
    if scenario == "bulk":
        path = folder / f"bulk{i}"
        path.mkdir(exist_ok=True)
        for j in range(20):
            (path / f"{j}.txt").write_text(f"round {i} file {j}\n")
        return path
    if scenario == "folder":
        path = folder / f"folder{i}"
        (path / "sub").mkdir(parents=True, exist_ok=True)
        for j in range(5):
            (path / "sub" / f"{j}.csv").write_text(f"a,b\n{i},{j}\n")
        return path
    if scenario == "anndata":
        return folder  # built in memory by the child
    raise ValueError(scenario)


_FILLER: bytes | None = None


def _filler(size: int) -> bytes:
    global _FILLER
    if _FILLER is None or len(_FILLER) != size:
        _FILLER = random.Random(7).randbytes(size)
    return _FILLER


def expected_keys(scenario: str, i: int) -> list[str]:
    """The keys round ``i`` saves, all together or none."""
    if scenario == "bulk":
        return [f"crash/bulk{i}/{j}.txt" for j in range(20)]
    suffix = {"file": ".bin", "folder": "", "anndata": ".h5ad"}[scenario]
    return [f"crash/{scenario}{i}{suffix}"]


def _save(ln: Any, scenario: str, source: Path, i: int) -> None:
    if scenario == "file":
        ln.Artifact(source, key=f"crash/file{i}.bin").save()
    elif scenario == "folder":
        ln.Artifact(source, key=f"crash/folder{i}").save()
    elif scenario == "bulk":
        ln.save([ln.Artifact(p, key=f"crash/bulk{i}/{p.name}") for p in sorted(source.iterdir())])
    elif scenario == "anndata":
        import anndata as ad
        import numpy as np
        import pandas as pd

        x = np.arange(200 * 50, dtype="float32").reshape(200, 50) + i
        obs = pd.DataFrame(
            {"cell_type": ["T cell", "B cell"] * 100}, index=[str(n) for n in range(200)]
        )
        adata = ad.AnnData(x, obs=obs)
        ln.Artifact.from_anndata(adata, key=f"crash/anndata{i}.h5ad").save()


def child(
    root: str, scenario: str, source: str, i: int, point: str | None, nth: int, out: Any
) -> None:
    """The saving process: connect, arm the kill point, save, report the counts."""
    import biolake as ln

    ln.setup.connect(root)
    ln.Artifact.filter().count()  # connected before the probe: only the save is measured
    probe = _Probe(point, nth)
    probe.arm()
    try:
        _save(ln, scenario, Path(source), i)
    finally:
        probe.disarm()
    out.send(dict(probe.counts))
    out.close()


def migrate_child(root: str, point: str | None, nth: int, out: Any) -> None:
    """Open an instance whose schema is behind: the connect migrates it."""
    import biolake as ln

    probe = _Probe(point, nth)
    probe.arm()
    try:
        ln.setup.connect(root)
    finally:
        probe.disarm()
    out.send(dict(probe.counts))
    out.close()


# --- the parent -----------------------------------------------------------------------------


def context() -> Any:
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["biolake.registries", "biolake.storage.local", "anndata"])
    return ctx


def run_child(
    ctx: Any, target: Any, args: tuple[Any, ...], timer: float | None = None
) -> tuple[int, dict[str, int]]:
    """Run ``target`` in a child; returns its exit code (-9 when killed) and its counts."""
    receive, send = ctx.Pipe(duplex=False)
    process = ctx.Process(target=target, args=(*args, send))
    process.start()
    send.close()
    if timer is not None:
        process.join(timer)
        if process.is_alive():
            os.kill(process.pid, signal.SIGKILL)
    process.join(120)
    if process.is_alive():  # a hang is a finding too
        process.kill()
        raise AssertionError(f"{target.__name__}{args[1:]} hung")
    try:
        counts = receive.recv() if receive.poll() else {}
    except EOFError:  # killed before it could send
        counts = {}
    receive.close()
    return process.exitcode, counts


@dataclass
class Audit:
    rows: int = 0
    missing: list[str] = field(default_factory=list)  # rows whose object is gone
    corrupt: list[str] = field(default_factory=list)  # rows whose object has another hash
    unreferenced: list[str] = field(default_factory=list)  # objects no row references
    temp: list[str] = field(default_factory=list)  # entries in the temp area
    partial: list[str] = field(default_factory=list)  # rounds saved in part


def audit(instance: Any, checked: set[str]) -> Audit:
    """Every artifact row has its object with its hash; ``checked`` holds the keys of objects
    already rehashed (stored objects never change), so each round hashes only new ones."""
    from sqlalchemy import text

    from biolake.storage.hashing import hash_path

    with instance.db.engine.connect() as conn:
        rows = conn.execute(text("SELECT storage_key, hash FROM artifacts")).all()
    result = Audit(rows=len(rows))
    referenced = set()
    for key, hash_ in rows:
        referenced.add(key)
        try:
            path = instance.storage.local_path(key)
        except FileNotFoundError:
            result.missing.append(key)
            continue
        if key not in checked:
            if hash_path(path) != hash_:
                result.corrupt.append(key)
            else:
                checked.add(key)
    result.unreferenced = sorted(set(instance.storage.iter_keys()) - referenced)
    tmp = Path(instance.root) / ".biolake" / "tmp"
    result.temp = sorted(p.name for p in tmp.iterdir()) if tmp.is_dir() else []
    return result


def round_outcome(instance: Any, scenario: str, i: int) -> str:
    """``saved`` (every key of the round), ``absent`` (none) or ``partial``."""
    from sqlalchemy import text

    keys = expected_keys(scenario, i)
    with instance.db.engine.connect() as conn:
        found = {
            k
            for k in keys
            if conn.execute(text("SELECT 1 FROM artifacts WHERE key = :k"), {"k": k}).first()
        }
    return "saved" if len(found) == len(keys) else "absent" if not found else "partial"


LEFTOVERS = ("temp_file", "stray_object")  # what a killed save may leave behind


def check_after_kill(where: str, tally: Tally) -> None:
    """``ln.check()`` finds only leftovers; what else it finds becomes a finding."""
    import biolake as ln

    report = ln.check()
    seen: Counter[str] = Counter()
    for finding in report.findings:
        if finding.kind in LEFTOVERS:
            seen[finding.kind] += 1
        else:
            tally.findings.append(f"{where}: check found {finding.kind}: {finding.what}")
    for kind, count in seen.items():  # the most seen after one kill
        tally.leftovers[kind] = max(tally.leftovers[kind], count)


@dataclass
class Tally:
    kills: Counter[str] = field(default_factory=Counter)  # by scenario/point
    completed: int = 0  # rounds whose kill point came after the save
    outcomes: Counter[str] = field(default_factory=Counter)
    findings: list[str] = field(default_factory=list)
    leftovers: Counter[str] = field(default_factory=Counter)  # the most check saw after a kill

    def summary(self) -> str:
        total = sum(self.kills.values())
        by = ", ".join(f"{k} {v}" for k, v in sorted(self.kills.items()))
        return (
            f"{total} kills ({by}); {self.completed} saves outlived their kill point; outcomes "
            f"{dict(self.outcomes)}; most leftovers after one kill {dict(self.leftovers)}; "
            f"{len(self.findings)} findings"
        )


def calibrate(ctx: Any, root: str, folder: Path, scenario: str, i: int) -> dict[str, int]:
    source = prepare(scenario, folder, i)
    code, counts = run_child(ctx, child, (root, scenario, str(source), i, None, 0))
    assert code == 0, f"the calibration save of {scenario} failed with exit code {code}"
    return counts


def kill_rounds(
    instance: Any,
    folder: Path,
    scenarios: list[str],
    kills: int,
    seed: int = 0,
    tally: Tally | None = None,
) -> Tally:
    """``kills`` rounds over ``scenarios``: each round saves once in a child killed at a random
    point, then audits. Raises AssertionError on the first finding that loses or corrupts data."""
    rng = random.Random(seed)
    ctx = context()
    root = str(instance.root)
    tally = tally or Tally()
    checked: set[str] = set()
    counts = {s: calibrate(ctx, root, folder, s, -1 - n) for n, s in enumerate(scenarios)}
    durations = {s: 0.5 for s in scenarios}
    for i in range(kills):
        scenario = scenarios[i % len(scenarios)]
        points = [p for p in POINTS if counts[scenario].get(p)] + ["timer"]
        point = rng.choice(points)
        source = prepare(scenario, folder, i)
        if point == "timer":
            started = time.monotonic()
            code, _ = run_child(
                ctx,
                child,
                (root, scenario, str(source), i, None, 0),
                rng.uniform(0, durations[scenario]),
            )
            if code == 0:
                durations[scenario] = max(durations[scenario], time.monotonic() - started)
        else:
            nth = rng.randint(1, counts[scenario][point])
            code, _ = run_child(ctx, child, (root, scenario, str(source), i, point, nth))
        tally.kills[f"{scenario}/{point}"] += 1
        tally.completed += code == 0
        outcome = round_outcome(instance, scenario, i)
        tally.outcomes[outcome] += 1
        found = audit(instance, checked)
        for kind in ("missing", "corrupt"):
            for key in getattr(found, kind):
                tally.findings.append(f"round {i} {scenario}/{point}: {kind} object {key}")
        if outcome == "partial":
            tally.findings.append(f"round {i} {scenario}/{point}: saved in part")
        if code == 0 and outcome != "saved":
            tally.findings.append(f"round {i} {scenario}/{point}: the save returned but is gone")
        check_after_kill(f"round {i} {scenario}/{point}", tally)
        assert not tally.findings, tally.findings
        _remove_inputs(source)
    return tally


def _remove_inputs(source: Path) -> None:
    import shutil

    if source.is_dir() and source.name.startswith(("bulk", "folder")):
        shutil.rmtree(source, ignore_errors=True)
    elif source.is_file():
        source.unlink(missing_ok=True)


# --- migrations -----------------------------------------------------------------------------

OLD_REVISION = "0004"  # two migrations behind head: both are replayed on each connect


def downgrade(instance: Any, revision: str = OLD_REVISION) -> None:
    """Take the instance's schema back to ``revision`` (its data stays)."""
    from alembic import command
    from alembic.config import Config

    from biolake.core.schema.migrate import MIGRATIONS

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with instance.db.engine.connect() as conn:
        config.attributes["connection"] = conn
        if instance.db.is_sqlite:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        command.downgrade(config, revision)
        conn.commit()


def stored_revision(instance: Any) -> str | None:
    from sqlalchemy import text

    with instance.db.engine.connect() as conn:
        return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def kill_migrations(instance: Any, kills: int, seed: int = 0, tally: Tally | None = None) -> Tally:
    """``kills`` rounds: the schema is taken back, a connecting child is killed while it
    migrates, then a fresh connect must finish the migration with every artifact intact."""
    from biolake.core.schema import HEAD_REVISION

    rng = random.Random(seed)
    ctx = context()
    root = str(instance.root)
    tally = tally or Tally()
    checked: set[str] = set()
    before = audit(instance, checked)
    downgrade(instance)
    code, counts = run_child(ctx, migrate_child, (root, None, 0))
    assert code == 0 and stored_revision(instance) == HEAD_REVISION
    duration = 1.0
    for i in range(kills):
        downgrade(instance)
        point = rng.choice([p for p in MIGRATION_POINTS if counts.get(p)] + ["timer"])
        if point == "timer":
            code, _ = run_child(ctx, migrate_child, (root, None, 0), rng.uniform(0, duration))
        else:
            nth = rng.randint(1, counts[point])
            code, _ = run_child(ctx, migrate_child, (root, point, nth))
        tally.kills[f"migration/{point}"] += 1
        tally.completed += code == 0
        revision = stored_revision(instance)
        tally.outcomes[f"migration left at {revision}"] += 1
        if revision not in (OLD_REVISION, HEAD_REVISION):
            tally.findings.append(f"round {i} migration/{point}: schema left at {revision}")
        code, _ = run_child(ctx, migrate_child, (root, None, 0))  # the next connect
        if code != 0 or stored_revision(instance) != HEAD_REVISION:
            tally.findings.append(f"round {i} migration/{point}: the next connect failed ({code})")
        after = audit(instance, checked)
        if after.rows != before.rows or after.missing or after.corrupt:
            tally.findings.append(f"round {i} migration/{point}: artifacts changed: {after}")
        check_after_kill(f"round {i} migration/{point}", tally)
        assert not tally.findings, tally.findings
    return tally
