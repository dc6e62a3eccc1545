"""What saving, deleting and restoring an artifact does to its versions and its stored bytes.

A save first streams the bytes into storage (hashing them on the way, outside any database
lock), then registers the rows in one write transaction:

- same key, same content as the latest version: the existing artifact is returned (a new
  description, if given, is written to it); no row is added;
- same key, new content: a new version (``stem`` shared, ``version`` = highest number + 1), which
  becomes the latest; the previous latest stops being latest;
- no key: identical content saved before without a key returns that artifact;
- a different key never returns another key's artifact, though identical bytes are stored once.

Concurrent saves of one key serialise on the write lock (SQLite ``BEGIN IMMEDIATE``; a
PostgreSQL advisory lock per key), and the database enforces one latest version per stem.
If registering fails, bytes that this save stored and no row references are removed again.
"""

from __future__ import annotations

import contextlib
import functools
import gc
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, func, select, update

from biolake.core.db import integer_or_null
from biolake.core.ids import new_uid
from biolake.core.inserts import insert_new
from biolake.core.log import logger
from biolake.errors import InvalidArgument, ValidationError

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from biolake.core.instance import Instance
    from biolake.registries.artifact import Artifact
    from biolake.registries.run import Run
    from biolake.storage import StoredObject

# An artifact's uid: the stem its versions share, then a suffix of its own.
STEM_LENGTH = 16
VERSION_SUFFIX_LENGTH = 4
# Lock spaces (Database.lock): savers and renamers of one key; a save that registers bytes and
# a delete that removes bytes no row references. Key locks come before bytes locks.
KEY_LOCKS = 0x626C  # "bl"
BYTES_LOCKS = 0x6262  # "bb"
PROGRESS_THRESHOLD = 200  # show a progress bar when storing at least this many artifacts
IN_CHUNK = 500  # ids/keys per IN (...) list


def save_artifacts(
    model: type[Artifact],
    instance: Instance,
    artifacts: Sequence[Artifact],
    storage_id: Callable[[], int],
    run: Run | None = None,
    *,
    fresh_keys: bool = False,
) -> list[Artifact]:
    """Store and register new artifacts of ``model`` in one transaction; returns the saved
    artifacts, where an existing artifact stands in for each duplicate.

    ``storage_id()`` gives the instance's storage root in the Storage registry, called inside
    the transaction (a first save creates that row, and a failed one leaves none); ``run``, the
    current run, becomes the run of new artifacts that name none. ``fresh_keys``: every key is
    new by construction (a run's report, keyed by the run's uid), so the lookups of earlier
    versions are skipped."""
    new = [a for a in artifacts if a.id is None]
    for artifact in new:  # before any bytes are copied; the artifact can be fixed and saved
        artifact._check_text()
    with _gc_paused(len(new) >= PROGRESS_THRESHOLD):
        stored = _store_all(model, instance, new)
        objects = [(s.key, s.hash) for s in stored.values()]
        joined = instance.db.in_write  # an outer write may still roll back these rows
        if joined:  # so clean up once it ends (a no-op if it keeps them)
            _delete_unreferenced(model, instance, objects)
        try:
            with instance.db.write() as session:
                result = _register(
                    model, instance, session, artifacts, stored, storage_id, run, fresh_keys
                )
        except BaseException:
            if not joined:
                _delete_unreferenced(model, instance, objects)
            raise
        finally:
            for artifact in new:
                _cleanup_staging(artifact)
    return result


@contextlib.contextmanager
def _gc_paused(pause: bool) -> Iterator[None]:
    """Pause the cyclic garbage collector during a large batch.

    Thousands of ORM objects make every full collection walk them all; collections triggered
    by the batch's own allocations tripled the time of ``ln.save`` of 10,000 files. The batch
    creates no garbage cycles worth collecting early, and the collector resumes afterwards.
    """
    if not pause or not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


# --- storing bytes ----------------------------------------------------------------------------


def _source(artifact: Artifact) -> str:
    if artifact._source is None:
        raise ValueError("This artifact has no source path to store.")
    return artifact._source


def _store_one(
    instance: Instance, artifact: Artifact, *, replace: str | None = None
) -> StoredObject:
    """Store the artifact's source; ``replace`` (the hash the source had when it was first
    stored): over the damaged object of its key, if the source still has that hash."""
    source = Path(_source(artifact))
    storage = instance.storage
    if replace is not None:
        return storage.replace(source, artifact.suffix, replace)
    if source.is_dir():
        return storage.put_folder(source, artifact.suffix)
    return storage.put_file(source, artifact.suffix)


def _store_all(
    model: type[Artifact], instance: Instance, artifacts: list[Artifact]
) -> dict[int, StoredObject]:
    """Store every artifact's bytes; the storage batches the work (one filesystem sync)."""
    if len(artifacts) <= 1:
        return {id(a): _store_one(instance, a) for a in artifacts}
    sources = [(_source(a), a.suffix) for a in artifacts]
    done: list[StoredObject] = []
    progress = _Progress(len(artifacts))

    def on_done(stored: StoredObject) -> None:
        done.append(stored)
        progress.advance()

    try:
        stored = instance.storage.put_many(sources, on_done)
    except BaseException:
        _delete_unreferenced(model, instance, [(s.key, s.hash) for s in done])
        raise
    finally:
        progress.close()
    return {id(a): s for a, s in zip(artifacts, stored, strict=True)}


class _Progress:
    def __init__(self, total: int) -> None:
        self.bar: Any = None
        if total >= PROGRESS_THRESHOLD:
            from rich.progress import Progress

            self.bar = Progress(transient=True)
            self.bar.start()
            self.task = self.bar.add_task("storing artifacts", total=total)

    def advance(self) -> None:
        if self.bar is not None:
            self.bar.advance(self.task)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def _delete_unreferenced(
    model: type[Artifact], instance: Instance, objects: Sequence[tuple[str, str]]
) -> None:
    """Delete the stored objects among ``(storage_key, hash)`` that no artifact row references,
    once any enclosing write has ended (its rows may still reference them, or come back).

    The check and the delete run in one write transaction that holds the bytes' locks, which a
    save takes before it registers a row for them: no save can register the bytes in between
    (SQLite: the write lock itself). Rows are found by hash (indexed); their storage keys say
    which objects are still in use. Only a key where bytes with that hash are stored is ever
    deleted, whatever a row says.
    """
    from biolake.storage.base import is_object_key  # storage loads with the first save

    objects = [(key, hash_) for key, hash_ in objects if is_object_key(key, hash_)]
    if objects:
        instance.db.after_write(lambda: _delete_now(model, instance, objects))


def _delete_now(
    model: type[Artifact], instance: Instance, objects: Sequence[tuple[str, str]]
) -> None:
    delete_unreferenced_now(model, instance, objects)


def delete_unreferenced_now(
    model: type[Artifact], instance: Instance, objects: Sequence[tuple[str, str]]
) -> list[str]:
    """Delete, now, the objects among ``(storage_key, hash)`` that no artifact row references,
    under the bytes' locks (see ``_delete_unreferenced``); returns the deleted keys. Callers
    pass only pairs that ``storage.base.is_object_key`` accepts, and no write may be open."""
    hashes = sorted({hash_ for _, hash_ in objects})
    with instance.db.write() as session:
        instance.db.lock(BYTES_LOCKS, hashes)
        referenced: set[str] = set()
        for chunk in _chunks(hashes):
            rows = session.execute(select(model.storage_key).where(model.hash.in_(chunk)))
            referenced.update(r[0] for r in rows)
        deleted = sorted({key for key, _ in objects} - referenced)
        for key in deleted:
            instance.storage.delete(key)
    return deleted


def _cleanup_staging(artifact: Artifact) -> None:
    cleanup = getattr(artifact, "_cleanup", None)
    if cleanup is not None:
        import shutil

        shutil.rmtree(cleanup, ignore_errors=True)
        artifact._cleanup = None


# --- registering rows -------------------------------------------------------------------------


def _register(
    model: type[Artifact],
    instance: Instance,
    session: Session,
    artifacts: Sequence[Artifact],
    stored: dict[int, StoredObject],
    storage_id: Callable[[], int],
    run: Run | None,
    fresh_keys: bool = False,
) -> list[Artifact]:
    new = [a for a in artifacts if a.id is None]
    root_id = storage_id() if new else None
    instance.db.lock(KEY_LOCKS, {a.key or "" for a in new})
    instance.db.lock(BYTES_LOCKS, {s.hash for s in stored.values()})
    latest = {} if fresh_keys else _latest_by_key(model, session, new, stored)
    trashed_stems = {} if fresh_keys else _trashed_stems(model, session, new, latest)
    recorded = _recorded_fingerprints(model, session, stored.values())
    refreshed: dict[str, StoredObject] = {}  # objects whose rows get a new fingerprint
    pending: list[Artifact] = []  # inserted together at the end
    pending_versions: dict[str, list[str]] = {}  # stem -> versions not yet inserted
    result: list[Artifact] = []
    for artifact in artifacts:
        if artifact.id is not None:
            result.append(artifact)
            continue
        obj = _ensure_intact(instance, artifact, stored[id(artifact)], recorded)
        if recorded.get(obj.key, {obj.fingerprint}) != {obj.fingerprint}:
            refreshed[obj.key] = obj
        recorded[obj.key] = {obj.fingerprint}  # checked: the batch's other rows need no check
        lookup = (artifact.key, obj.hash) if artifact.key is None else (artifact.key, None)
        current = latest.get(lookup)
        if current is not None and current.hash == obj.hash:
            if current.storage_fingerprint != obj.fingerprint and obj.key not in refreshed:
                current.storage_fingerprint = obj.fingerprint  # e.g. a missing object put back
            result.append(artifact._reuse(current, session, "same key and same content"))
            continue
        # The new artifact is transient until insert_new, which reads its state dict: written
        # directly, as attribute events cost ~20 us an artifact in a batch of 10,000.
        vars(artifact).update(
            hash=obj.hash,
            size=obj.size,
            n_files=obj.n_files,
            storage_key=obj.key,
            storage_id=root_id,
            storage_fingerprint=obj.fingerprint,
        )
        stem = trashed_stems.pop(artifact.key, None) if current is None else None
        _assign_version(model, session, artifact, current, pending_versions, stem)
        artifact._before_save(instance)
        _link_run(artifact, run)
        pending.append(artifact)
        latest[lookup] = artifact
        result.append(artifact)
    _refresh_fingerprints(model, session, refreshed.values())
    insert_new(session, pending)
    return result


def _link_run(artifact: Artifact, current: Run | None) -> None:
    """The run that made the artifact (its own, else the current one), and that run's
    transform (for ``filter(transform=…)``)."""
    run = artifact.run or current
    if run is None:
        return
    if run.id is None:
        raise InvalidArgument(f"The artifact's run {run!r} is not saved: call run.save() first.")
    artifact.run_id, artifact.transform_id = run.id, run.transform_id


def _assign_version(
    model: type[Artifact],
    session: Session,
    artifact: Artifact,
    current: Artifact | None,
    pending_versions: dict[str, list[str]],
    trashed_stem: str | None = None,
) -> None:
    """Give ``artifact`` its stem, version and uid, and make it the latest of its stem: the
    stem of ``current`` (the latest live version of its key), else ``trashed_stem`` (the key's
    versions are all in the trash), else a new one."""
    state = vars(artifact)  # transient until insert_new: written directly (see _register)
    stem = current.stem if current is not None else trashed_stem
    if stem is None:
        stem, version = new_uid(STEM_LENGTH), state.get("version") or "1"
    else:
        version = state.get("version")
        taken = pending_versions.get(stem, [])
        if version is not None:
            _check_version_free(model, session, artifact, stem, taken)
        version = version or _next_version(model, session, stem, taken)
    if current is not None:
        current.is_latest = False
        if current.id is not None:
            session.flush()  # the old latest stops being latest before the new one is inserted
    pending_versions.setdefault(stem, []).append(version)
    uid = stem + new_uid(VERSION_SUFFIX_LENGTH)
    state.update(stem=stem, version=version, uid=uid, is_latest=True)


def _latest_by_key(
    model: type[Artifact],
    session: Session,
    artifacts: list[Artifact],
    stored: dict[int, StoredObject],
) -> dict[tuple[str | None, str | None], Artifact]:
    """The latest artifact per key, and per hash among artifacts without a key."""

    keys = sorted({a.key for a in artifacts if a.key is not None})
    hashes = sorted({stored[id(a)].hash for a in artifacts if a.key is None})
    found: dict[tuple[str | None, str | None], Artifact] = {}
    for chunk in _chunks(keys):
        for row in session.scalars(_latest_statement(model, "key"), {"values": chunk}):
            found[(row.key, None)] = row
    for chunk in _chunks(hashes):
        for row in session.scalars(_latest_statement(model, "hash"), {"values": chunk}):
            found[(None, row.hash)] = row
    return found


def _trashed_stems(
    model: type[Artifact],
    session: Session,
    artifacts: list[Artifact],
    latest: dict[tuple[str | None, str | None], Artifact],
) -> dict[str, str]:
    """Key -> stem of its newest version, for keys without a live latest version but with
    versions in the trash. A new save continues that stem, so version numbers go on and a
    restored old version never makes a second latest under one key."""
    keys = sorted({a.key for a in artifacts if a.key is not None and (a.key, None) not in latest})
    stems: dict[str, str] = {}
    for chunk in _chunks(keys):
        rows = session.execute(
            select(model.key, model.stem)
            .where(model.key.in_(chunk), model.visibility == "trash")
            .order_by(model.id)
        )
        stems.update((str(key), stem) for key, stem in rows)  # the newest last: it wins
    return stems


@functools.cache
def _latest_statement(model: type[Artifact], by: str) -> Any:
    """The latest live artifacts with a key in ``:values`` (``by="key"``), or without a key
    and a hash in ``:values`` (``by="hash"``). Built once: a save runs it every time."""
    values: Any = bindparam("values", expanding=True)
    # Live: not in the trash ("hidden" ones, a run's report and environment, are live too).
    live = (model.is_latest.is_(True), model.visibility != "trash")
    if by == "key":
        return select(model).where(model.key.in_(values), *live)
    return select(model).where(model.key.is_(None), model.hash.in_(values), *live)


def _ensure_intact(
    instance: Instance,
    artifact: Artifact,
    obj: StoredObject,
    recorded: dict[str, set[str | None]],
) -> StoredObject:
    """Inside the bytes lock: the object must still exist (a concurrent permanent delete of
    another artifact with the same bytes may have removed it after we stored it), and hold its
    bytes if this save found it stored already. Returns what is stored now.

    A found object whose fingerprint no row has recorded (``recorded``: storage key -> the
    fingerprints its rows hold) is hashed again: intact, it was only touched or saved before
    fingerprints; damaged (edited in place), this save's source stores the good bytes again,
    instead of returning an artifact whose bytes are corrupt."""
    storage = instance.storage
    if not storage.exists(obj.key):
        return _store_one(instance, artifact)
    if not obj.existed or obj.fingerprint is None or obj.fingerprint in recorded.get(obj.key, ()):
        return obj
    check = storage.check(obj.key, obj.hash, None)  # hashes it
    if not check.intact:
        logger.warning(
            f"the stored object {obj.key} no longer held the bytes of its hash (changed in "
            f"place): stored again from {_source(artifact)}"
        )
        return _store_one(instance, artifact, replace=obj.hash)
    return obj._replace(fingerprint=check.fingerprint)  # None if too fresh to vouch for


def _recorded_fingerprints(
    model: type[Artifact], session: Session, stored: Iterable[StoredObject]
) -> dict[str, set[str | None]]:
    """Storage key -> the fingerprints recorded on its rows, for the objects a put found
    stored already (none in a batch of new content: no query)."""
    hashes = sorted({obj.hash for obj in stored if obj.existed and obj.fingerprint is not None})
    recorded: dict[str, set[str | None]] = {}
    for chunk in _chunks(hashes):
        query = select(model.storage_key, model.storage_fingerprint).where(model.hash.in_(chunk))
        for key, fingerprint in session.execute(query):
            recorded.setdefault(key, set()).add(fingerprint)
    return recorded


def _refresh_fingerprints(
    model: type[Artifact], session: Session, objects: Iterable[StoredObject]
) -> None:
    """Give every row of each object (by hash, indexed) the object's current fingerprint."""
    for obj in objects:
        session.execute(
            update(model)
            .where(model.hash == obj.hash, model.storage_key == obj.key)
            .values(storage_fingerprint=obj.fingerprint)
            .execution_options(synchronize_session="evaluate")
        )


def _check_version_free(
    model: type[Artifact], session: Session, artifact: Artifact, stem: str, pending: Sequence[str]
) -> None:
    stored = session.scalars(
        select(model.version).where(model.stem == stem, model.version == artifact.version)
    ).first()
    if stored is not None or artifact.version in pending:
        raise ValidationError(
            f"Version {artifact.version!r} of key {artifact.key!r} exists already (with other "
            "content): choose another version label, or leave version unset to number it "
            "automatically."
        )


def _next_version(
    model: type[Artifact], session: Session, stem: str, pending: Sequence[str] = ()
) -> str:
    """One more than the highest numbered version of ``stem`` (trashed ones included, since
    their numbers stay taken); labels that are not numbers do not count."""
    dialect = session.get_bind().dialect.name
    number = integer_or_null(model.version, dialect)
    stored = session.execute(select(func.max(number), func.count()).where(model.stem == stem)).one()
    highest = max([stored[0] or 0, *(int(v) for v in pending if v.isdigit())])
    if highest == 0:  # only labels so far: number after them
        highest = stored[1] + len(pending)
    return str(highest + 1)


def _chunks(items: Sequence[str]) -> list[Sequence[str]]:
    return [items[i : i + IN_CHUNK] for i in range(0, len(items), IN_CHUNK)]


# --- renaming ---------------------------------------------------------------------------------


def rename_versions(model: type[Artifact], artifact: Artifact) -> None:
    """Give every version of a saved artifact its new key (set on ``artifact``), so versions
    keep sharing a key and ``get(key=...)`` finds the latest; a key that other artifacts use
    is refused. Under the locks of both keys: two renames to one key cannot both pass."""
    instance = artifact._instance
    new_key, stem = artifact.key, artifact.stem
    # Dropped from the pending changes (write() would commit it first); set below instead.
    instance.db.session.expire(artifact, ["key"])
    with instance.db.write() as session:
        old_key = _stored_key(model, session, artifact)
        while True:  # lock the key it has now: another rename may have moved it meanwhile
            instance.db.lock(KEY_LOCKS, {new_key or "", old_key or ""})
            now = _stored_key(model, session, artifact)
            if now == old_key:
                break
            old_key = now
        taken = session.scalars(
            select(model.uid).where(model.key == new_key, model.stem != stem).limit(1)
        ).first()
        if taken is not None:
            raise ValidationError(
                f"Cannot rename to {new_key!r}: artifact {taken} has that key. Save this "
                "content as a new version of it instead: ln.Artifact(artifact.cache(), "
                f"key={new_key!r}).save()."
            )
        session.execute(
            update(model)
            .where(model.stem == stem)
            .values(key=new_key)
            .execution_options(synchronize_session="fetch")
        )


def _stored_key(model: type[Artifact], session: Session, artifact: Artifact) -> str | None:
    key: str | None = session.scalars(select(model.key).where(model.id == artifact.id)).one()
    return key


# --- deleting & restoring ---------------------------------------------------------------------


def delete_artifact(model: type[Artifact], artifact: Artifact, permanent: bool) -> None:
    instance = artifact._instance
    db = instance.db
    with db.write() as session:
        # The key's lock, as a save of a new version takes: both change which version is latest.
        db.lock(KEY_LOCKS, [artifact.key or ""])
        session.refresh(artifact, ["is_latest"])  # as of now, under the lock
        was_latest = artifact.is_latest
        artifact.is_latest = False
        if permanent:
            session.delete(artifact)
        else:
            artifact.visibility = "trash"
        session.flush()
        if was_latest:
            _promote_newest(model, session, artifact.stem)
    if permanent:
        _delete_unreferenced(model, instance, [(artifact.storage_key, artifact.hash)])


def _promote_newest(model: type[Artifact], session: Session, stem: str) -> None:
    newest = session.scalars(
        select(model)
        .where(model.stem == stem, model.visibility == "default")
        .order_by(model.id.desc())
        .limit(1)
    ).first()
    if newest is not None and not newest.is_latest:
        newest.is_latest = True
        session.flush()


def restore_artifact(model: type[Artifact], artifact: Artifact) -> None:
    db = artifact._instance.db
    with db.write() as session:
        db.lock(KEY_LOCKS, [artifact.key or ""])  # see delete_artifact
        artifact.visibility = "default"
        current = session.scalars(
            select(model).where(model.stem == artifact.stem, model.is_latest.is_(True))
        ).first()
        if current is None or current.id < artifact.id:
            if current is not None:
                current.is_latest = False
                session.flush()
            artifact.is_latest = True
        session.flush()
