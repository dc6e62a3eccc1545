"""Features: named, typed metadata that artifacts and runs are annotated with and queried by."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Self

from sqlalchemy import ForeignKey, String, Text, select
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import Mapped, mapped_column, relationship

from biolake.core.values import DtypeError
from biolake.errors import ValidationError
from biolake.features.dtypes import Dtype, parse_dtype
from biolake.features.manager import HasFeatures, restore_call
from biolake.registries.base import Registry
from biolake.registries.user import CreatedBy
from biolake.search.searchable import Searchable

if TYPE_CHECKING:
    from biolake.registries.record import Record


class Feature(Searchable, CreatedBy, Registry):
    """A typed annotation key, e.g. ``ln.Feature(name="read_count", dtype=int).save()``.

    ``dtype`` is ``int``, ``float``, ``bool``, ``str``, ``datetime.date``, ``datetime.datetime``,
    ``dict``, ``list[int]``, ``list[float]``, ``list[str]``, a Record type (categorical values
    that are records of that type), or the same as a string (``"int"``, ``"list[str]"``,
    ``"cat[Record[Sample]]"``). Saving a feature whose name exists returns the stored one when the
    dtype is the same, and raises ``ValidationError`` when it differs.
    """

    __tablename__ = "features"
    _repr_fields = ("uid", "name", "dtype")
    _search_fields: ClassVar[tuple[str, ...]] = ("name", "description")

    name: Mapped[str] = mapped_column(String(255), unique=True)
    dtype: Mapped[str] = mapped_column(String(300))
    record_type_id: Mapped[int | None] = mapped_column(ForeignKey("records.id"), index=True)
    description: Mapped[str | None] = mapped_column(Text)

    record_type: Mapped[Record | None] = relationship()

    def __init__(self, *, name: str, dtype: Any, description: str | None = None) -> None:
        check_feature_name(name)
        try:
            dtype_str, record_type = parse_dtype(dtype)
        except DtypeError as exc:
            raise ValidationError(f"Feature {name!r}: {exc}") from None
        super().__init__(
            name=name, dtype=dtype_str, record_type=record_type, description=description
        )

    @property
    def parsed_dtype(self) -> Dtype:
        return Dtype.from_string(self.dtype, self.record_type_id)

    def save(self) -> Self:
        """Insert the feature, or return the stored one of the same name and dtype."""
        if self.id is not None:
            self._check_unchanged_definition()
            return super().save()
        return self._save_unique()

    def _check_unchanged_definition(self) -> None:
        # Stored values were validated against the dtype: changing it would make them lie.
        state = sa_inspect(self)
        for attr in ("name", "dtype", "record_type_id", "record_type"):
            if state.attrs[attr].history.has_changes():
                raise ValidationError(
                    f"The {attr} of feature {self.name!r} cannot change once saved: define a new "
                    "feature (and move the values) instead."
                )

    def _existing(self, session: Any) -> Feature | None:
        found: Feature | None = session.scalars(
            select(Feature).where(Feature.name == self.name)
        ).first()
        if found is None:
            return None
        if found.visibility == "trash":
            raise ValidationError(
                f"A feature named {self.name!r} is in the trash: restore it with "
                f"{restore_call(self.name)}."
            )
        type_id = self.record_type.id if self.record_type is not None else None
        # Categorical dtypes compare by type record: its name may have changed since.
        same = found.record_type_id == type_id and (
            type_id is not None or found.dtype == self.dtype
        )
        if not same:
            raise ValidationError(
                f"Feature {self.name!r} is already defined with dtype {found.dtype!r}, not "
                f"{self.dtype!r}. Use the existing feature, or define one with another name."
            )
        return found


def check_feature_name(name: Any) -> None:
    """Reject names that cannot be a filter key or that a host's field already uses."""
    if not isinstance(name, str) or not name.strip() or name != name.strip():
        raise ValidationError(
            f"A feature name must be a non-empty string without surrounding spaces, not {name!r}."
        )
    if "__" in name:
        raise ValidationError(
            f"Feature name {name!r} contains '__', which separates lookups in filters "
            f"(e.g. read_count__gt): use {name.replace('__', '_')!r}."
        )
    if len(name) > 255:
        raise ValidationError(f"Feature names are at most 255 characters, got {len(name)}.")
    for host, fields in host_field_names().items():
        if name in fields:
            raise ValidationError(
                f"Feature name {name!r} is a field of {host}: filters could not tell them apart."
                f" Choose another name, e.g. {name + '_value'!r}."
            )


def host_field_names() -> dict[str, set[str]]:
    """The field and relation names of every registry that carries features."""
    return {host.__name__: host._reserved_names() for host in HasFeatures.hosts()}
