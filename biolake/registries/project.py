"""Projects group artifacts and runs."""

from __future__ import annotations

from typing import Any, ClassVar

from sqlalchemy import Column, ForeignKey, String, Table, Text, insert, select
from sqlalchemy.orm import Mapped, mapped_column

from biolake.core.db import in_values
from biolake.core.schema.base import Base
from biolake.registries.base import Registry
from biolake.registries.user import CreatedBy
from biolake.search.searchable import Searchable


class Project(Searchable, CreatedBy, Registry):
    """A named project, e.g. ``ln.Project(name="Cancer Drug Screen 2025").save()``."""

    __tablename__ = "projects"
    _repr_fields = ("uid", "name")
    _search_fields: ClassVar[tuple[str, ...]] = ("name", "description")

    name: Mapped[str] = mapped_column(String(255), unique=True)
    description: Mapped[str | None] = mapped_column(Text)

    def __init__(self, *, name: str, description: str | None = None) -> None:
        super().__init__(name=name, description=description)


def add_links(session: Any, table: Table, pairs: list[tuple[int, int]]) -> None:
    """Insert the (left id, right id) rows of a ``link_table`` that are not there yet."""
    left, right = list(table.c)[:2]
    wanted = list(dict.fromkeys(pairs))
    if not wanted:
        return
    lefts = list({a for a, _ in wanted})
    dialect = session.get_bind().dialect.name
    present = set(session.execute(select(left, right).where(in_values(left, lefts, dialect))).all())
    rows = [{left.key: a, right.key: b} for a, b in wanted if (a, b) not in present]
    if rows:
        session.execute(insert(table), rows)


def link_table(name: str, left: str, right: str) -> Table:
    """A many-to-many link table between ``left`` and ``right`` tables (ids, both indexed)."""
    left_col, right_col = f"{left[:-1]}_id", f"{right[:-1]}_id"
    if left_col == right_col:
        left_col, right_col = f"from_{left_col}", f"to_{right_col}"
    return Table(
        name,
        Base.metadata,
        Column(left_col, ForeignKey(f"{left}.id", ondelete="CASCADE"), primary_key=True),
        Column(
            right_col, ForeignKey(f"{right}.id", ondelete="CASCADE"), primary_key=True, index=True
        ),
    )
