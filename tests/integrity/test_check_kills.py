"""ln.check() around real processes: saves SIGKILLed mid-copy, a save still running, and a
rehash killed halfway that the next one resumes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import biolake as ln

SAVE = "import sys, biolake as ln; ln.Artifact(sys.argv[1], key=sys.argv[2]).save()"
ROUNDS = 12  # kills until one lands mid-copy; most rounds do
SIZE = 24 * 2**20  # large enough that the copy takes a while, small enough to stay fast


def start(instance, code: str, *args: str, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "BIOLAKE_INSTANCE": str(instance.root)}
    return subprocess.Popen([sys.executable, "-c", code, *args], env=env, **kwargs)


def kill(process: subprocess.Popen) -> None:
    process.kill()
    process.communicate()


def temp_entries(instance) -> list[str]:
    tmp = Path(instance.root) / ".biolake" / "tmp"
    return [n for n in os.listdir(tmp) if n.endswith(".part")] if tmp.exists() else []


def test_after_each_killed_save_only_temp_files_remain_and_repair_removes_them(
    instance, tmp_path: Path
) -> None:
    caught = 0
    for round_ in range(ROUNDS):
        source = tmp_path / f"big{round_}.bin"
        source.write_bytes(os.urandom(SIZE))
        saver = start(instance, SAVE, str(source), f"big/{round_}.bin")
        while saver.poll() is None and not temp_entries(instance):
            time.sleep(0.001)
        kill(saver)
        report = ln.check(rehash=True)
        found = {k for k, fs in report.by_kind().items() if fs}
        assert found <= {"temp_file", "stray_object"}, report.describe(return_str=True)
        if "temp_file" in found:
            caught += 1
            for finding in report.by_kind()["temp_file"]:
                assert finding.where.startswith(".biolake/tmp/") and finding.repair == "safe"
        assert ln.check(repair=True, yes=True).ok
        assert temp_entries(instance) == []
        assert os.listdir(Path(instance.root) / ".biolake" / "tmp-locks") == []
        if caught:
            break
    assert caught == 1, f"no kill landed mid-copy in {ROUNDS} rounds"


HOLD = """
import sys
from biolake.storage import LocalStorage
storage = LocalStorage(sys.argv[1])  # alive as long as the save, as an instance's storage is
temp = storage._tmp_path()
temp.write_bytes(b"half a copy")
print(temp.name, flush=True)
sys.stdin.read()
"""


def test_a_running_saves_temp_file_is_neither_reported_nor_removed(instance) -> None:
    from biolake.storage.temp_owners import STALE_AFTER

    holder = start(
        instance, HOLD, str(instance.root), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        name = holder.stdout.readline().strip()
        temp = Path(instance.root) / ".biolake" / "tmp" / name
        long_ago = os.stat(temp).st_mtime - STALE_AFTER - 60
        os.utime(temp, (long_ago, long_ago))  # however old: its process still runs
        assert ln.check(repair=True, yes=True).findings == []
        assert temp.exists()
    finally:
        kill(holder)
    report = ln.check(repair=True)
    assert [(f.kind, f.where, f.repaired) for f in report.findings] == [
        ("temp_file", f".biolake/tmp/{name}", True)
    ]
    assert not temp.exists()


REHASH = "import biolake as ln; ln.check(rehash=True, workers=1)"


def test_a_killed_rehash_resumes_where_it_stopped(instance, tmp_path: Path) -> None:
    """The object hashed last is a FIFO: the rehash blocks on it, as on a hung mount, once
    it has hashed all the others, and is killed there."""
    n = 6
    artifacts = [
        ln.Artifact(_write(tmp_path / f"f{i}.txt", f"file {i}\n"), key=f"f{i}.txt").save()
        for i in range(n)
    ]
    last = max(artifacts, key=lambda a: a.storage_key)
    stored = Path(instance.root) / last.storage_key
    content = stored.read_bytes()
    stored.unlink()
    os.mkfifo(stored)
    state = Path(instance.root) / ".biolake" / "check" / "rehash.jsonl"
    checker = start(instance, REHASH)
    try:
        while _lines(state) < n - 1:
            assert checker.poll() is None, "the rehash ended before blocking"
            time.sleep(0.01)
        assert checker.poll() is None
    finally:
        kill(checker)
    recorded = [json.loads(line)["key"] for line in state.read_text().splitlines()]
    assert sorted(recorded) == sorted(a.storage_key for a in artifacts if a is not last)
    stored.unlink()
    stored.write_bytes(content)
    report = ln.check(rehash=True)
    assert report.ok
    assert (report.counts["rehashed"], report.counts["resumed"]) == (1, n - 1)
    assert not state.exists()
    again = ln.check(rehash=True)
    assert (again.counts["rehashed"], again.counts["resumed"]) == (n, 0)


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def _lines(path: Path) -> int:
    try:
        return len(path.read_text().splitlines())
    except FileNotFoundError:
        return 0
