"""Runs: one execution of a transform, with params, environment and inputs."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any, ClassVar

from sqlalchemy import ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from biolake.core.log import logger
from biolake.core.schema.base import UTCDateTime, utcnow
from biolake.features.manager import HasFeatures
from biolake.registries.base import Registry
from biolake.registries.project import Project, add_links, link_table
from biolake.registries.user import CreatedBy

if TYPE_CHECKING:
    from biolake.query.queryset import QuerySet
    from biolake.registries.artifact import Artifact
    from biolake.registries.transform import Transform

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
    environment: Mapped[dict[str, Any] | None]
    git_commit: Mapped[str | None] = mapped_column(String(64))
    report: Mapped[str | None] = mapped_column(Text)
    initiated_by_run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id"), index=True)
    exit_code: Mapped[int | None]
    finished_implicitly: Mapped[bool | None]
    pid: Mapped[int | None]
    host: Mapped[str | None] = mapped_column(String(255))
    entrypoint: Mapped[str | None] = mapped_column(Text)

    transform: Mapped[Transform] = relationship(back_populates="runs")
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

    @classmethod
    def mark_crashed(cls) -> int:
        """Mark ``crashed`` the runs still ``started`` on this host whose process is gone
        (SIGKILL, out of memory); returns how many. ``ln.track()`` does it too.

        Example: ``ln.Run.mark_crashed()``
        """
        from biolake.tracking.runs import mark_crashed  # loads tracking only when asked

        return mark_crashed(cls, cls.objects().instance)

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

    @property
    def outputs(self) -> QuerySet[Artifact]:
        """The artifacts this run saved."""
        from biolake.registries.artifact import Artifact

        return Artifact.filter(run=self)

    @property
    def inputs(self) -> QuerySet[Artifact]:
        """The artifacts this run read (``load``/``cache``/``open`` while it was current)."""
        from biolake.registries.artifact import Artifact

        return Artifact.filter(input_of_runs=self)
