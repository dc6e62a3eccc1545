"""Transforms: the code (script, notebook, function) that runs execute."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from sqlalchemy import String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from biolake.registries.base import Registry
from biolake.registries.describe import describe_transform
from biolake.registries.user import CreatedBy

if TYPE_CHECKING:
    from biolake.registries.run import Run

TRANSFORM_KINDS = ("script", "notebook", "function", "pipeline")


class Transform(CreatedBy, Registry):
    """A reusable analysis step; ``key`` is the script/notebook file name or ``module.function``.

    ``name`` is an alias of ``key``: ``ln.Transform.get(name="preprocessing.py")``.
    """

    __tablename__ = "transforms"
    __table_args__ = (UniqueConstraint("key", "source_hash"),)
    _repr_fields = ("uid", "key", "kind", "version")
    _field_aliases: ClassVar[dict[str, str]] = {"name": "key"}

    key: Mapped[str] = mapped_column(String(1024), index=True)
    kind: Mapped[str] = mapped_column(String(20), default="script")
    description: Mapped[str | None] = mapped_column(Text)
    source_code: Mapped[str | None] = mapped_column(Text)
    source_hash: Mapped[str | None] = mapped_column(String(80))
    version: Mapped[str] = mapped_column(String(20), default="1")

    runs: Mapped[list[Run]] = relationship(back_populates="transform", viewonly=True)

    def __init__(
        self,
        *,
        key: str,
        kind: str = "script",
        description: str | None = None,
        source_code: str | None = None,
        source_hash: str | None = None,
        version: str = "1",
    ) -> None:
        super().__init__(
            key=key,
            kind=kind,
            description=description,
            source_code=source_code,
            source_hash=source_hash,
            version=version,
        )

    @property
    def name(self) -> str:
        return self.key

    def describe(self, return_str: bool = False) -> str | None:
        """Print the transform and how its runs ended. Example: ``transform.describe()``"""
        return describe_transform(self, return_str=return_str)
