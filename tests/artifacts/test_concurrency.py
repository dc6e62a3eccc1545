"""Many processes writing to one instance at once: no errors, no lost or duplicated versions."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import biolake as ln

SAVER = """
import os, sys, time
import biolake as ln
path = sys.argv[1]
start = float(sys.argv[2])
while time.time() < start:
    time.sleep(0.001)
artifact = ln.Artifact(path, key="shared/data.txt").save()
print(artifact.version)
"""


def test_parallel_new_versions_of_one_key(instance, tmp_path: Path) -> None:
    import time

    n = 8
    sources = []
    for i in range(n):
        p = tmp_path / f"src{i}.txt"
        p.write_text(f"content from process {i}")
        sources.append(p)
    env = {**os.environ, "BIOLAKE_INSTANCE": str(instance.root)}
    start = time.time() + 3.0  # all processes save at the same moment
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", SAVER, str(p), str(start)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for p in sources
    ]
    outputs = [proc.communicate(timeout=120) for proc in procs]
    for proc, (_out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err
    versions = sorted(int(out.strip()) for out, _ in outputs)
    assert versions == list(range(1, n + 1))
    rows = ln.Artifact.filter(key="shared/data.txt").order_by("id").to_list()
    assert [r.version for r in rows] == [str(v) for v in range(1, n + 1)]
    assert sum(r.is_latest for r in rows) == 1
    assert rows[-1].is_latest
    assert len({r.stem for r in rows}) == 1
    assert {r.load() for r in rows} == {p.read_text() for p in sources}
