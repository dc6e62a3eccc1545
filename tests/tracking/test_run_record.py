"""What a run records besides its status: report, environment, git, scheduler, heartbeat, and
whether it repeats an earlier run. Real scripts in subprocesses, on each backend."""

from __future__ import annotations

import datetime as dt
import os
import socket
import subprocess
import sys
import textwrap

import pytest
from test_run_context import git
from test_track import run_script

import biolake as ln
from biolake.errors import ValidationError


def _script_run(name: str) -> ln.Run:
    return ln.Run.filter(transform__key=name).order_by("-id").first()


def test_the_report_holds_stdout_stderr_and_logs_and_the_user_still_sees_them(
    instance, tmp_path
) -> None:
    code = """
        import logging, sys
        import biolake as ln
        ln.track()
        print("normalising 3 samples")
        print("sample 2 has no reads", file=sys.stderr)
        logging.getLogger("biolake").warning("a biolake warning")
        ln.finish()
    """
    done = run_script(instance, tmp_path, "job.py", code)
    assert done.returncode == 0, done.stderr
    assert "normalising 3 samples" in done.stdout and "sample 2 has no reads" in done.stderr
    run = _script_run("job.py")
    report = run.report.load()
    assert report.splitlines() == [
        f"→ started run {run.uid} of job.py (version 1)",
        "normalising 3 samples",
        "sample 2 has no reads",
        "→ a biolake warning",
    ]
    assert run.report.key == f".biolake/reports/{run.uid}.txt"
    assert (run.report.kind, run.report.visibility) == ("report", "hidden")
    # Not an output, not in ordinary listings or searches.
    assert run.outputs.count() == 0
    assert ln.Artifact.filter().count() == 0
    assert ln.Artifact.search("report").count() == 0
    assert ln.Artifact.filter(visibility="hidden", kind="report").one() == run.report
    assert not list((instance.root / ".biolake" / "reports").iterdir())  # the log is registered


def test_an_errored_run_has_the_traceback_in_its_report(instance, tmp_path) -> None:
    code = "import biolake as ln\nln.track()\nprint('step 1')\n{}['missing']\n"
    assert run_script(instance, tmp_path, "fails.py", code).returncode == 1
    run = _script_run("fails.py")
    report = run.report.load()
    assert report.splitlines()[1:3] == ["step 1", "Traceback (most recent call last):"]
    assert "KeyError: 'missing'" in report and "KeyError: 'missing'" in run.status_reason


def test_a_killed_run_keeps_the_report_it_was_writing(instance, tmp_path) -> None:
    code = """
        import os, signal
        import biolake as ln
        ln.track()
        print("loaded 10 samples")
        os.kill(os.getpid(), signal.SIGKILL)
    """
    assert run_script(instance, tmp_path, "killed.py", code).returncode != 0
    ln.setup.connect(instance.root)  # connecting finds the run whose process is gone
    run = _script_run("killed.py")
    assert run.status == "crashed"
    assert run.report.load().endswith(" of killed.py (version 1)\nloaded 10 samples\n")


def test_runs_in_one_environment_share_one_environment_artifact(instance, tmp_path) -> None:
    for name in ("a.py", "b.py"):
        done = run_script(instance, tmp_path, name, "import biolake as ln\nln.track()\n")
        assert done.returncode == 0, done.stderr
    first, second = _script_run("a.py"), _script_run("b.py")
    assert first.environment is not None and first.environment == second.environment
    environment = first.environment
    assert environment.key.startswith(".biolake/environments/")
    assert (environment.kind, environment.visibility) == ("environment", "hidden")
    packages = environment.load()
    assert f"pytest=={pytest.__version__}" in packages.splitlines()
    assert ln.Artifact.filter().count() == 0
    # A function called outside any script run records the environment too.

    @ln.tracked()
    def step() -> None:
        pass

    step()
    assert ln.Run.filter(transform__kind="function").one().environment == environment


def test_a_run_records_the_git_state_of_its_script(instance, tmp_path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.email", "lab@example.org")
    git(repo, "config", "user.name", "Lab")
    git(repo, "remote", "add", "origin", "https://alice:secret@git.example.org/lab/analysis.git")
    (repo / "job.py").write_text("import biolake as ln\nln.track()\n")
    (repo / "config.txt").write_text("threshold = 1\n")
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "first")
    head = git(repo, "rev-parse", "HEAD")
    assert run_script(instance, repo, "job.py", "import biolake as ln\nln.track()\n")
    run = _script_run("job.py")
    assert (run.git_commit, run.git_branch, run.git_dirty) == (head, "main", False)
    assert run.git_remote == "https://git.example.org/lab/analysis.git"  # no credentials
    (repo / "config.txt").write_text("threshold = 2\n")
    assert run_script(instance, repo, "job.py", "import biolake as ln\nln.track()\n")
    run = _script_run("job.py")
    assert run.git_dirty is True and "+threshold = 2" in run.git_diff


def test_the_tasks_of_one_array_job_are_grouped(instance, tmp_path) -> None:
    code = "import biolake as ln\nln.track()\n"
    for task in ("0", "1"):
        env = {
            "SLURM_JOB_ID": f"12{task}",
            "SLURM_ARRAY_JOB_ID": "120",
            "SLURM_ARRAY_TASK_ID": task,
        }
        done = run_script(instance, tmp_path, "task.py", code, env=env)
        assert done.returncode == 0, done.stderr
    tasks = ln.Run.filter(scheduler__group="slurm:120").order_by("id")
    assert [r.scheduler["array_task_id"] for r in tasks] == ["0", "1"]
    assert {r.scheduler["scheduler"] for r in tasks} == {"slurm"}


def test_a_live_run_beats_and_a_silent_run_of_another_host_is_crashed(instance, tmp_path) -> None:
    code = "import time\nimport biolake as ln\nln.track()\ntime.sleep(0.8)\n"
    done = run_script(instance, tmp_path, "slow.py", code, env={"BIOLAKE_HEARTBEAT_SECONDS": "0.1"})
    assert done.returncode == 0, done.stderr
    run = _script_run("slow.py")
    assert run.heartbeat_at > run.started_at + dt.timedelta(seconds=0.1)

    transform = ln.Transform(key="remote.py").save()
    now = dt.datetime.now(dt.UTC)
    lost, alive = ln.Run(transform=transform), ln.Run(transform=transform)
    for run, beat in ((lost, now - dt.timedelta(hours=1)), (alive, now)):
        run.status, run.pid, run.host, run.heartbeat_at = "started", 42, "node-7", beat
        run.save()
    assert socket.gethostname() != "node-7"
    assert ln.Run.mark_crashed() == 1
    lost, alive = ln.Run.get(lost.id), ln.Run.get(alive.id)
    assert (lost.status, alive.status) == ("crashed", "started")
    assert "no heartbeat from its process (pid 42 on node-7)" in lost.status_reason


def test_keys_under_dot_biolake_are_reserved(instance, tmp_path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("x")
    with pytest.raises(ValidationError, match="holds biolake's own records"):
        ln.Artifact(path, key=".biolake/reports/notes.txt")
    assert (
        ln.Artifact(path, key=".biolake-notes/notes.txt").save().key == ".biolake-notes/notes.txt"
    )


REPEATABLE = """
    import sys
    import biolake as ln
    ln.track(params={"n": int(sys.argv[1])})
    raw = ln.Artifact.get(key="raw.csv")
    raw.load()
    ln.finish()
"""


def test_identical_runs_share_a_fingerprint(instance, tmp_path) -> None:
    (tmp_path / "raw.csv").write_text("a\n1\n")
    ln.Artifact(tmp_path / "raw.csv", key="raw.csv").save()
    (tmp_path / "job.py").write_text(textwrap.dedent(REPEATABLE))
    env = {**os.environ, "BIOLAKE_INSTANCE": str(instance.root)}
    for n in ("1", "1", "2"):
        subprocess.run([sys.executable, "job.py", n], cwd=tmp_path, env=env, check=True, timeout=60)
    runs = ln.Run.filter(transform__key="job.py").order_by("id").to_list()
    assert runs[0].fingerprint == runs[1].fingerprint != runs[2].fingerprint
    (tmp_path / "raw.csv").write_text("a\n2\n")  # a new version of the input
    ln.Artifact(tmp_path / "raw.csv", key="raw.csv").save()
    subprocess.run([sys.executable, "job.py", "1"], cwd=tmp_path, env=env, check=True, timeout=60)
    assert _script_run("job.py").fingerprint != runs[0].fingerprint


CACHED = """
    import sys
    import biolake as ln

    @ln.tracked(cache=True)
    def normalise(key: str) -> ln.Artifact:
        open("calls.txt", "a").write("x")
        df = ln.Artifact.get(key=key).load()
        return ln.Artifact.from_dataframe(df / df.sum(), key="normalised.parquet").save()

    print(normalise("raw.csv").uid)
"""


def test_a_cached_call_returns_the_earlier_result_only_while_it_is_valid(
    instance, tmp_path
) -> None:
    (tmp_path / "raw.csv").write_text("a\n1\n3\n")
    ln.Artifact(tmp_path / "raw.csv", key="raw.csv").save()
    calls = tmp_path / "calls.txt"

    def call() -> str:
        done = run_script(instance, tmp_path, "cached.py", CACHED)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    first = call()
    assert (call(), calls.read_text()) == (first, "x")  # served from the earlier run
    (tmp_path / "raw.csv").write_text("a\n2\n3\n")
    ln.Artifact(tmp_path / "raw.csv", key="raw.csv").save()  # a new input version: run again
    second = call()
    assert second != first and calls.read_text() == "xx"
    assert call() == second and calls.read_text() == "xx"
    output = ln.Artifact.get(second)
    stored = instance.storage.local_path(output.storage_key)
    stored.unlink()  # the earlier output is gone: run again (which stores it again)
    assert call() == second and calls.read_text() == "xxx"
    assert ln.Artifact.get(second).load().equals(output.load())


def test_a_prompt_or_a_graceful_sigterm_handler_keeps_the_run_open(instance, tmp_path) -> None:
    """An error typed at a prompt, and a SIGTERM the script's own handler takes, do not end
    the run: its later saves still belong to it."""
    code = """
        import code, os, signal, sys
        import biolake as ln

        def checkpoint(signum, frame):
            ln.Artifact(__file__, key="checkpoint.py").save()
        signal.signal(signal.SIGTERM, checkpoint)
        run = ln.track()
        sys.ps1 = ">>> "                                # as at an interactive prompt
        code.InteractiveInterpreter().runsource("undefined_name")
        del sys.ps1
        os.kill(os.getpid(), signal.SIGTERM)            # taken by checkpoint(), run goes on
        ln.Artifact(__file__, key="after.py").save()
        ln.finish()
    """
    done = run_script(instance, tmp_path, "graceful.py", code)
    assert done.returncode == 0, done.stderr
    assert "NameError" in done.stderr
    run = _script_run("graceful.py")
    assert run.status == "completed"
    assert {a.key for a in run.outputs} == {"checkpoint.py", "after.py"}


def test_an_exception_another_excepthook_takes_still_errors_the_run(instance, tmp_path) -> None:
    code = """
        import sys
        import biolake as ln
        ln.track()
        sys.excepthook = lambda kind, value, tb: print("custom hook:", value, file=sys.stderr)
        raise RuntimeError("disk full")
    """
    done = run_script(instance, tmp_path, "hooked.py", code)
    assert done.returncode == 1 and "custom hook: disk full" in done.stderr
    run = _script_run("hooked.py")
    assert run.status == "errored" and "RuntimeError: disk full" in run.status_reason


def test_cache_runs_again_for_arguments_known_only_by_type(instance, tmp_path) -> None:
    import pandas as pd

    calls = []

    @ln.tracked(cache=True)
    def total(df: pd.DataFrame) -> float:
        calls.append(1)
        return float(df["x"].sum())

    assert total(pd.DataFrame({"x": [1, 2]})) == 3.0
    assert total(pd.DataFrame({"x": [5, 5]})) == 10.0  # not the first call's result
    assert len(calls) == 2
    runs = ln.Run.filter(transform__key__endswith=".total")
    assert [r.fingerprint for r in runs] == [None, None]  # nothing to tell them apart by


def test_each_cache_warning_is_given_once_per_function(instance, capsys) -> None:
    import pandas as pd

    @ln.tracked(cache=True)
    def labels(df: pd.DataFrame) -> set[str]:
        return set(df["x"])  # a set is not JSON: never returned again

    for values in (["a"], ["b"], ["c"]):
        assert labels(pd.DataFrame({"x": values})) == set(values)
    err = capsys.readouterr().err
    assert err.count("recorded only by its type or name") == 1
    assert err.count("has cache=True but returned a") == 1


def test_a_run_ended_by_its_own_process_corrects_a_lease_based_crash(instance) -> None:
    from biolake.registries.track import MODELS
    from biolake.tracking import runs

    transform = ln.Transform(key="slow.py").save()
    run = runs.new_run(MODELS, instance, transform, None)
    with instance.db.write() as session:  # another host ran out of patience with it
        table = ln.Run.__table__
        session.execute(table.update().where(table.c.id == run.id).values(status="crashed"))
    assert runs.end_run(run, instance, "completed") is True
    assert ln.Run.get(run.id).status == "completed"
