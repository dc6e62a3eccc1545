"""``record.parents`` / ``record.children``: a QuerySet of relatives that can also add and remove.

Links form a directed acyclic graph: adding a link that would close a cycle raises. The check
walks the ancestors with one recursive SQL query; on PostgreSQL a transaction-scoped advisory lock
makes concurrent edits take turns, so two processes cannot close a cycle together (SQLite writers
are serialized already).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    Column,
    ForeignKey,
    Table,
    and_,
    delete,
    exists,
    insert,
    literal,
    select,
    text,
)

from biolake.core.schema.base import Base
from biolake.errors import InvalidArgument, ValidationError
from biolake.query.lookups import condition
from biolake.query.queryset import QuerySet

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from biolake.registries.record import Record

GRAPH_LOCK_KEY = 0x7265636C  # "recl": taken while record links change (PostgreSQL)

# child_id -> parent_id; both directions are queried, so both columns lead an index.
record_parents = Table(
    "record_parents",
    Base.metadata,
    Column("child_id", ForeignKey("records.id", ondelete="CASCADE"), primary_key=True),
    Column("parent_id", ForeignKey("records.id", ondelete="CASCADE"), primary_key=True, index=True),
)


class RelatedRecords(QuerySet["Record"]):
    """The parents or children of one record.

    Reads like any QuerySet (``.to_dataframe()``, ``.to_list()``, ``.count()``, ``.filter()``);
    ``add`` and ``remove`` edit the links in one transaction.
    """

    def __init__(self, record: Record, direction: str) -> None:
        if record.id is None:
            raise InvalidArgument(f"Save {record!r} before reading or editing its {direction}.")
        self._record = record
        self._direction = direction
        instance = record._instance
        # The parents of r are the records whose children include r, and vice versa.
        key = "child_records" if direction == "parents" else "parent_records"
        model = type(record)
        where = condition(model, key, record, instance.db.dialect)
        super().__init__(model, instance, where=(where,), described=(f"{key}={record!r}",))

    def add(self, *records: Record | Iterable[Record]) -> None:
        """Link records (already linked ones are skipped); raises if a link closes a cycle.

        Example: ``child.parents.add(parent)``
        """
        others = _saved_records(self.model, records)
        db = self.instance.db
        with db.write() as session:
            if not db.is_sqlite:
                session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": GRAPH_LOCK_KEY})
            for other in others:
                child, parent = self._pair(other)
                if _is_ancestor_or_self(self.model, session, child.id, of=parent.id):
                    raise ValidationError(
                        f"Cannot make {parent.name!r} a parent of {child.name!r}: "
                        f"{child.name!r} is already {parent.name!r} or one of its ancestors, "
                        "so the link would create a cycle."
                    )
                _link(session, child.id, parent.id)

    def remove(self, *records: Record | Iterable[Record]) -> None:
        """Unlink records; records that are not linked are ignored."""
        links = record_parents
        others = _saved_records(self.model, records)
        with self.instance.db.write() as session:
            for other in others:
                child, parent = self._pair(other)
                session.execute(
                    delete(links).where(
                        links.c.child_id == child.id, links.c.parent_id == parent.id
                    )
                )

    def _pair(self, other: Record) -> tuple[Record, Record]:
        """(child, parent) for a link between this manager's record and ``other``."""
        if self._direction == "parents":
            return self._record, other
        return other, self._record


def _saved_records(model: type[Record], records: tuple[Any, ...]) -> list[Record]:
    flat: list[Any] = []
    for item in records:
        if isinstance(item, Iterable) and not isinstance(item, str | model):
            flat.extend(item)
        else:
            flat.append(item)
    for item in flat:
        if not isinstance(item, model):
            raise InvalidArgument(f"parents/children take Record objects, not {item!r}.")
        if item.id is None:
            raise InvalidArgument(f"Save {item!r} before linking it.")
    return flat


def _is_ancestor_or_self(model: type[Record], session: Session, candidate: int, *, of: int) -> bool:
    """Whether ``candidate`` is ``of`` or reached from it by following parent links."""
    links = record_parents
    anchor = select(model.id.label("id")).where(model.id == of)
    ancestors = anchor.cte("ancestors", recursive=True)
    step = select(links.c.parent_id).join(ancestors, links.c.child_id == ancestors.c.id)
    ancestors = ancestors.union(step)  # UNION, not UNION ALL: stops on revisits
    found = select(literal(1)).select_from(ancestors).where(ancestors.c.id == candidate).limit(1)
    return session.execute(found).first() is not None


def _link(session: Session, child_id: int, parent_id: int) -> None:
    links = record_parents
    linked = exists().where(and_(links.c.child_id == child_id, links.c.parent_id == parent_id))
    if not session.execute(select(linked)).scalar():
        session.execute(insert(links).values(child_id=child_id, parent_id=parent_id))
