"""Users: who created each row, and who is using an instance now."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, declared_attr, mapped_column, relationship

from biolake.core.instance import current_handle
from biolake.registries.base import Registry

if TYPE_CHECKING:
    from biolake.core.instance import Instance


class User(Registry):
    """A person or service account; ``created_by`` of every row points here.

    The current user comes from ``BIOLAKE_USER`` or the OS login and is created on first use.

    Example: ``ln.User.get(handle="alice")``
    """

    __tablename__ = "users"
    _uid_length: ClassVar[int] = 8
    _repr_fields = ("uid", "handle", "name")

    handle: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str | None] = mapped_column(String(255))

    def __init__(self, *, handle: str, name: str | None = None) -> None:
        super().__init__(handle=handle, name=name)


def current_user_id(instance: Instance) -> int:
    """The id of this process's user (``BIOLAKE_USER`` or the OS login) in ``instance``,
    created on first use."""
    found = instance.row_ids.get("user")
    if found is None:
        found = instance.get_or_create(User, "handle", current_handle())
        instance.row_ids["user"] = found
    return found


class CreatedBy:
    """Mixin: the user who created the row (the current user, unless set)."""

    @declared_attr
    def created_by_id(cls) -> Mapped[int]:
        return mapped_column(ForeignKey("users.id"), index=True, sort_order=12)

    def _default_creator(self, instance: Instance) -> None:
        if self.created_by_id is None:
            self.created_by_id = current_user_id(instance)

    @declared_attr
    def created_by(cls) -> Mapped[User]:
        return relationship("User", foreign_keys=[cls.created_by_id])  # type: ignore[list-item]
