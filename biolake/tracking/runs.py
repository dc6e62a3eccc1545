"""Run rows: start one with what it runs on, end it truthfully, find the ones that crashed.

A run stays ``started`` only while its process lives. It records its pid, host and a heartbeat
(see ``heartbeat.py``); ``mark_crashed`` (the next ``ln.track()``, ``ln.setup.connect()``, or
``ln.Run.mark_crashed()``) ends as ``crashed`` the runs whose process is gone from this host,
or whose heartbeat from another host is older than the lease. The process's own run, and how
the process ends it, is in ``process.py``.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import sys
from collections.abc import Callable
from typing import Any, NamedTuple

from sqlalchemy import select, update
from sqlalchemy.orm.attributes import set_committed_value

from biolake.core.inserts import insert_new
from biolake.core.instance import Instance
from biolake.core.log import logger
from biolake.core.schema.base import utcnow
from biolake.errors import IntegrityError
from biolake.storage.hashing import hash_bytes
from biolake.tracking import heartbeat, run_files
from biolake.tracking.git import GitState, start_git_state
from biolake.tracking.scheduler import scheduler_context


class Models(NamedTuple):  # not a frozen dataclass, which costs 0.7 ms to define
    """The registry classes tracking creates rows of, passed in by ``biolake.registries``."""

    run: Any
    transform: Any
    project: Any
    artifact: Any


def new_run(
    models: Models,
    instance: Instance,
    transform: Any,
    params: dict[str, Any] | None,
    project: str | None = None,
    initiated_by: Any = None,
    *,
    place: dict[str, Any] | None = None,
) -> Any:
    """Insert a ``started`` run of ``transform`` in this process. ``place`` is where it runs
    (see ``place_of``); a nested call takes its caller's."""
    run = models.run(transform=transform, params=params)  # Run checks params as they are set
    run.initiated_by_run = initiated_by
    run.status = "started"
    run.started_at = run.heartbeat_at = utcnow()
    run.lease_seconds = heartbeat.lease().total_seconds()
    run.pid, run.host = os.getpid(), socket.gethostname()
    run.entrypoint = _command_line()
    if initiated_by is not None:
        place = {name: getattr(initiated_by, name) for name in PLACE}
    for name, value in (place or {}).items():
        setattr(run, name, value)
    projects = [_project(models.project, project)] if project is not None else []
    if initiated_by is not None and project is None:  # a call belongs to its caller's projects
        projects = list(initiated_by.projects)
    with instance.db.write() as session:
        run._before_save(instance)
        run._check_text()
        if projects:
            run.projects.extend(projects)
            session.add(run)
            session.flush()
        else:  # one INSERT, without the ORM's flush (a third of the cost of ln.track())
            insert_new(session, [run])
    heartbeat.watch(instance, type(run).__table__)
    return run


def _command_line() -> str | None:
    if not sys.argv or not sys.argv[0]:
        return None
    import shlex  # here: a tracked call in a process that never tracks a script needs none

    return shlex.join(sys.argv)


# Where a run runs: its code's git state, its environment, its scheduler job.
PLACE = (
    "git_commit",
    "git_branch",
    "git_remote",
    "git_dirty",
    "git_diff",
    "environment_id",
    "scheduler",
)


def place_of(
    models: Models, instance: Instance, code_dir: str | None
) -> Callable[[], dict[str, Any]]:
    """Where code in ``code_dir`` runs, in two steps: git is started now, and the function
    returned gives the git state, the environment and the scheduler job, each best effort
    (what cannot be read is left out, with a warning). The caller works while git runs."""
    git: Callable[[], GitState | None] = lambda: None  # noqa: E731
    try:
        if code_dir is not None:
            git = start_git_state(code_dir)
    except Exception as exc:
        logger.warning(f"could not read the git state of {code_dir}: {exc!r}")

    def place() -> dict[str, Any]:
        found: dict[str, Any] = {"scheduler": scheduler_context()}
        try:
            state = git()
        except Exception as exc:
            logger.warning(f"could not read the git state of {code_dir}: {exc!r}")
            state = None
        if state is not None:
            found.update(
                git_commit=state.commit,
                git_branch=state.branch,
                git_remote=state.remote_url,
                git_dirty=state.dirty,
                git_diff=state.diff,
            )
        try:
            found["environment_id"] = run_files.environment(models.artifact, instance)[0]
        except Exception as exc:
            logger.warning(f"could not record the environment of the run: {exc!r}")
        return found

    return place


def end_run(
    run: Any,
    instance: Instance,
    status: str,
    *,
    reason: str | None = None,
    exit_code: int | None = None,
    implicitly: bool = False,
    comparable: bool = True,
    **more: Any,
) -> bool:
    """Record how ``run`` ended, in its own instance, if it is still ``started`` (an ended run
    keeps its end); returns whether it changed. ``more`` are other columns to set with it
    (``report_id``, ``result``). A completed run gets its fingerprint (see ``fingerprint``)
    unless it is not ``comparable`` (params known only by their type).
    A failure to record it is a warning, never the user's error."""
    values: dict[str, Any] = {
        "status": status,
        "finished_at": utcnow(),
        "exit_code": exit_code,
        "finished_implicitly": implicitly or None,
        **more,
    }
    if reason is not None:
        values["status_reason"] = reason
    table = type(run).__table__
    run_id, uid = run.__dict__.get("id"), run.__dict__.get("uid")
    try:
        with instance.db.write() as session:
            if status == "completed" and comparable:
                values["fingerprint"] = fingerprint(session, run)
            # Still started; or found crashed by another process (a lease ran out while this
            # one could not beat), which this very process, alive and ending it, corrects.
            mine = (table.c.pid == os.getpid()) & (table.c.host == socket.gethostname())
            open_ = (table.c.status == "started") | ((table.c.status == "crashed") & mine)
            result: Any = session.execute(
                update(table).where((table.c.id == run_id) & open_).values(**values)
            )
    except Exception as exc:  # the process is ending or the database is gone
        logger.warning(f"could not record that run {uid} {status}: {exc!r}")
        return False
    if not result.rowcount:
        return False
    for name, value in values.items():  # what the object says, without another write
        set_committed_value(run, name, value)
    return True


def _project(model: Any, name: str) -> Any:
    """The project named ``name``: restored from the trash, or created (once, also when
    concurrent jobs create it at the same moment)."""
    found = model.filter(name=name, visibility__in=["default", "trash"]).one_or_none()
    if found is not None:
        if found.visibility != "default":
            found.restore()
            logger.info(f"restored project {name!r} from the trash")
        return found
    try:
        project = model(name=name).save()
    except IntegrityError:  # another job created it first
        return model.get(name=name)
    logger.info(f"created project {name!r}")
    return project


def set_report(run: Any, instance: Instance, report_id: int | None) -> None:
    """Link a run's saved report to it (after its end is recorded)."""
    if report_id is None:
        return
    table = type(run).__table__
    with instance.db.write() as session:
        session.execute(
            update(table).where(table.c.id == run.__dict__["id"]).values(report_id=report_id)
        )
    set_committed_value(run, "report_id", report_id)


def fingerprint(session: Any, run: Any) -> str:
    """What makes two runs the same computation: the transform's source, the hashes of the
    inputs the run read, its params and its environment, hashed."""
    inputs = type(run).__table__.metadata.tables["run_inputs"]
    artifacts = type(run).__table__.metadata.tables["artifacts"]
    hashes = session.scalars(
        select(artifacts.c.hash)
        .join(inputs, inputs.c.artifact_id == artifacts.c.id)
        .where(inputs.c.run_id == run.id)
    ).all()
    parts = {
        "source": run.transform.source_hash,
        "inputs": sorted(hashes),
        "params": run.params,
        "environment": run.environment_id,  # one artifact per environment fingerprint
    }
    return hash_bytes(json.dumps(parts, sort_keys=True, default=str).encode())


def mark_crashed(models: Models, instance: Instance) -> int:
    """Mark ``crashed`` the runs still ``started`` whose process is gone: on this host, by pid
    (SIGKILL, out of memory, ``os._exit``); on another host, by a heartbeat older than the
    lease (a lost node). Returns how many. The report a crashed run of this host was writing
    is registered with it. One small query when nothing crashed (every ``ln.track()`` asks)."""
    table = models.run.__table__
    host = socket.gethostname()
    columns = (table.c.id, table.c.pid, table.c.host, table.c.heartbeat_at, table.c.lease_seconds)
    started = instance.db.session.execute(select(*columns).where(table.c.status == "started"))
    rows = started.all()
    now = heartbeat.now(instance, instance.db.session) if rows else None
    instance.db.end_read()
    crashed = 0
    for row_id, pid, run_host, beat, lease in rows:
        if run_host == host and pid is not None and pid != os.getpid() and not _alive(pid):
            run = models.run.get(row_id)
            reason = f"its process (pid {pid} on {host}) ended without recording how"
            if end_run(run, instance, "crashed", reason=reason):  # claimed: its report too
                crashed += 1
                set_report(run, instance, _leftover_report(models, instance, run))
            continue
        # The run's own lease (its process's beat interval), not this reader's.
        lease = dt.timedelta(seconds=lease or heartbeat.lease().total_seconds())
        if run_host != host and beat is not None and now is not None and beat < now - lease:
            reason = (
                f"no heartbeat from its process (pid {pid} on {run_host}) since "
                f"{beat:%Y-%m-%d %H:%M:%S} UTC, longer than its lease of "
                f"{lease.total_seconds():.0f} s"
            )
            crashed += end_run(models.run.get(row_id), instance, "crashed", reason=reason)
    return crashed


def _leftover_report(models: Models, instance: Instance, run: Any) -> int | None:
    path = run_files.report_path(instance, run.uid)
    try:
        return run_files.save_report(models.artifact, instance, run.uid, path)
    except Exception as exc:
        logger.warning(f"could not register the report of crashed run {run.uid}: {exc!r}")
        return None


def _alive(pid: int) -> bool:
    if os.name != "posix":  # signal 0 only asks on POSIX (on Windows os.kill terminates)
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True
