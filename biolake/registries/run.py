"""Runs: one execution of a transform, with params, environment and inputs."""

from __future__ import annotations

import datetime as dt
import os
from typing import TYPE_CHECKING, Any, ClassVar

from sqlalchemy import Float, ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates

from biolake.core.log import logger
from biolake.core.schema.base import JSONType, UTCDateTime, utcnow
from biolake.core.values import checked_params
from biolake.features.manager import HasFeatures
from biolake.registries import lineage
from biolake.registries.base import Registry
from biolake.registries.describe import describe_run
from biolake.registries.project import Project, add_links, link_table
from biolake.registries.user import CreatedBy

if TYPE_CHECKING:
    from biolake.query.queryset import QuerySet
    from biolake.registries.artifact import Artifact
    from biolake.registries.transform import Transform
    from biolake.tracking.lineage_svg import LineagePicture

run_projects = link_table("run_projects", "runs", "projects")
run_inputs = link_table("run_inputs", "runs", "artifacts")


class Run(HasFeatures, CreatedBy, Registry):
    """One execution of a transform: ``ln.Run.filter(params__learning_rate=0.01)``."""

    __tablename__ = "runs"
    # The runs still started, by host: what ln.track() checks for crashed processes.
    __table_args__ = (
        Index(
            "ix_runs_started_host",
            "host",
            sqlite_where=text("status = 'started'"),
            postgresql_where=text("status = 'started'"),
        ),
    )
    _uid_length: ClassVar[int] = 16
    _repr_fields = ("uid", "transform_id", "status", "started_at")
    _field_aliases: ClassVar[dict[str, str]] = {"project": "projects", "inputs": "input_artifacts"}

    transform_id: Mapped[int] = mapped_column(ForeignKey("transforms.id"), index=True)
    params: Mapped[dict[str, Any] | None]
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(16), default="started")
    git_commit: Mapped[str | None] = mapped_column(String(64))
    git_branch: Mapped[str | None] = mapped_column(String(255))
    git_remote: Mapped[str | None] = mapped_column(String(1024))
    git_dirty: Mapped[bool | None]
    git_diff: Mapped[str | None] = mapped_column(Text)
    # Why the run has its status: the traceback, the signal, the exit code.
    status_reason: Mapped[str | None] = mapped_column(Text)
    report_id: Mapped[int | None] = mapped_column(
        ForeignKey("artifacts.id", use_alter=True, name="fk_runs_report_id")
    )
    environment_id: Mapped[int | None] = mapped_column(
        ForeignKey("artifacts.id", use_alter=True, name="fk_runs_environment_id"), index=True
    )
    scheduler: Mapped[dict[str, Any] | None]
    heartbeat_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    lease_seconds: Mapped[float | None] = mapped_column(Float())  # without a heartbeat, at most
    # Re-run detection: source, inputs, params and environment of a completed run, hashed.
    fingerprint: Mapped[str | None] = mapped_column(String(80), index=True)
    result: Mapped[Any] = mapped_column(JSONType, nullable=True)
    initiated_by_run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id"), index=True)
    exit_code: Mapped[int | None]
    finished_implicitly: Mapped[bool | None]
    pid: Mapped[int | None]
    host: Mapped[str | None] = mapped_column(String(255))
    entrypoint: Mapped[str | None] = mapped_column(Text)

    transform: Mapped[Transform] = relationship(back_populates="runs")
    report: Mapped[Artifact | None] = relationship(foreign_keys=[report_id])
    environment: Mapped[Artifact | None] = relationship(foreign_keys=[environment_id])
    projects: Mapped[list[Project]] = relationship(secondary=run_projects)
    initiated_by_run: Mapped[Run | None] = relationship(remote_side="Run.id")
    input_artifacts: Mapped[list[Artifact]] = relationship(
        secondary=run_inputs, back_populates="input_of_runs"
    )

    def __init__(
        self,
        *,
        transform: Transform,
        params: dict[str, Any] | None = None,
        initiated_by_run: Run | None = None,
    ) -> None:
        super().__init__(transform=transform, params=params, initiated_by_run=initiated_by_run)

    @validates("params")
    def _check_params(self, _key: str, params: Any) -> dict[str, Any] | None:
        """Also when set later (``run.params = {...}``): NaN on SQLite broke every params
        filter."""
        return checked_params(params)

    @classmethod
    def mark_crashed(cls) -> int:
        """Mark ``crashed`` the runs still ``started`` whose process is gone: on this host by
        pid (SIGKILL, out of memory), on others by a heartbeat older than the lease; returns
        how many. ``ln.track()`` and ``ln.setup.connect()`` do it too.

        Example: ``ln.Run.mark_crashed()``
        """
        if not cls.filter(status="started").exists():  # the common case: nothing to load
            return 0
        from biolake.registries.track import MODELS  # loads tracking only when needed
        from biolake.tracking.runs import mark_crashed

        return mark_crashed(MODELS, cls.objects().instance)

    def _add_input(self, artifact: Artifact) -> None:
        """Record that this run read ``artifact`` (once per artifact and process). A failure
        is a warning: the read itself goes on."""
        seen: set[int] = self.__dict__.setdefault("_input_ids", set())
        if artifact.id in seen:
            return
        db = self._instance.db
        remember = not db.in_write  # inside another write, a rollback could undo the link
        try:
            with db.write() as session:
                add_links(session, run_inputs, [(self.id, artifact.id)])
        except Exception as exc:
            logger.warning(
                f"could not record {artifact.uid} as an input of run {self.uid}: {exc!r}"
            )
            return
        if remember:
            seen.add(artifact.id)

    @classmethod
    def _artifact_model(cls) -> Any:
        """The Artifact class, by the relationship (``artifact`` imports this module)."""
        return cls.input_artifacts.property.mapper.class_

    def ancestors(self, depth: int | None = None) -> QuerySet[Artifact]:
        """The artifact versions this run derives from: its inputs and what they derive from
        (``depth``: at most that many hops). Example: ``run.ancestors(depth=2)``"""
        return lineage.ancestors(self._artifact_model(), self, depth)

    def descendants(self, depth: int | None = None) -> QuerySet[Artifact]:
        """Its outputs and everything derived from them. Example: ``run.descendants()``"""
        return lineage.descendants(self._artifact_model(), self, depth)

    def view_lineage(
        self, path: str | os.PathLike[str] | None = None, *, hops: int = 2, collapse: int = 4
    ) -> LineagePicture:
        """The picture around this run (see ``Artifact.view_lineage``)."""
        return lineage.view_lineage(self._artifact_model(), Run, self, hops, path, collapse)

    def describe(self, return_str: bool = False) -> str | None:
        """Print the run: transform, status and why, params, inputs, outputs, where it ran,
        an earlier identical run, and the head of its report. Example: ``run.describe()``"""
        return describe_run(self, return_str=return_str)

    @property
    def outputs(self) -> QuerySet[Artifact]:
        """The artifacts this run saved."""
        return self._artifact_model().filter(run=self)

    @property
    def inputs(self) -> QuerySet[Artifact]:
        """The artifacts this run read (``load``/``cache``/``open`` while it was current)."""
        return self._artifact_model().filter(input_of_runs=self)
