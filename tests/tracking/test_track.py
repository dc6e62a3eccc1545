"""ln.track / ln.finish / @ln.tracked in real scripts run as `python script.py`, on each backend."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import biolake as ln
from biolake.errors import InvalidArgument, TrackingError


def run_script(
    instance, folder: Path, name: str, code: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Write ``code`` to ``folder/name`` and run it there as ``python name`` on ``instance``,
    with ``env`` added to the environment."""
    script = folder / name
    script.write_text(textwrap.dedent(code))
    env = {**os.environ, "BIOLAKE_INSTANCE": str(instance.root), **(env or {})}
    return subprocess.run(
        [sys.executable, name], cwd=folder, env=env, capture_output=True, text=True, timeout=120
    )


PIPELINE = '''
    """Preprocess the counts."""
    import biolake as ln

    ln.track(params={"learning_rate": 0.01, "downsample": True}, project="Drug Screen")
    open("raw.csv", "w").write("a,b\\n1,2\\n3,4\\n")
    raw = ln.Artifact("raw.csv", key="raw/data.csv").save()

    @ln.tracked()
    def subset(key: str, n: int = 1) -> ln.Artifact:
        """Take the first rows."""
        df = ln.Artifact.get(key=key).load()
        return ln.Artifact.from_dataframe(df.head(n), key=f"subsets/{n}.parquet").save()

    subset("raw/data.csv")
    ln.finish()
'''


def test_a_script_run_records_its_transform_params_inputs_and_outputs(instance, tmp_path) -> None:
    done = run_script(instance, tmp_path, "pipeline.py", PIPELINE)
    assert done.returncode == 0, done.stderr
    assert "created project 'Drug Screen'" in done.stderr
    script = ln.Transform.get(name="pipeline.py")
    assert (script.key, script.kind, script.version) == ("pipeline.py", "script", "1")
    assert script.description == "Preprocess the counts."
    assert script.source_code == (tmp_path / "pipeline.py").read_text()
    assert script.source_hash.startswith("blake3:")
    run = ln.Run.get(transform=script)
    assert run.status == "completed" and run.finished_at >= run.started_at
    assert (run.exit_code, run.finished_implicitly) == (None, None)
    assert run.pid > 0 and run.host and run.entrypoint == "pipeline.py"
    assert ln.Run.filter(params__learning_rate=0.01).one() == run
    assert ln.Run.filter(params__downsample=True).one() == run
    project = ln.Project.get(name="Drug Screen")
    assert ln.Run.filter(project=project).order_by("id").first() == run
    saved = ["raw/data.csv", "subsets/1.parquet"]  # by the script, and by a call inside it
    assert [a.key for a in ln.Artifact.filter(projects=project).order_by("id")] == saved
    raw = ln.Artifact.get(key="raw/data.csv")
    assert (raw.run, raw.transform) == (run, script)

    function = ln.Transform.get(key="pipeline.py:subset")
    assert (function.kind, function.description) == ("function", "Take the first rows.")
    call = ln.Run.get(transform=function)
    assert call.initiated_by_run == run
    assert call.projects == [project]
    assert ln.Run.filter(project=project).count() == 2
    assert call.params == {"key": "raw/data.csv", "n": 1}
    assert [a.key for a in call.inputs] == ["raw/data.csv"]
    assert [a.key for a in call.outputs] == ["subsets/1.parquet"]
    assert ln.Run.filter(inputs=raw).one() == call
    assert [a.key for a in run.inputs] == []  # the script made raw: not its own input
    assert ln.Artifact.get(key="subsets/1.parquet").transform == function


def test_the_same_source_reuses_its_transform_a_changed_one_is_a_new_version(
    instance, tmp_path
) -> None:
    code = "import biolake as ln\nln.track()\nln.finish()\n"
    for _ in range(2):
        assert run_script(instance, tmp_path, "step.py", code).returncode == 0
    transform = ln.Transform.get(name="step.py")
    assert ln.Run.filter(transform=transform).count() == 2
    assert run_script(instance, tmp_path, "step.py", code + "# edited\n").returncode == 0
    versions = ln.Transform.filter(key="step.py").order_by("version").to_list()
    assert [t.version for t in versions] == ["1", "2"]
    assert "# edited" in versions[1].source_code


ENDINGS = {
    "finish": ("ln.finish()", 0, "completed", None, None),
    "forgotten finish": ("pass", 0, "completed", None, True),
    "exception": ("raise ValueError('boom')", 1, "errored", 1, None),
    "sys.exit(3)": ("import sys; sys.exit(3)", 3, "errored", 3, None),
    "SIGTERM": ("import os, signal; os.kill(os.getpid(), signal.SIGTERM)",
                -15, "aborted", None, None),
    "SIGINT": ("import os, signal, time; os.kill(os.getpid(), signal.SIGINT); time.sleep(5)",
               None, "aborted", None, None),
}  # fmt: skip


@pytest.mark.parametrize("ending", ENDINGS)
def test_a_run_ends_with_the_status_of_how_its_process_ended(instance, tmp_path, ending) -> None:
    last_line, returncode, status, exit_code, implicitly = ENDINGS[ending]
    done = run_script(
        instance, tmp_path, "job.py", f"import biolake as ln\nln.track()\n{last_line}\n"
    )
    if returncode is None:
        assert done.returncode != 0  # interrupted
    else:
        assert done.returncode == returncode, done.stderr
    run = ln.Run.get(transform=ln.Transform.get(name="job.py"))
    assert (run.status, run.exit_code, run.finished_implicitly) == (status, exit_code, implicitly)
    assert run.finished_at is not None
    if ending == "exception":
        assert "ValueError: boom" in run.status_reason and "ValueError: boom" in done.stderr
    if ending.startswith("SIG"):
        assert run.status_reason.startswith(f"the process received {ending}")


def test_a_tracked_function_that_raises_errors_its_run_and_the_exception_propagates(
    instance, tmp_path
) -> None:
    code = """
        import biolake as ln

        @ln.tracked()
        def fails(x: int) -> None:
            raise KeyError(x)

        try:
            fails(7)
        except KeyError as error:
            print("caught", error.args)
    """
    done = run_script(instance, tmp_path, "calls.py", code)
    assert done.returncode == 0, done.stderr
    assert "caught (7,)" in done.stdout
    run = ln.Run.get(transform=ln.Transform.get(key="calls.py:fails"))
    assert (run.status, run.params, run.initiated_by_run) == ("errored", {"x": 7}, None)
    assert "KeyError: 7" in run.status_reason


def test_a_notebook_is_tracked_by_its_path_and_its_code_cells(instance, tmp_path) -> None:
    cells = [
        {"cell_type": "markdown", "source": ["# Analysis"], "metadata": {}},
        {"cell_type": "code", "source": ["x = 1\n", "print(x)"], "metadata": {},
         "outputs": [], "execution_count": 1},
    ]  # fmt: skip
    (tmp_path / "analysis.ipynb").write_text(json.dumps({"cells": cells, "nbformat": 4}))
    code = "import biolake as ln\nln.track(path='analysis.ipynb')\nln.finish()\n"
    assert run_script(instance, tmp_path, "kernel.py", code).returncode == 0
    notebook = ln.Transform.get(name="analysis.ipynb")
    assert (notebook.kind, notebook.source_code) == ("notebook", "x = 1\nprint(x)")


def test_tracking_mistakes_say_what_to_do(instance, tmp_path) -> None:
    done = run_script(
        instance, tmp_path, "bad.py", "import biolake as ln\nln.track(params={'f': open})\n"
    )
    assert done.returncode == 1
    assert "params['f'] = <built-in function open> is not JSON" in done.stderr
    env = {**os.environ, "BIOLAKE_INSTANCE": str(instance.root)}
    interactive = subprocess.run(
        [sys.executable, "-c", "import biolake as ln; ln.track()"],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert "ln.track(path='analysis.ipynb')" in interactive.stderr
    with pytest.raises(TrackingError, match=r"call ln.track\(\) first"):
        ln.finish()


def test_tracked_functions_work_without_track_async_too(instance) -> None:
    import asyncio

    @ln.tracked()
    def double(values: list[float], scale: float = 2.0, note: object = None) -> list[float]:
        return [v * scale for v in values]

    @ln.tracked()
    async def later(n: int) -> int:
        await asyncio.sleep(0)
        return n + 1

    assert double([1.0, 2.5], note=object()) == [2.0, 5.0]
    assert asyncio.run(later(1)) == 2
    runs = ln.Run.filter().order_by("id").to_list()
    assert [r.transform.key for r in runs] == [
        "test_track.py:test_tracked_functions_work_without_track_async_too.<locals>.double",
        "test_track.py:test_tracked_functions_work_without_track_async_too.<locals>.later",
    ]
    assert runs[0].params == {"values": [1.0, 2.5], "scale": 2.0, "note": "<object>"}
    assert [r.status for r in runs] == ["completed", "completed"]
    with pytest.raises(InvalidArgument, match="cannot track the generator"):

        @ln.tracked()
        def numbers():  # type: ignore[no-untyped-def]
            yield 1


@pytest.mark.parametrize("death", ["os._exit(1)", "os.kill(os.getpid(), signal.SIGKILL)"])
def test_a_run_whose_process_was_killed_is_marked_crashed_later(instance, tmp_path, death) -> None:
    code = f"import os, signal\nimport biolake as ln\nln.track()\n{death}\n"
    assert run_script(instance, tmp_path, "killed.py", code).returncode != 0
    run = ln.Run.get(transform=ln.Transform.get(name="killed.py"))
    assert (run.status, run.finished_at) == ("started", None)  # nothing could be recorded
    assert ln.Run.mark_crashed() == 1
    run = ln.Run.get(run.id)
    assert run.status == "crashed" and run.finished_at is not None
    assert f"pid {run.pid}" in run.status_reason
    assert ln.Run.mark_crashed() == 0
    # The next tracked script on this host does it by itself.
    assert run_script(instance, tmp_path, "killed.py", code).returncode != 0
    assert (
        run_script(instance, tmp_path, "next.py", "import biolake as ln\nln.track()\n").returncode
        == 0
    )
    assert ln.Run.filter(status="crashed").count() == 2


def test_signals_the_script_handles_or_ignores_leave_its_run_open(instance, tmp_path) -> None:
    """A caught Ctrl-C, an ignored SIGTERM, and a forked child that is terminated: the process
    goes on, so its run does too, and ends completed."""
    code = """
        import multiprocessing, os, signal, time
        import biolake as ln

        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        ln.track()
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(5)
        except KeyboardInterrupt:
            print("caught")
        os.kill(os.getpid(), signal.SIGTERM)  # ignored, as before ln.track()
        child = multiprocessing.get_context("fork").Process(target=time.sleep, args=(30,))
        child.start()
        child.terminate()
        child.join()
        open("after.txt", "w").write("saved after all that")
        ln.Artifact("after.txt", key="after.txt").save()
        ln.finish()
    """
    done = run_script(instance, tmp_path, "resilient.py", code)
    assert done.returncode == 0, done.stderr
    assert "caught" in done.stdout
    run = ln.Run.get(transform=ln.Transform.get(name="resilient.py"))
    assert (run.status, run.status_reason) == ("completed", None)
    assert ln.Artifact.get(key="after.txt").run == run


def test_a_tracked_call_ends_by_how_it_returned(instance) -> None:
    import sys

    @ln.tracked()
    def leaves(code: int | None) -> None:
        sys.exit(code)

    @ln.tracked()
    def interrupted() -> None:
        raise KeyboardInterrupt

    for code in (0, None, 4):
        with pytest.raises(SystemExit):
            leaves(code)
    with pytest.raises(KeyboardInterrupt):
        interrupted()
    statuses = [r.status for r in ln.Run.filter().order_by("id")]
    assert statuses == ["completed", "completed", "errored", "aborted"]


def test_a_runs_end_is_recorded_in_its_own_instance(instance, tmp_path) -> None:
    code = """
        import biolake as ln
        ln.track()
        ln.setup.close()
        ln.setup.init(storage="other")   # the script moves on to another instance
        ln.Artifact(__file__, key="script.py").save()   # not an output of the first run
    """
    done = run_script(instance, tmp_path, "moves.py", code)
    assert done.returncode == 0, done.stderr
    run = ln.Run.get(transform=ln.Transform.get(name="moves.py"))
    assert (run.status, run.finished_implicitly) == ("completed", True)
    ln.setup.connect(tmp_path / "other")
    assert ln.Run.filter().count() == 0
    assert ln.Artifact.get(key="script.py").run is None


def test_mark_crashed_never_overwrites_a_run_that_ended(instance, monkeypatch) -> None:
    from biolake.tracking import runs

    transform = ln.Transform(key="t.py").save()
    run = ln.Run(transform=transform)
    run.pid, run.host, run.status = 999_999_999, __import__("socket").gethostname(), "started"
    run.save()
    with instance.db.write() as session:  # it completes between the read and the update
        table = ln.Run.__table__
        session.execute(table.update().where(table.c.id == run.id).values(status="completed"))
    monkeypatch.setattr(runs, "_alive", lambda pid: False)
    stale = ln.Run.get(run.id)
    assert runs.end_run(stale, instance, "crashed", reason="x") is False
    assert ln.Run.get(run.id).status == "completed"
