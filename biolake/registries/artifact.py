"""Artifacts: files, folders, DataFrames and AnnData registered under a key, with versions.

See ``biolake/artifacts/versioning.py`` for what a save does, and ``docs/artifacts.md`` for the
rules.
"""

from __future__ import annotations

import contextlib
import functools
import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Self

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates

from biolake.artifacts.integrity import checked_path
from biolake.artifacts.keys import key_lookup, stored_form, validate_key
from biolake.artifacts.loaders import load, open_artifact, suffix_of
from biolake.artifacts.versioning import (
    STEM_LENGTH,
    VERSION_SUFFIX_LENGTH,
    delete_artifact,
    rename_versions,
    restore_artifact,
    save_artifacts,
)
from biolake.artifacts.writers import suffix_for_anndata, write_anndata, write_dataframe
from biolake.core.connect import current_instance
from biolake.core.log import logger
from biolake.errors import InvalidArgument, StorageError, ValidationError, short_repr
from biolake.features.manager import HasFeatures
from biolake.registries import lineage
from biolake.registries.base import Registry
from biolake.registries.describe import describe_artifact
from biolake.registries.project import Project, add_links, link_table
from biolake.registries.run import Run
from biolake.registries.storage import root_storage_id
from biolake.registries.user import CreatedBy
from biolake.search.searchable import Searchable
from biolake.tracking.context import current_run

if TYPE_CHECKING:
    from biolake.core.instance import Instance
    from biolake.query.queryset import QuerySet
    from biolake.registries.storage import Storage
    from biolake.registries.transform import Transform
    from biolake.tracking.lineage_svg import LineagePicture

artifact_projects = link_table("artifact_projects", "artifacts", "projects")


class Artifact(Searchable, HasFeatures, CreatedBy, Registry):
    """A dataset: a file or folder (any suffix), a DataFrame or an AnnData object.

    Example::

        artifact = ln.Artifact("sample.fasta", key="sample.fasta").save()
        ln.Artifact.get(key="sample.fasta").load()
    """

    __tablename__ = "artifacts"
    __table_args__ = (
        UniqueConstraint("stem", "version"),
        # Exactly one latest version per stem, enforced by the database itself.
        Index(
            "uq_artifacts_latest_stem",
            "stem",
            unique=True,
            sqlite_where=text("is_latest"),
            postgresql_where=text("is_latest"),
        ),
        Index("ix_artifacts_key_latest", "key", "is_latest"),
    )
    _uid_length: ClassVar[int] = STEM_LENGTH + VERSION_SUFFIX_LENGTH
    _repr_fields = ("uid", "key", "version", "is_latest", "suffix", "size", "hash")
    _repr_hidden = ("created_by_id", "stem", "storage_id", "storage_key", "storage_fingerprint")
    _search_fields = ("key", "description")

    key: Mapped[str | None] = mapped_column(String(1024))
    description: Mapped[str | None] = mapped_column(Text)
    suffix: Mapped[str] = mapped_column(String(64), default="")
    kind: Mapped[str] = mapped_column(String(16), default="file")
    size: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(80), index=True)
    n_files: Mapped[int | None]
    # No index of their own: the unique (stem, version) index answers stem lookups, and
    # reference checks find storage keys by hash (see versioning._delete_unreferenced).
    stem: Mapped[str] = mapped_column(String(STEM_LENGTH))
    version: Mapped[str] = mapped_column(String(32))
    is_latest: Mapped[bool] = mapped_column(Boolean, default=True)
    storage_id: Mapped[int] = mapped_column(ForeignKey("storages.id"), index=True)
    storage_key: Mapped[str] = mapped_column(String(1024))
    # The stored object's fingerprint when it was last found intact (migration 0007 says why
    # it lives on the row); set by biolake, None until then or for storage that keeps none.
    storage_fingerprint: Mapped[str | None] = mapped_column(String(96))
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id"), index=True)
    transform_id: Mapped[int | None] = mapped_column(ForeignKey("transforms.id"), index=True)

    storage: Mapped[Storage] = relationship()
    run: Mapped[Run | None] = relationship(foreign_keys=[run_id])
    transform: Mapped[Transform | None] = relationship()
    projects: Mapped[list[Project]] = relationship(secondary=artifact_projects)
    input_of_runs: Mapped[list[Run]] = relationship(
        secondary="run_inputs", back_populates="input_artifacts"
    )

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        key: str | None = None,
        description: str | None = None,
        version: str | None = None,
        run: Run | None = None,
    ) -> None:
        # A str, not a Path: pathlib's parsing was a third of this constructor's time.
        source = os.path.abspath(os.path.expanduser(path))
        try:
            mode = os.stat(source).st_mode
        except FileNotFoundError:
            raise FileNotFoundError(
                f"No such file or folder: '{source}' (the artifact's path)."
            ) from None
        is_dir = stat.S_ISDIR(mode)
        if not is_dir and not stat.S_ISREG(mode):
            raise ValidationError(
                f"'{source}' is {_file_kind(mode)}, not a file or folder: its bytes never end "
                "(/dev/zero) or wait for a writer (a FIFO). Copy what you want to keep into a "
                "file and register that."
            )
        suffix = _storable_suffix(source)
        if key is not None:
            key = validate_key(key)
            _check_key_suffix(key, suffix, repr(os.path.basename(source)))
        if run is not None:
            _check_run(run)
        fields: dict[str, Any] = {"suffix": suffix, "kind": "folder" if is_dir else "file"}
        # Only what is set: each argument is an attribute event (a relationship's is costly),
        # and ln.save() of 10,000 files builds 10,000 artifacts.
        for name, value in (("key", key), ("description", description), ("run", run)):
            if value is not None:
                fields[name] = value
        super().__init__(**fields)
        if version is not None:
            if not isinstance(version, str) or not version.strip():
                raise ValidationError(f"version must be a non-empty string, not {version!r}.")
            self.version = version
        self._source: str | None = source
        self._cleanup: Path | None = None  # a temp file we wrote (DataFrame, AnnData)

    @validates(
        "key",
        "hash",
        "size",
        "n_files",
        "suffix",
        "kind",
        "uid",
        "stem",
        "version",
        "storage_key",
        "storage_id",
    )
    def _fixed_once_saved(self, name: str, value: Any) -> Any:
        """What identifies stored content never changes on a saved artifact: refused when set,
        so the next write cannot flush it either."""
        if name == "key":
            value = stored_form(value)  # in NFC, as keys are stored
        state = sa_inspect(self)
        if state.key is None or state.dict.get(name) == value:  # not saved yet, or no change
            return value
        if name == "key":  # a rename: save() renames every version (see _rename_versions)
            if value is None:
                raise ValidationError("A saved artifact's key cannot be removed (set to None).")
            _check_key_suffix(validate_key(value), self.suffix, "the stored file")
            return value
        raise ValidationError(f"Artifact.{name} is set by biolake when saving; it cannot change.")

    # --- constructors from objects -------------------------------------------------------------

    @classmethod
    def from_dataframe(
        cls,
        df: Any,
        *,
        key: str | None = None,
        description: str | None = None,
        version: str | None = None,
        run: Run | None = None,
    ) -> Self:
        """An artifact holding ``df`` as Parquet (the index is kept).

        A file on disk (CSV, Parquet …) is registered as it is with ``ln.Artifact(path, key=...)``.
        """
        if isinstance(df, str | os.PathLike):
            path = os.fspath(df)
            raise InvalidArgument(
                f"from_dataframe takes a pandas DataFrame, not the path {path!r}: register the "
                f"file as it is with ln.Artifact({path!r}, key=...), or read it first, e.g. "
                f"ln.Artifact.from_dataframe(pd.read_csv({path!r}), key=...)."
            )

        return cls._from_object(
            df, write_dataframe, ".parquet", "dataframe", key, description, version, run
        )

    @classmethod
    def from_anndata(
        cls,
        adata: Any,
        *,
        key: str | None = None,
        description: str | None = None,
        version: str | None = None,
        run: Run | None = None,
    ) -> Self:
        """An artifact holding ``adata`` as h5ad, or zarr when the key ends in ``.zarr``.

        ``adata`` may also be the path of an .h5ad file or a .zarr folder: it is registered as
        it is, as an AnnData artifact. Example:
        ``ln.Artifact.from_anndata("pbmc.h5ad", key="scrna/pbmc.h5ad").save()``
        """
        if isinstance(adata, str | os.PathLike):
            return cls._anndata_path(os.fspath(adata), key, description, version, run)
        suffix = suffix_for_anndata(key)
        return cls._from_object(
            adata, write_anndata, suffix, "anndata", key, description, version, run
        )

    @classmethod
    def _anndata_path(
        cls,
        path: str,
        key: str | None,
        description: str | None,
        version: str | None,
        run: Run | None,
    ) -> Self:
        """An artifact of kind "anndata" for an .h5ad file or .zarr folder on disk, registered
        as it is; other suffixes raise."""
        if suffix_of(os.path.normpath(path)).lower() not in (".h5ad", ".zarr"):
            raise InvalidArgument(
                f"from_anndata takes an AnnData object or the path of an .h5ad file or a .zarr "
                f"folder, not {path!r}: register other files with ln.Artifact({path!r}, key=...)."
            )
        artifact = cls(path, key=key, description=description, version=version, run=run)
        artifact.kind = "anndata"
        return artifact

    @classmethod
    def _from_object(
        cls,
        obj: Any,
        write: Any,
        suffix: str,
        kind: str,
        key: str | None,
        description: str | None,
        version: str | None,
        run: Run | None,
    ) -> Self:
        if key is not None:  # any suffix: the seed saves a DataFrame under "processed/x.csv"
            validate_key(key)
        staging = current_instance().root / ".biolake" / "staging"
        staging.mkdir(parents=True, exist_ok=True)
        import tempfile

        tmp_dir = Path(tempfile.mkdtemp(dir=staging))
        path = tmp_dir / f"object{suffix}"
        try:
            write(obj, path)
        except BaseException:
            _remove_tree(tmp_dir)
            raise
        artifact = cls(path, description=description, version=version, run=run)
        artifact.key = key
        if key is not None and not key.lower().endswith(suffix):
            logger.info(f"key {key!r}: the {kind} is stored as {suffix} and load() reads it so")
        artifact.kind = kind
        artifact._cleanup = tmp_dir
        return artifact

    # --- saving --------------------------------------------------------------------------------

    def save(self) -> Self:
        """Store the bytes and register the artifact; returns the saved artifact.

        Same key and same content as the latest version: returns that existing artifact.
        Same key, new content: a new version. See ``docs/artifacts.md``.
        """
        if self.id is not None:  # an edit of a saved artifact
            if sa_inspect(self).attrs.key.history.has_changes():
                rename_versions(type(self), self)
            return super().save()
        return self._save_many(self._instance, [self])[0]

    def _check_text(self) -> None:
        """Also: a new key of a saved artifact is written only by its own ``save()``, which
        renames every version under the key locks; any other write refuses to flush it."""
        super()._check_text()
        state = sa_inspect(self)
        if state.persistent and state.attrs.key.history.has_changes():
            raise ValidationError(
                f"Artifact {self.uid} has a new key {self.key!r} that is not saved: call "
                "artifact.save() to rename it (and its other versions) before other writes."
            )

    @classmethod
    def _save_many(
        cls, instance: Instance, objects: list[Any], *, fresh_keys: bool = False
    ) -> list[Any]:
        """Save new artifacts in one transaction (``ln.save``); ``fresh_keys``: their keys
        are new by construction (see ``save_artifacts``)."""
        instance.db.check_writable()  # before any bytes are stored
        storage_id = functools.partial(root_storage_id, instance)
        run = current_run()
        if run is not None and not run._belongs_to(instance):
            run = None  # a run of another instance: its id means nothing here
        saved = save_artifacts(cls, instance, objects, storage_id, run, fresh_keys=fresh_keys)
        if run is not None:
            _link_projects(instance, run, saved)
        return saved

    # --- versions & lookups --------------------------------------------------------------------

    @classmethod
    def _uid_condition(cls, uid: str) -> Any:
        """A full uid is one version; a 16-character stem means its latest version."""
        if len(uid) >= cls._uid_length:
            return cls.uid == uid
        if len(uid) == STEM_LENGTH:
            return (cls.stem == uid) & cls.is_latest.is_(True)
        return cls.uid.startswith(uid, autoescape=True)

    @classmethod
    def get(cls, uid: str | int | None = None, /, **lookups: Any) -> Self:
        """One artifact: ``get(key=...)`` is the latest version under the key, ``get(uid)``
        that exact version, ``get(stem)`` the latest version of the stem, ``get(id)`` by id."""
        if isinstance(uid, str) and not uid.isalnum():
            raise InvalidArgument(
                f"{uid!r} is not a uid (uids are letters and digits): to get an artifact by "
                f"key, use ln.Artifact.get(key={uid!r})."
            )
        if uid is None and "key" in lookups and not {"is_latest", "version"} & set(lookups):
            lookups = {**lookups, "is_latest": True}
        return cls.objects().get(uid, **lookups)

    @classmethod
    def _lookup_value(cls, name: str, lookup: str, value: Any) -> tuple[str, Any]:
        """Keys are compared in NFC, as they are stored (see ``artifacts.keys.key_lookup``)."""
        return key_lookup(lookup, value) if name == "key" else (lookup, value)

    @classmethod
    def _check_lookup_value(cls, name: str, lookup: str, value: Any) -> None:
        """``suffix="h5ad"`` would silently match nothing: stored suffixes start with a dot."""
        if name != "suffix" or lookup not in ("exact", "in"):
            return
        many = lookup == "in" and isinstance(value, list | tuple | set | frozenset)
        for item in value if many else [value]:
            if isinstance(item, str) and item and not item.startswith("."):
                raise InvalidArgument(
                    f"Suffixes start with a dot: did you mean {'.' + item!r} instead of {item!r}?"
                )

    def _reuse_label(self) -> str:
        return f"{self.uid} (version {self.version})"

    @property
    def versions(self) -> QuerySet[Artifact]:
        """All versions of this artifact, oldest first (trash hidden)."""
        return type(self).filter(stem=self.stem).order_by("id")

    # --- reading -------------------------------------------------------------------------------

    def _require_saved(self) -> None:
        if self.id is None:
            raise InvalidArgument("This artifact is not saved yet: call .save() first.")

    def cache(self) -> Path:
        """A local path to the content; for local storage, the stored (read-only) object.

        Checked first, with one ``stat``: bytes changed in place since the save raise
        ``CorruptObjectError`` (see ``docs/artifacts.md``, "Integrity"). Never write to the path:
        copy it first. Example: ``pd.read_csv(ln.Artifact.get(key="t.csv").cache())``
        """
        self._require_saved()
        try:
            path = checked_path(type(self), self)
        except FileNotFoundError:
            raise StorageError(
                f"The stored object of artifact {self.uid} (key {self.key!r}, version "
                f"{self.version}) is missing from {self._instance.root}: {self.storage_key}. "
                "Restore it from a backup, save the same content again "
                "(ln.Artifact(path, key=...).save() puts the object back), or delete the "
                "artifact."
            ) from None
        self._note_input()
        return path

    def _note_input(self) -> None:
        """A read while a run is current makes the artifact an input of that run, unless the
        run made it (load and open read through cache)."""
        run = current_run()
        if run is not None and run.id != self.run_id and run._belongs_to(self._instance):
            run._add_input(self)

    def load(self) -> Any:
        """Load into memory by suffix: DataFrame, AnnData, dict, str … (see
        ``biolake.artifacts.loaders``)."""
        return load(self.cache(), self.suffix)

    @contextlib.contextmanager
    def open(self) -> Any:
        """Stream the content: a binary file, backed AnnData, zarr group or ParquetFile."""
        with open_artifact(self.cache(), self.suffix) as handle:
            yield handle

    def describe(self, return_str: bool = False) -> str | None:
        """Print a tree of the artifact's metadata; with ``return_str=True`` return the text."""
        return describe_artifact(self, return_str=return_str)

    # --- lineage -------------------------------------------------------------------------------

    def ancestors(self, depth: int | None = None) -> QuerySet[Artifact]:
        """The artifact versions this one was derived from: what the run that made it read,
        what the runs that made those read, and so on (``depth``: at most that many hops).

        Example: ``ln.Artifact.get(key="processed/counts.parquet").ancestors()``
        """
        return lineage.ancestors(type(self), self, depth)

    def descendants(self, depth: int | None = None) -> QuerySet[Artifact]:
        """The artifact versions derived from this one, at any depth or within ``depth`` hops.

        Example: ``ln.Artifact.get(key="raw/data.csv").descendants()`` (everything made from it)
        """
        return lineage.descendants(type(self), self, depth)

    def view_lineage(
        self, path: str | os.PathLike[str] | None = None, *, hops: int = 2, collapse: int = 4
    ) -> LineagePicture:
        """Draw the runs and artifacts around this one, ``hops`` runs each way, as SVG with no
        external program. A notebook shows the returned picture inline; elsewhere pass
        ``path="lineage.svg"`` to write it. Runs of one transform with the same inputs are
        drawn as one node when there are ``collapse`` or more.

        Example: ``artifact.view_lineage(path="lineage.svg")``
        """
        return lineage.view_lineage(type(self), Run, self, hops, path, collapse)

    # --- trash ---------------------------------------------------------------------------------

    def delete(self, permanent: bool = False) -> None:
        """Move to the trash (``restore()`` brings it back) or, with ``permanent=True``, remove
        the row and the stored bytes unless another artifact shares them."""
        self._check_stored("delete")
        delete_artifact(type(self), self, permanent=permanent)

    def restore(self) -> Self:
        """Bring a trashed artifact back; it becomes latest again if it is the newest version."""
        self._check_stored("restore")
        restore_artifact(type(self), self)
        return self


def _file_kind(mode: int) -> str:
    kinds = [
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISSOCK, "a socket"),
    ]
    return next((name for test, name in kinds if test(mode)), "a special file")


def _link_projects(instance: Instance, run: Run, artifacts: list[Artifact]) -> None:
    """The projects of the run that made new artifacts are theirs too (``ln.track(project=)``).
    A failure is a warning: the artifacts are saved already."""
    try:
        project_ids = [p.id for p in run.projects]
        made = [a.id for a in artifacts if a.run_id == run.id]
        if not project_ids or not made:
            return
        with instance.db.write() as session:
            add_links(session, artifact_projects, [(a, p) for a in made for p in project_ids])
    except Exception as exc:
        logger.warning(f"could not link the new artifacts to the run's projects: {exc!r}")


def _check_run(run: Any) -> None:
    if not isinstance(run, Run):
        raise InvalidArgument(
            f"run= takes an ln.Run (e.g. the one ln.track() returns), not {short_repr(run)}."
        )


def _check_key_suffix(key: str, suffix: str, what: str) -> None:
    """A key that names a format must name the stored one: ``x.csv`` never holds FASTA."""
    key_suffix = suffix_of(key)
    if key_suffix and suffix and key_suffix.lower() != suffix.lower():
        raise ValidationError(
            f"The key {key!r} ends in {key_suffix!r} but {what} is {suffix!r}: use a key "
            f"ending in {suffix!r} (e.g. {key[: -len(key_suffix)] + suffix!r}), so that the key "
            "says what the data is."
        )


def _storable_suffix(path: str) -> str:
    """The path's suffix (``.csv.gz`` kept whole), or ``""`` for one storage cannot name
    objects by (e.g. ``.final version`` with a space)."""
    # Here, not at the top: the storage package is loaded by the first artifact, not by
    # `import biolake.registries` (it brings blake3, mmap and a thread pool).
    from biolake.storage.base import check_suffix

    suffix = suffix_of(path)
    try:
        check_suffix(suffix)
    except ValidationError:
        return ""
    return suffix


def _remove_tree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)
