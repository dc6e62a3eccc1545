"""Storage locations: the roots under which artifacts' bytes are kept."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from biolake.registries.base import Registry
from biolake.registries.user import CreatedBy, current_user_id

if TYPE_CHECKING:
    from biolake.core.instance import Instance


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


def root_storage_id(instance: Instance) -> int:
    """The id of ``instance``'s own storage root, registered on first use."""
    found = instance.row_ids.get("storage")
    if found is None:
        root, user_id = str(instance.root), current_user_id(instance)
        found = instance.get_or_create(Storage, "root", root, created_by_id=user_id)
        instance.row_ids["storage"] = found
    return found
