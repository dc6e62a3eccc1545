"""An array job: 64 tracked processes at once against one instance, as a cluster runs them."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import biolake as ln

TASKS = 64

TASK = '''
    """One task of the array job: normalise one sample."""
    import os
    import biolake as ln

    task = int(os.environ["SLURM_ARRAY_TASK_ID"])
    ln.track(params={"task": task}, project="Array screen")

    @ln.tracked()
    def normalise(task: int) -> ln.Artifact:
        """Scale one sample by the shared reference."""
        reference = [float(v) for v in ln.Artifact.get(key="reference.txt").load().split()]
        with open(f"sample_{task}.txt", "w") as out:
            out.write(" ".join(str(v * (task + 1)) for v in reference))
        return ln.Artifact(f"sample_{task}.txt", key=f"array/sample_{task}.txt").save()

    print(f"task {task}:", normalise(task).uid)
    ln.finish()
'''


def test_64_tasks_of_one_array_job_share_an_instance(instance, tmp_path) -> None:
    (tmp_path / "reference.txt").write_text("1.0 2.0")
    reference = ln.Artifact(tmp_path / "reference.txt", key="reference.txt").save()
    (tmp_path / "task.py").write_text(textwrap.dedent(TASK))
    base = {**os.environ, "BIOLAKE_INSTANCE": str(instance.root), "SLURM_ARRAY_JOB_ID": "777"}
    base.pop("PYTHONDONTWRITEBYTECODE", None)  # 64 compilations of biolake would dominate
    tasks = [
        subprocess.Popen(
            [sys.executable, "task.py"],
            cwd=tmp_path,
            env={**base, "SLURM_JOB_ID": str(778 + i), "SLURM_ARRAY_TASK_ID": str(i)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(TASKS)
    ]
    outputs = [task.communicate(timeout=600) for task in tasks]
    failed = [(i, err) for i, (task, (_, err)) in enumerate(zip(tasks, outputs, strict=True))
              if task.returncode != 0 or "Traceback" in err or "could not" in err]  # fmt: skip
    assert not failed, failed[:3]
    # Zero duplicates: one transform per script and function, one project, one environment.
    assert ln.Transform.filter(key="task.py").count() == 1
    assert ln.Transform.filter(key="task.py:normalise").count() == 1
    assert ln.Project.filter(name="Array screen").count() == 1
    runs = ln.Run.filter(scheduler__group="slurm:777", transform__key="task.py")
    assert runs.count() == TASKS and runs.filter(status="completed").count() == TASKS
    assert sorted(r.params["task"] for r in runs) == list(range(TASKS))
    assert len({r.environment_id for r in runs}) == 1
    calls = ln.Run.filter(transform__key="task.py:normalise", status="completed")
    assert calls.count() == TASKS
    assert ln.Run.filter(inputs=reference).count() == TASKS
    assert ln.Artifact.filter(key__startswith="array/").count() == TASKS
    assert sorted(reference.descendants(), key=lambda a: a.key) == sorted(
        ln.Artifact.filter(key__startswith="array/"), key=lambda a: a.key
    )
