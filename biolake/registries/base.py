"""The base every registry derives from: identity, timestamps, creator, save/delete, queries."""

from __future__ import annotations

import datetime as dt
import functools
import inspect
from typing import TYPE_CHECKING, Any, ClassVar, Self

from sqlalchemy import JSON, String
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import (
    Mapped,
    mapped_column,
    object_session,
)

from biolake.core.connect import current_instance
from biolake.core.ids import new_uid
from biolake.core.log import logger
from biolake.core.schema.base import Base, UTCDateTime, utcnow
from biolake.core.values import json_problem, text_problem
from biolake.errors import (
    InvalidArgument,
    MultipleResultsFound,
    ObjectDoesNotExist,
    ValidationError,
    did_you_mean,
    short_repr,
)
from biolake.query.queryset import QuerySet
from biolake.registries.describe import describe_registry

if TYPE_CHECKING:
    from biolake.core.instance import Instance


class Registry(Base):
    """A table of biolake objects; subclasses are the public registries (``ln.Artifact`` …)."""

    __abstract__ = True
    _uid_length: ClassVar[int] = 12
    # Filters applied unless the caller filters on the same field (trash is hidden by default).
    _default_filters: ClassVar[dict[str, Any]] = {"visibility": "default"}
    # Fields shown first by repr and describe; the rest follow in column order.
    _repr_fields: ClassVar[tuple[str, ...]] = ()
    # Bookkeeping columns left out of repr (they stay in to_dataframe and describe).
    _repr_hidden: ClassVar[tuple[str, ...]] = ("created_by_id",)
    # Other names filter() accepts for a field, e.g. Transform's ``name`` for ``key``.
    _field_aliases: ClassVar[dict[str, str]] = {}

    DoesNotExist: ClassVar[type[ObjectDoesNotExist]]
    MultipleResultsFound: ClassVar[type[MultipleResultsFound]]

    # sort_order: identity first, bookkeeping last, in tables and DataFrames.
    id: Mapped[int] = mapped_column(primary_key=True, sort_order=-10)
    uid: Mapped[str] = mapped_column(String(20), unique=True, sort_order=-9)
    # Not indexed on its own: nearly every row is "default", so such an index only misleads
    # the query planner (SQLite picked it over the key index and scanned the table).
    visibility: Mapped[str] = mapped_column(String(8), default="default", sort_order=10)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow, sort_order=11)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "__init__" in cls.__dict__:  # now SQLAlchemy's instrumented one, real signature kept
            cls.__init__ = _explain_wrong_calls(cls.__name__, cls.__init__)  # type: ignore[method-assign]
        name = cls.__name__
        module = cls.__module__
        cls.DoesNotExist = type(
            "DoesNotExist",
            (ObjectDoesNotExist,),
            {"__qualname__": f"{name}.DoesNotExist", "__module__": module},
        )
        cls.MultipleResultsFound = type(
            "MultipleResultsFound",
            (MultipleResultsFound,),
            {"__qualname__": f"{name}.MultipleResultsFound", "__module__": module},
        )

    # --- queries -------------------------------------------------------------------------------

    @classmethod
    def objects(cls, instance: Instance | None = None) -> QuerySet[Self]:
        """All rows (trash hidden) of the current instance, or of ``instance``."""
        return QuerySet(cls, instance)

    @classmethod
    def filter(cls, *queries: Any, **lookups: Any) -> QuerySet[Self]:
        """Rows matching Django-style lookups: ``ln.Artifact.filter(suffix=".csv")``."""
        return cls.objects().filter(*queries, **lookups)

    @classmethod
    def exclude(cls, **lookups: Any) -> QuerySet[Self]:
        """Rows not matching the lookups."""
        return cls.objects().exclude(**lookups)

    @classmethod
    def get(cls, uid: str | int | None = None, /, **lookups: Any) -> Self:
        """Exactly one row, by uid (or a unique uid prefix), by id (an int) or by lookups.

        Example: ``ln.User.get(handle="alice")``. Raises ``DoesNotExist`` or
        ``MultipleResultsFound`` with the filter in the message.
        """
        return cls.objects().get(uid, **lookups)

    # Hooks of the query layer; registries with features override them.

    @classmethod
    def _resolve_extra(cls, entity: Any, parts: list[str], value: Any, dialect: str) -> Any:
        """A condition for a key that is not a field (e.g. a feature name), or None."""
        return None

    @classmethod
    def _check_lookup_value(cls, name: str, lookup: str, value: Any) -> None:
        """Raise InvalidArgument for a field value that can only be a mistake (no rows)."""

    @classmethod
    def _lookup_value(cls, name: str, lookup: str, value: Any) -> tuple[str, Any]:
        """The lookup and value compared with field ``name``, in the form the field is stored
        in (Artifact keys: NFC); by default unchanged."""
        return lookup, value

    @classmethod
    def _filter_names(cls) -> list[str]:
        """Every name ``filter`` accepts as the first part of a key (for suggestions)."""
        mapper = sa_inspect(cls)
        return [*mapper.column_attrs.keys(), *mapper.relationships.keys()]

    @classmethod
    def _unknown_name_message(cls, name: str, lookup: str) -> str:
        """What ``filter`` says about ``name``, which is none of ``_filter_names``."""
        fields = cls._filter_names()
        return (
            f"{cls.__name__} has no field {name!r} (in {lookup}).{did_you_mean(name, fields)}"
            f" Fields: {', '.join(sorted(fields))}."
        )

    @classmethod
    def _plan_terms(cls, conds: list[Any], terms: list[Any]) -> list[Any]:
        """The conditions of one filter() with several terms (feature conditions), reordered
        for speed."""
        return conds

    @classmethod
    def _count_terms(
        cls, where: tuple[Any, ...], terms: tuple[Any, ...], defaults: dict[str, Any], db: Any
    ) -> Any:
        """A faster statement for ``count()`` of a filter with terms, or None."""
        return None

    @classmethod
    def _missing_hint(cls, queryset: QuerySet[Any], lookups: dict[str, Any]) -> str:
        """What to add to the message of a ``get(**lookups)`` that matched nothing."""
        return ""

    @classmethod
    def _uid_condition(cls, uid: str) -> Any:
        """Match a full uid exactly, a shorter one as a prefix."""
        if len(uid) >= cls._uid_length:
            return cls.uid == uid
        return cls.uid.startswith(uid, autoescape=True)

    @classmethod
    def _include_in_dataframe(cls, queryset: QuerySet[Any], df: Any, include: Any) -> Any:
        raise InvalidArgument(f"{cls.__name__}.to_dataframe() takes no include={include!r}.")

    # --- instance & session --------------------------------------------------------------------

    @property
    def _instance(self) -> Instance:
        session = object_session(self)
        if session is not None:
            return session.info["instance"]
        return current_instance()

    def _belongs_to(self, instance: Instance) -> bool:
        """Whether this row lives in ``instance`` (a row whose instance was closed lives in none:
        ``_instance`` would fall back to the current one)."""
        session = object_session(self)
        return session is not None and session.info.get("instance") is instance

    def save(self) -> Self:
        """Insert or update this row in one transaction and return it."""
        instance = self._instance
        with instance.db.write() as session:
            self._before_save(instance)
            session.add(self)
            session.flush()
        return self

    def _save_unique(self) -> Self:
        """Insert this row, or return the stored row that ``_existing`` finds (same name …).

        The stored row stands in for this one; a new description is written to it. Safe
        against another process inserting the same row at the same moment.
        """
        from sqlalchemy.exc import IntegrityError as SAIntegrityError

        instance = self._instance
        self._check_text()  # before _existing looks the row up by its text
        with instance.db.write() as session:
            existing = self._existing(session)
            if existing is None:
                self._before_save(instance)
                try:
                    with session.begin_nested():  # a savepoint: the race below rolls back alone
                        session.add(self)
                    return self
                except SAIntegrityError:
                    existing = self._existing(session)
                    if existing is None:
                        raise
            return self._reuse(existing, session)

    def _existing(self, session: Any) -> Self | None:
        """The stored row this unsaved one duplicates (for ``_save_unique``)."""
        return None

    def _reuse(self, existing: Self, session: Any, reason: str = "") -> Self:
        """Log that ``existing`` stands in for this unsaved row; a new description is written."""
        stored: Any = existing  # registries with a description (Record, Feature, Artifact)
        message = f"returning the existing {type(self).__name__.lower()} {stored._reuse_label()}"
        if reason:
            message += f": {reason}"
        new_description = getattr(self, "description", None)
        if new_description is not None and new_description != stored.description:
            stored.description = new_description
            session.flush()
            message += "; its description was updated"
        logger.info(message)
        return existing

    def _reuse_label(self) -> str:
        name = getattr(self, "name", None)
        return repr(name) if name else self.uid

    @classmethod
    def _save_many(cls, instance: Instance, objects: list[Any]) -> list[Any]:
        """Save a batch in one transaction (the ORM batches the INSERTs); returns the saved
        objects in order."""
        with instance.db.write() as session:
            for obj in objects:
                obj._before_save(instance)
            session.add_all(objects)
            session.flush()
        return objects

    def _before_save(self, instance: Instance) -> None:
        """Fill defaults that need the instance (uid, creator); subclasses extend it."""
        if not self.uid:
            self.uid = new_uid(self._uid_length)
        self._default_creator(instance)

    def _default_creator(self, instance: Instance) -> None:
        """Set the creator of a new row; registries with ``created_by`` (``CreatedBy``) do."""

    def _check_text(self) -> None:
        """Refuse text that a backend would refuse or change, the same way on both: NUL and
        lone surrogates in text and JSON fields (PostgreSQL cannot store them; a SQLite row
        holding one could never be looked up by that text), and text longer than its column
        (PostgreSQL refuses it with a driver error; SQLite would store it).

        Every flush runs it (``biolake.core.db``); paths that query or store bytes by an object's
        values before flushing it (``_save_unique``, artifact saves) run it first.
        """
        state = self.__dict__
        name = type(self).__name__
        for key, max_length in _text_fields(type(self)):
            value = state.get(key)
            if value is None:
                continue
            problem = text_problem(value)
            if problem is not None:
                raise ValidationError(
                    f"{name}.{key} must not contain {problem}: {short_repr(value)}. Remove "
                    "them before saving."
                )
            problem = json_problem(value) if key in _json_fields(type(self)) else None
            if problem is not None:
                raise ValidationError(
                    f"{name}.{key} must be JSON (str, int, float, bool, None, and lists and dicts "
                    f"with str keys of them), but holds {problem}. Store such a value as text, or "
                    "as an artifact and give its uid."
                )
            if max_length is not None and isinstance(value, str) and len(value) > max_length:
                raise ValidationError(
                    f"{name}.{key} is at most {max_length} characters, got {len(value)}: "
                    f"{short_repr(value)}. Shorten it (a long text fits a description)."
                )

    def delete(self, permanent: bool = False) -> None:
        """Move the row to the trash, or remove it for good with ``permanent=True``."""
        self._check_stored("delete")
        instance = self._instance
        with instance.db.write() as session:
            if permanent:
                session.delete(self)
            else:
                self.visibility = "trash"
            session.flush()

    def restore(self) -> Self:
        """Bring a trashed row back."""
        self._check_stored("restore")
        with self._instance.db.write() as session:
            self.visibility = "default"
            session.flush()
        return self

    def _check_stored(self, action: str) -> None:
        """Deleting or restoring an unsaved or permanently deleted row would silently do
        nothing: say so instead."""
        name = type(self).__name__
        state = sa_inspect(self)
        if state.was_deleted:
            uid = state.dict.get("uid", "")
            raise ObjectDoesNotExist(
                f"Cannot {action} {name} {uid}: it was deleted permanently (only a row in the "
                "trash can be restored)."
            )
        if self.id is None:
            raise InvalidArgument(f"Cannot {action} an unsaved {name}: call .save() first.")

    # --- display -------------------------------------------------------------------------------

    def describe(self, return_str: bool = False) -> str | None:
        """Print a tree of this row's fields (and features); ``return_str=True`` returns it."""
        return describe_registry(self, return_str=return_str)

    @classmethod
    def _field_names(cls) -> list[str]:
        """Column names: ``id``, then the ``_repr_fields`` (what identifies a row), then the rest.

        This is the column order of ``to_dataframe()``, so ``key``/``name`` stay visible.
        """
        names = [c.key for c in sa_inspect(cls).column_attrs]
        first = ["id", *(n for n in cls._repr_fields if n in names)]
        return first + [n for n in names if n not in first]

    def __repr__(self) -> str:
        parts = []
        for name in self._field_names():
            value = getattr(self, name, None)
            if name == "id" or name in self._repr_hidden or value is None:
                continue
            if name == "visibility" and value == "default":
                continue
            if isinstance(value, dt.datetime):
                value = value.isoformat(timespec="seconds")
            parts.append(f"{name}={short_repr(value)}")
        return f"{type(self).__name__}({', '.join(parts)})"


def _explain_wrong_calls(name: str, init: Any) -> Any:
    """``init``, whose wrong calls (``ln.Record("x")``, ``ln.Record()``) raise a TypeError that
    names the registry and shows how to call it, where Python's only says ``__init__()``.
    Costs nothing on a right call: the signature is checked only after a TypeError."""

    @functools.wraps(init)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        try:
            init(self, *args, **kwargs)
        except TypeError:
            signature = inspect.signature(init)
            known = list(signature.parameters)[1:]
            unknown = [k for k in kwargs if k not in known]
            try:
                signature.bind(self, *args, **kwargs)
            except TypeError as wrong:
                problem = f"unexpected argument {unknown[0]!r}" if unknown else str(wrong)
                hint = did_you_mean(unknown[0], known) if unknown else ""
                raise TypeError(
                    f"ln.{name}(): {problem}.{hint} Call it as "
                    f"ln.{name}({_call_pattern(signature)})."
                ) from None
            raise  # a TypeError from inside: not about the call

    return __init__


def _call_pattern(signature: inspect.Signature) -> str:
    """``"path, *, key=None, …"`` from ``__init__``'s parameters, ``self`` left out."""
    parts = []
    for param in list(signature.parameters.values())[1:]:
        if param.kind is param.KEYWORD_ONLY and "*" not in parts:
            parts.append("*")
        required = param.default is param.empty
        parts.append(param.name if required else f"{param.name}={param.default!r}")
    return ", ".join(parts)


@functools.cache
def _json_fields(model: type[Registry]) -> frozenset[str]:
    return frozenset(
        attr.key for attr in model.__mapper__.column_attrs if isinstance(attr.columns[0].type, JSON)
    )


@functools.cache
def _text_fields(model: type[Registry]) -> tuple[tuple[str, int | None], ...]:
    """(attribute key, length limit or None) of ``model``'s text and JSON columns."""
    return tuple(
        (attr.key, getattr(attr.columns[0].type, "length", None))
        for attr in model.__mapper__.column_attrs
        if isinstance(attr.columns[0].type, String | JSON)
    )
