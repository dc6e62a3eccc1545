"""ln.export_openlineage: the runs of real scripts as OpenLineage RunEvents, each event checked
against the spec's JSON Schema (tests/data/openlineage, no network), on each backend."""

from __future__ import annotations

import datetime as dt
import functools
import io
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError
from referencing import Registry, Resource
from test_run_context import GIT, git

import biolake as ln
from biolake.errors import InvalidArgument
from biolake.tracking import openlineage as ol

SPEC = Path(__file__).parents[1] / "data" / "openlineage"
CUSTOM_FACETS = {ol.PARAMETERS_FACET}
REMOTE = "git@github.com:lab/pipelines.git"

# --- the spec's schemas, resolved locally -----------------------------------------------------


def _format_checker() -> FormatChecker:
    """Formats checked for real: jsonschema checks "uuid" itself, but "date-time" and "uri" only
    with optional packages; these two stand in for them (RFC 3339, an absolute URI)."""
    checker = FormatChecker()

    @checker.checks("date-time", raises=ValueError)
    def date_time(value: object) -> bool:
        pattern = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)"
        if not isinstance(value, str):
            return True
        return bool(re.fullmatch(pattern, value)) and dt.datetime.fromisoformat(value) is not None

    @checker.checks("uri")
    def uri(value: object) -> bool:
        return not isinstance(value, str) or bool(re.fullmatch(r"[A-Za-z][\w+.-]*:\S+", value))

    return checker


@functools.cache
def schemas() -> tuple[Draft202012Validator, dict[str, tuple[str, Draft202012Validator]]]:
    """The core RunEvent validator, and by facet name its schema's URL and a validator of a
    ``{name: facet}`` object (what each facet file's top level describes)."""
    core = json.loads((SPEC / "OpenLineage.json").read_text())
    files = [json.loads(p.read_text()) for p in sorted((SPEC / "facets").glob("*.json"))]
    registry: Registry = Registry().with_resources(
        (schema["$id"], Resource.from_contents(schema)) for schema in [core, *files]
    )
    checker = _format_checker()
    facets = {}
    for schema in files:
        for name, ref in schema["properties"].items():
            url = schema["$id"] + ref["$ref"]  # "...ParentRunFacet.json#/$defs/ParentRunFacet"
            facets[name] = (
                url,
                Draft202012Validator(schema, registry=registry, format_checker=checker),
            )
    return Draft202012Validator(core, registry=registry, format_checker=checker), facets


def validate(event: dict[str, Any]) -> None:
    """``event`` against the core schema, and each of its facets against its facet's schema."""
    core, facets = schemas()
    core.validate(event)
    assert event["schemaURL"] == core.schema["$id"] + "#/$defs/RunEvent"
    groups = [event["run"].get("facets", {}), event["job"].get("facets", {})]
    groups += [d.get("facets", {}) for d in event["inputs"] + event["outputs"]]
    for group in groups:
        for name, facet in group.items():
            if name in CUSTOM_FACETS:  # its base facet fields were checked by the core schema
                continue
            assert name in facets, f"facet {name!r} has no schema here to check it against"
            url, validator = facets[name]
            validator.validate({name: facet})
            assert facet["_schemaURL"] == url


def test_the_validation_catches_what_the_spec_forbids() -> None:
    def event(**changes: Any) -> dict[str, Any]:
        base = {
            "eventType": "START",
            "eventTime": "2026-01-02T03:04:05.000000+00:00",
            "producer": "https://github.com/biolake/biolake/tree/0.1.0",
            "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
            "run": {"runId": str(uuid.uuid4()), "facets": {}},
            "job": {"namespace": "biolake://lab", "name": "a.py", "facets": {}},
            "inputs": [],
            "outputs": [],
        }
        return {**base, **changes}

    validate(event())
    bad = [
        event(run={"runId": "run-1"}),  # not a UUID
        event(eventTime="2026-01-02T03:04:05"),  # no time zone
        event(eventType="DONE"),
        event(producer="biolake"),  # not a URI
        event(run={"runId": str(uuid.uuid4()), "facets": {"x": {"_producer": "https://a.b"}}}),
    ]
    for wrong in bad:
        with pytest.raises(ValidationError):
            validate(wrong)
    parent_without_job = {
        "parent": {
            "_producer": "https://a.b",
            "_schemaURL": schemas()[1]["parent"][0],
            "run": {"runId": str(uuid.uuid4())},
        }
    }
    with pytest.raises(ValidationError):
        validate(event(run={"runId": str(uuid.uuid4()), "facets": parent_without_job}))


# --- real scripts --------------------------------------------------------------------------

PIPELINE = '''
    """Take the first rows of the counts."""
    import biolake as ln

    ln.track(params={"learning_rate": 0.01, "downsample": True}, project="Drug Screen")
    open("raw.csv", "w").write("a,b\\n1,2\\n3,4\\n")
    ln.Artifact("raw.csv", key="raw/data.csv").save()
    open("notes.txt", "w").write("no key")
    ln.Artifact("notes.txt").save()

    @ln.tracked()
    def subset(key: str, n: int = 1) -> ln.Artifact:
        """Take the first rows."""
        df = ln.Artifact.get(key=key).load()
        return ln.Artifact.from_dataframe(df.head(n), key=f"subsets/{n}.parquet").save()

    @ln.tracked()
    def check(n: int) -> None:
        raise KeyError(n)

    subset("raw/data.csv")
    try:
        check(3)
    except KeyError:
        pass
    ln.finish()
'''

FAILING = """
    import biolake as ln

    ln.track()
    ln.Artifact.get(key="raw/data.csv").load()
    raise ValueError("boom")
"""

WAITING = """
    import pathlib, time
    import biolake as ln

    ln.track()
    pathlib.Path("ready").write_text("")
    time.sleep(60)
"""

KILLED = """
    import os, signal
    import biolake as ln

    ln.track()
    os.kill(os.getpid(), signal.SIGKILL)
"""


def start(instance, folder: Path, name: str, code: str) -> subprocess.Popen[str]:
    (folder / name).write_text(textwrap.dedent(code))
    env = {**os.environ, "BIOLAKE_INSTANCE": str(instance.root)}
    return subprocess.Popen(
        [sys.executable, name], cwd=folder, env=env, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def run(instance, folder: Path, name: str, code: str, returncode: int) -> None:
    process = start(instance, folder, name, code)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == returncode, stderr


def terminate(instance, folder: Path, name: str, code: str) -> int:
    """Start the script, and send it SIGTERM once its run is tracked."""
    process = start(instance, folder, name, code)
    deadline = time.monotonic() + 60
    while not (folder / "ready").exists():
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.05)
    process.terminate()
    process.communicate(timeout=60)
    return process.returncode


@pytest.fixture
def scripts(instance, tmp_path) -> SimpleNamespace:
    """Runs of every ending: the pipeline (a git checkout; a call that completes, one that
    raises), a script that raises, one terminated by SIGTERM, one killed (still started)."""
    if GIT is None:
        pytest.skip("needs the git binary")
    code = tmp_path / "code"
    code.mkdir()
    git(code, "init", "-q", "-b", "main")
    git(code, "remote", "add", "origin", REMOTE)
    (code / "pipeline.py").write_text(textwrap.dedent(PIPELINE))
    git(code, "add", "pipeline.py")
    git(code, "-c", "user.name=T", "-c", "user.email=t@example.org", "commit", "-qm", "add")
    run(instance, code, "pipeline.py", PIPELINE, 0)
    run(instance, code, "failing.py", FAILING, 1)
    assert terminate(instance, code, "waiting.py", WAITING) == -signal.SIGTERM
    run(instance, code, "killed.py", KILLED, -signal.SIGKILL)
    return SimpleNamespace(commit=git(code, "rev-parse", "HEAD"))


def export(**selection: Any) -> list[dict[str, Any]]:
    stream = io.StringIO()
    count = ln.export_openlineage(stream, **selection)
    lines = stream.getvalue().splitlines()
    assert count == len(lines)
    return [json.loads(line) for line in lines]


def by_run(events: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """The events of each run, by runId, in the order written."""
    grouped: dict[str, list[dict[str, Any]]] = {}
    for event in events:
        grouped.setdefault(event["run"]["runId"], []).append(event)
    return grouped


def run_of(key: str) -> Any:
    return ln.Run.get(transform=ln.Transform.get(key=key))


def events_of(events: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    found = [e for e in events if e["job"]["name"] == key]
    assert found, key
    return found


def check_stable_ids_and_parents(folder: Path) -> None:
    """Two exports are the same bytes; parent facets name the parent's START runId."""
    first, second = folder / "first.ndjson", folder / "second.ndjson"
    assert ln.export_openlineage(first) == ln.export_openlineage(second) == 11
    assert first.read_bytes() == second.read_bytes()  # the same runs: the same file
    events = [json.loads(line) for line in first.read_text().splitlines()]
    grouped = by_run(events)
    assert len(grouped) == ln.Run.filter().count()
    for run_id in grouped:
        assert uuid.UUID(run_id).version == 7  # what the spec recommends

    parent_start = events_of(events, "pipeline.py")[0]
    for key in ("pipeline.py:subset", "pipeline.py:check"):
        for event in events_of(events, key):
            parent = event["run"]["facets"]["parent"]
            assert parent["run"]["runId"] == parent_start["run"]["runId"]
            assert parent["job"] == {"namespace": parent_start["job"]["namespace"],
                                     "name": "pipeline.py"}  # fmt: skip
            assert parent["root"] == {"run": parent["run"], "job": parent["job"]}
    only_script = export(runs=[run_of("pipeline.py")])
    assert only_script == events_of(events, "pipeline.py")  # the same ids when exported alone


def check_artifact_selection() -> None:
    """``artifacts=`` exports exactly the runs that made or read them."""
    raw = ln.Artifact.get(key="raw/data.csv")
    events = export(artifacts=[raw])
    names = {e["job"]["name"] for e in events}
    assert names == {"pipeline.py", "pipeline.py:subset", "failing.py"}  # made, read, read
    assert export(artifacts=ln.Artifact.filter(key="raw/data.csv")) == events
    parquet = ln.Artifact.filter(key="subsets/1.parquet")
    assert {e["job"]["name"] for e in export(artifacts=parquet)} == {"pipeline.py:subset"}
    assert export(artifacts=ln.Artifact.filter(key="nothing")) == []
    errored = export(runs=ln.Run.filter(status="errored"))
    assert {e["job"]["name"] for e in errored} == {"failing.py", "pipeline.py:check"}


def test_every_run_exports_as_valid_events_of_its_status(instance, scripts, tmp_path) -> None:
    events = export()
    for event in events:
        validate(event)
    expected = {
        "pipeline.py": ("completed", ["START", "COMPLETE"]),
        "pipeline.py:subset": ("completed", ["START", "COMPLETE"]),
        "pipeline.py:check": ("errored", ["START", "FAIL"]),
        "failing.py": ("errored", ["START", "FAIL"]),
        "waiting.py": ("aborted", ["START", "ABORT"]),
        "killed.py": ("started", ["START"]),
    }
    grouped = by_run(events)
    assert len(grouped) == ln.Run.filter().count() == len(expected)
    for key, (status, kinds) in expected.items():
        assert run_of(key).status == status
        assert [e["eventType"] for e in events_of(events, key)] == kinds
    assert all(len({e["job"]["name"] for e in group}) == 1 for group in grouped.values())
    assert {e["job"]["namespace"] for e in events} == {f"biolake://{instance.name}"}
    assert {e["producer"] for e in events} == {
        f"https://github.com/biolake/biolake/tree/{ln.__version__}"
    }

    check_stable_ids_and_parents(tmp_path)

    ln.Run.mark_crashed()  # the killed process is gone: its run is crashed, a failure
    events = export()
    for event in events:
        validate(event)
    killed = events_of(events, "killed.py")
    assert [e["eventType"] for e in killed] == ["START", "FAIL"]
    assert "ended without recording how" in killed[1]["run"]["facets"]["errorMessage"]["message"]


def test_events_carry_times_datasets_facets_and_errors(instance, scripts) -> None:
    events = export()
    script, call = run_of("pipeline.py"), run_of("pipeline.py:subset")
    start, complete = events_of(events, "pipeline.py")
    assert dt.datetime.fromisoformat(start["eventTime"]) == script.started_at
    assert dt.datetime.fromisoformat(complete["eventTime"]) == script.finished_at

    root = Path(instance.root).as_uri()
    raw, parquet = (ln.Artifact.get(key=k) for k in ("raw/data.csv", "subsets/1.parquet"))
    notes = ln.Artifact.filter(key=None).one()
    for event in (start, complete):
        assert event["inputs"] == []
        outputs = [(d["namespace"], d["name"], d["facets"]["version"]["datasetVersion"])
                   for d in event["outputs"]]  # fmt: skip
        assert outputs == [(root, "raw/data.csv", raw.hash), (root, notes.uid, notes.hash)]
    for event in events_of(events, "pipeline.py:subset"):
        assert [(d["name"], d["facets"]["version"]["datasetVersion"]) for d in event["inputs"]] \
            == [("raw/data.csv", raw.hash)]  # fmt: skip
        assert [d["name"] for d in event["outputs"]] == ["subsets/1.parquet"]
        assert event["outputs"][0]["facets"]["version"]["datasetVersion"] == parquet.hash
    assert [d["name"] for d in events_of(events, "failing.py")[0]["inputs"]] == ["raw/data.csv"]

    # Job facets: the source on START only; the git checkout and the kind on every event.
    transform = ln.Transform.get(key="pipeline.py")
    assert start["job"]["facets"]["sourceCode"]["sourceCode"] == transform.source_code
    assert start["job"]["facets"]["sourceCode"]["language"] == "python"
    assert "sourceCode" not in complete["job"]["facets"]
    location = complete["job"]["facets"]["sourceCodeLocation"]
    assert location["url"] == f"https://github.com/lab/pipelines/tree/{scripts.commit}"
    assert (location["type"], location["repoUrl"]) == ("git", REMOTE)
    assert (location["version"], location["branch"]) == (scripts.commit, "main")
    job_type = complete["job"]["facets"]["jobType"]
    assert (job_type["processingType"], job_type["integration"]) == ("BATCH", "BIOLAKE")
    assert job_type["jobType"] == "SCRIPT"
    assert events_of(events, "pipeline.py:subset")[0]["job"]["facets"]["jobType"]["jobType"] \
        == "FUNCTION"  # fmt: skip

    # Params, in the standard facet as text and in biolake's own as JSON.
    facets = complete["run"]["facets"]
    assert facets[ol.PARAMETERS_FACET]["parameters"] == script.params
    as_text = sorted((p["key"], p["value"]) for p in facets["executionParameters"]["parameters"])
    assert as_text == [("downsample", "true"), ("learning_rate", "0.01")]
    call_facets = events_of(events, "pipeline.py:subset")[1]["run"]["facets"]
    assert call_facets[ol.PARAMETERS_FACET]["parameters"] == call.params
    assert "errorMessage" not in facets and "parent" not in facets

    # Errors: the exception as the message, the traceback as the stack trace.
    for key, message in (("failing.py", "ValueError: boom"), ("pipeline.py:check", "KeyError: 3")):
        fail = events_of(events, key)[1]["run"]["facets"]["errorMessage"]
        assert fail["message"] == message and fail["programmingLanguage"] == "python"
        assert fail["stackTrace"] == run_of(key).status_reason.strip()
        assert fail["stackTrace"].startswith("Traceback (most recent call last):")
        assert "errorMessage" not in events_of(events, key)[0]["run"]["facets"]
    assert "errorMessage" not in events_of(events, "waiting.py")[1]["run"]["facets"]
    check_artifact_selection()


# --- rows made here: selection, paging and targets -----------------------------------------


def make_runs(count: int) -> list[Any]:
    """``count`` completed runs of one transform, made here rather than by scripts."""
    transform = ln.Transform.filter(key="step.py").first()
    transform = transform or ln.Transform(key="step.py", source_code="print(1)\n").save()
    runs = []
    for _ in range(count):
        item = ln.Run(transform=transform, params={"n": 1}).save()
        item.status, item.finished_at = "completed", item.started_at + dt.timedelta(seconds=1)
        runs.append(item.save())
    return runs


def test_pages_read_runs_in_order_with_a_few_queries_a_page_none_per_run(
    instance, monkeypatch
) -> None:
    from sqlalchemy import event

    from biolake.registries import openlineage as module

    statements: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    def exported_with_statements() -> tuple[list[dict[str, Any]], int]:
        statements.clear()
        event.listen(instance.db.engine, "before_cursor_execute", seen)
        try:
            return export(), len(statements)
        finally:
            event.remove(instance.db.engine, "before_cursor_execute", seen)

    runs = make_runs(7)
    events, few = exported_with_statements()
    runs += make_runs(7)
    events, more = exported_with_statements()
    assert few == more  # twice the runs, in one page: the same queries
    expected = [ol.run_uuid(f"biolake://{instance.name}", r.uid, r.started_at) for r in runs]
    assert [e["run"]["runId"] for e in events[::2]] == expected
    assert [e["eventType"] for e in events] == ["START", "COMPLETE"] * 14
    monkeypatch.setattr(module, "PAGE", 3)
    assert export() == events  # pages of 3, the same events in the same order
    for item in events:
        validate(item)


def test_targets_a_file_is_replaced_whole_a_folder_is_refused(
    instance, tmp_path, monkeypatch, capsys
) -> None:
    from biolake.registries import openlineage as module

    make_runs(2)
    path = tmp_path / "out" / "lineage.ndjson"
    with pytest.raises(InvalidArgument, match="does not exist"):
        ln.export_openlineage(path)
    path.parent.mkdir()
    path.write_text("old\n")
    assert ln.export_openlineage(str(path)) == 4
    assert len(path.read_text().splitlines()) == 4
    with pytest.raises(InvalidArgument, match="is a folder"):
        ln.export_openlineage(tmp_path)

    def broken(*args: Any, **kwargs: Any) -> list[dict[str, Any]]:
        raise RuntimeError("disk full")

    before = path.read_text()
    monkeypatch.setattr(module, "run_events", broken)
    with pytest.raises(RuntimeError):
        ln.export_openlineage(path)
    assert path.read_text() == before  # the old file stays whole
    assert os.listdir(path.parent) == ["lineage.ndjson"]  # and no temporary file is left
    monkeypatch.undo()

    capsys.readouterr()
    assert ln.export_openlineage() == 4  # None: standard output
    assert len(capsys.readouterr().out.splitlines()) == 4


def test_selections_that_make_no_sense_are_refused(instance) -> None:
    runs = make_runs(1)
    assert ln.export_openlineage(io.StringIO(), runs=[]) == 0
    with pytest.raises(InvalidArgument, match="not both"):
        ln.export_openlineage(io.StringIO(), runs=runs, artifacts=[])
    with pytest.raises(InvalidArgument, match="QuerySet of Transform"):
        ln.export_openlineage(io.StringIO(), runs=ln.Transform.filter())
    with pytest.raises(InvalidArgument, match=r"saved ln\.Artifact"):
        ln.export_openlineage(io.StringIO(), artifacts=runs)
    assert [e["eventType"] for e in ln.openlineage_events(runs=runs)] == ["START", "COMPLETE"]
    assert list(ln.openlineage_events(runs=runs[0])) == list(ln.openlineage_events(runs=runs))


# --- the conversion alone ---------------------------------------------------------------------


def test_run_ids_are_uuid7_stable_and_ordered_by_start() -> None:
    early = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    late = early + dt.timedelta(milliseconds=1)
    one = ol.run_uuid("biolake://lab", "abc", early)
    assert one == ol.run_uuid("biolake://lab", "abc", early)
    assert one != ol.run_uuid("biolake://other", "abc", early)
    assert one != ol.run_uuid("biolake://lab", "abd", early)
    assert ol.run_uuid("biolake://lab", "zzz", early) < ol.run_uuid("biolake://lab", "aaa", late)
    parsed = uuid.UUID(one)
    assert (parsed.version, parsed.variant) == (7, uuid.RFC_4122)
    assert parsed.int >> 80 == int(early.timestamp() * 1000)


@pytest.mark.parametrize(
    ("remote", "url"),
    [
        ("https://github.com/lab/p.git", "https://github.com/lab/p/tree/c0ffee"),
        ("http://git.lab.org:8080/p", "http://git.lab.org:8080/p/tree/c0ffee"),
        ("git@gitlab.com:lab/sub/p.git", "https://gitlab.com/lab/sub/p/tree/c0ffee"),
        ("ssh://git@host.org:2222/lab/p.git", "https://host.org/lab/p/tree/c0ffee"),
        ("file:///srv/git/p.git", "file:///srv/git/p.git"),
        ("/srv/git/p", "file:///srv/git/p"),
        ("../p", None),
    ],
)
def test_source_code_location_from_remotes(remote: str, url: str | None) -> None:
    run = SimpleNamespace(
        uid="u1", status="started", started_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        finished_at=None, status_reason=None, params=None, git_remote=remote,
        git_commit="c0ffee", git_branch=None,
        transform=SimpleNamespace(key="a.py", kind="script", source_code=None),
    )  # fmt: skip
    (event,) = ol.run_events(run, ol.Producer.of("my lab", "0.1.0"))
    assert event["job"]["namespace"] == "biolake://my%20lab"
    location = event["job"]["facets"].get("sourceCodeLocation")
    assert (location and location["url"]) == (url or None)
    validate(event)


def test_error_messages_from_reasons_that_are_not_tracebacks() -> None:
    run = SimpleNamespace(
        uid="u1", status="crashed", started_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        finished_at=None, status_reason=None, params={"x": float("nan")}, git_remote=None,
        git_commit=None, git_branch=None,
        transform=SimpleNamespace(key="a.py", kind="notebook", source_code="x = 1"),
    )  # fmt: skip
    start, fail = ol.run_events(run, ol.Producer.of("lab", "0.1.0"))
    assert fail["eventTime"] == start["eventTime"] == "2026-01-01T00:00:00.000000+00:00"
    error = fail["run"]["facets"]["errorMessage"]
    assert error["message"] == "the run failed without a recorded reason"
    assert "stackTrace" not in error
    assert fail["run"]["facets"][ol.PARAMETERS_FACET]["parameters"] == {"x": "nan"}
    assert json.loads(json.dumps(fail, allow_nan=False)) == fail
    for event in (start, fail):
        validate(event)
