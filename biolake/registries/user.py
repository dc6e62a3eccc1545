"""Users: who created each row."""

from __future__ import annotations

from typing import ClassVar

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from biolake.registries.base import Registry


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
