"""Records: samples, cell lines, perturbations … typed by other records, linked in a hierarchy.

A record with ``is_type=True`` is a type (``Sample``); other records point to it with ``type=``.
A record's name is unique within its type, so saving the same (name, type) again returns the
record that is already stored. ``parents``/``children`` form a directed acyclic graph.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Self, cast

from sqlalchemy import (
    Boolean,
    ForeignKey,
    Index,
    String,
    Text,
    func,
    select,
)
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates

from biolake.errors import ValidationError
from biolake.registries.base import Registry
from biolake.registries.describe import describe_record
from biolake.registries.feature import Feature
from biolake.registries.record_links import RelatedRecords, record_parents
from biolake.registries.user import CreatedBy
from biolake.search.searchable import Searchable

if TYPE_CHECKING:
    from biolake.query.queryset import QuerySet


class Record(Searchable, CreatedBy, Registry):
    """An entity such as a sample; ``is_type=True`` makes it a type for other records.

    Example::

        sample_type = ln.Record(name="Sample", is_type=True).save()
        ln.Record(name="P53mutant1", type=sample_type).save()
        ln.Record.filter(type=sample_type).to_dataframe()
    """

    __tablename__ = "records"
    _repr_fields = ("uid", "name", "type_id", "is_type")
    _search_fields: ClassVar[tuple[str, ...]] = ("name", "description")
    _field_aliases: ClassVar[dict[str, str]] = {
        "parents": "parent_records",
        "children": "child_records",
    }

    name: Mapped[str] = mapped_column(String(255))
    type_id: Mapped[int | None] = mapped_column(ForeignKey("records.id"), index=True)
    is_type: Mapped[bool] = mapped_column(Boolean, default=False)
    description: Mapped[str | None] = mapped_column(Text)

    type: Mapped[Record | None] = relationship(remote_side="Record.id")
    # Used by filter() only (``ln.Record.filter(parents=r)``); read and edit through
    # the ``parents`` / ``children`` managers.
    parent_records: Mapped[list[Record]] = relationship(
        secondary=record_parents,
        primaryjoin="Record.id == record_parents.c.child_id",
        secondaryjoin="Record.id == record_parents.c.parent_id",
        viewonly=True,
    )
    child_records: Mapped[list[Record]] = relationship(
        secondary=record_parents,
        primaryjoin="Record.id == record_parents.c.parent_id",
        secondaryjoin="Record.id == record_parents.c.child_id",
        viewonly=True,
    )

    def __init__(
        self,
        *,
        name: str,
        type: Record | None = None,
        is_type: bool = False,
        description: str | None = None,
    ) -> None:
        # name, then type: each checked by _check_edit
        super().__init__(name=name, type=type, is_type=is_type, description=description)

    @validates("name", "type")
    def _check_edit(self, field: str, value: Any) -> Any:
        """A renamed or retyped record follows the rules of a new one, checked when set (a
        later write would flush the change even without save())."""
        if field == "name":
            _check_name(value)
        else:
            _check_type(self.name, value)
            if value is self:
                raise ValidationError(f"Record {self.name!r} cannot be its own type.")
        return value

    # --- saving --------------------------------------------------------------------------------

    def save(self) -> Self:
        """Insert the record, or return the stored one with the same name and type.

        Example: ``sample_type = ln.Record(name="Sample", is_type=True).save()``
        """
        if self.id is not None:
            self._check_still_a_type()
            return super().save()
        _check_type(self.name, self.type)
        return self._save_unique()

    def _check_still_a_type(self) -> None:
        """A type with members or categorical features must stay a type."""
        if self.is_type or not sa_inspect(self).attrs.is_type.history.has_changes():
            return
        if Record.filter(type=self).exists() or Feature.filter(record_type=self).exists():
            raise ValidationError(
                f"Record {self.name!r} is the type of other records or of a feature: it must "
                "keep is_type=True."
            )

    def _existing(self, session: Any) -> Record | None:
        type_id = self.type.id if self.type is not None else None
        stmt = select(Record).where(
            Record.name == self.name,
            Record.type_id.is_(None) if type_id is None else Record.type_id == type_id,
        )
        found = session.scalars(stmt).first()
        if found is not None and found.visibility == "trash":
            raise ValidationError(
                f"A record named {self.name!r} of this type is in the trash: restore it with "
                f"ln.Record.filter(name={self.name!r}, visibility='trash').one().restore()."
            )
        return cast("Record | None", found)

    @classmethod
    def _save_many(cls, instance: Any, objects: list[Any]) -> list[Any]:
        """Save in one transaction; a duplicate (name, type) stands in for the stored record."""
        with instance.db.write():
            return [obj.save() for obj in objects]

    # --- relatives -----------------------------------------------------------------------------

    @property
    def parents(self) -> RelatedRecords:
        """The records this one derives from: ``.add()``, ``.remove()`` and QuerySet reads."""
        return RelatedRecords(self, "parents")

    @property
    def children(self) -> RelatedRecords:
        """The records that list this one among their parents."""
        return RelatedRecords(self, "children")

    @property
    def instances(self) -> QuerySet[Record]:
        """The records of this type: ``sample_type.instances.to_dataframe()``."""
        if not self.is_type:
            raise ValidationError(f"Record {self.name!r} is not a type (is_type=False).")
        return Record.filter(type=self)

    def describe(self, return_str: bool = False) -> str | None:
        """Print a tree of the record's fields, parents and children; ``return_str=True``
        returns it. Example: ``ln.Record.get(name="P53mutant1").describe()``"""
        return describe_record(self, return_str=return_str)

    @classmethod
    def _filter_names(cls) -> list[str]:
        return [*super()._filter_names(), *cls._field_aliases]


# One (name, type) pair per instance; records without a type share the key 0 (NULLs would
# never collide in a plain unique constraint).
Index("uq_records_name_type", Record.name, func.coalesce(Record.type_id, 0), unique=True)


def _check_name(name: Any) -> None:
    if not isinstance(name, str) or not name.strip():
        raise ValidationError(f"A record needs a non-empty name, got {name!r}.")


def _check_type(name: str, type_: Any) -> None:
    if type_ is None:
        return
    if not isinstance(type_, Record):
        raise ValidationError(
            f"type= takes a Record type, not {type_!r}: "
            "e.g. type=ln.Record(name='Sample', is_type=True).save()."
        )
    if not type_.is_type:
        raise ValidationError(
            f"Record {type_.name!r} is not a type, so it cannot be the type of {name!r}: "
            f"create types with is_type=True, e.g. ln.Record(name={type_.name!r}, is_type=True)."
        )
    if type_.id is None:
        raise ValidationError(f"Save the type {type_.name!r} before creating records of it.")
