"""Storage locations: the roots under which artifacts' bytes are kept."""

from __future__ import annotations

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from biolake.registries.base import CreatedBy, Registry


class Storage(CreatedBy, Registry):
    """A storage root: a local folder or an ``s3://bucket/prefix``.

    Every instance registers its own root on first use; ``artifact.storage`` points here.
    """

    __tablename__ = "storages"
    _repr_fields = ("uid", "root")

    root: Mapped[str] = mapped_column(String(1024), unique=True)
    description: Mapped[str | None] = mapped_column(Text)

    def __init__(self, *, root: str, description: str | None = None) -> None:
        super().__init__(root=root, description=description)
