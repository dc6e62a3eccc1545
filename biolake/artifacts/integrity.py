"""Reads hand out a stored object only while it holds the bytes its artifact was saved with.

``cache()`` (and so ``load()`` and ``open()``) calls :func:`checked_path`: one ``stat`` compares
the object with the fingerprint recorded on the artifact's row (``storage.fingerprints``). A
different one (a ``touch``, an edit, a restored backup, a row saved before fingerprints) makes
it hash the object again:

- same hash: the new fingerprint is recorded on every row of the object, and the read goes on;
- another hash: :class:`~biolake.errors.CorruptObjectError`, naming the artifact, both hashes
  and the ways to recover.

The storage side, "does this object still match its fingerprint, else its hash", is
``Storage.check``; a checker can call it for every object without this module.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import update
from sqlalchemy.orm.attributes import set_committed_value

from biolake.artifacts.versioning import BYTES_LOCKS
from biolake.core.log import logger
from biolake.errors import CorruptObjectError

if TYPE_CHECKING:
    from biolake.registries.artifact import Artifact


def checked_path(model: type[Artifact], artifact: Artifact) -> Path:
    """The local path of the artifact's stored object, once it is known to hold the artifact's
    bytes; raises CorruptObjectError if it does not, FileNotFoundError if it is missing."""
    storage = artifact._instance.storage
    check = storage.check(artifact.storage_key, artifact.hash, artifact.storage_fingerprint)
    path = storage.local_path(artifact.storage_key)
    if not check.intact:
        raise CorruptObjectError(corrupt_message(artifact, path, check.found_hash))
    if check.fingerprint is not None:
        record_fingerprint(model, artifact, check.fingerprint)
    return path


def record_fingerprint(model: type[Artifact], artifact: Artifact, fingerprint: str) -> None:
    """Record ``fingerprint`` (just found intact by a hash) on every row of the object.

    Under the lock of the object's bytes, which a repair holds too, and only if the object has
    not moved since. A failure is a warning: the object is intact, the next read hashes again.
    """
    instance, key = artifact._instance, artifact.storage_key
    try:
        with instance.db.write() as session:
            instance.db.lock(BYTES_LOCKS, [artifact.hash])
            if instance.storage.fingerprint(key) != fingerprint:
                return
            session.execute(
                update(model)
                .where(model.hash == artifact.hash, model.storage_key == key)
                .values(storage_fingerprint=fingerprint)
                .execution_options(synchronize_session="evaluate")
            )
    except Exception as exc:
        logger.warning(f"could not record the fingerprint of {key}: {exc!r}")
        return
    set_committed_value(artifact, "storage_fingerprint", fingerprint)


def corrupt_message(artifact: Artifact, path: Path, found: str | None) -> str:
    key = artifact.key
    return (
        f"The stored object of artifact {artifact.uid} (key {key!r}, version "
        f"{artifact.version}) no longer holds the bytes it was saved with: expected hash "
        f"{artifact.hash}, found {found} at {path}. Something wrote to it in place (e.g. a "
        "program given the path cache() returned). To recover: read another version "
        "(artifact.versions); save the original content again "
        f"(ln.Artifact(original_path, key={key!r}).save() stores the good bytes back); or "
        "restore the object from a backup. ln.check() lists every damaged object."
    )
