"""One Transform per key and source: the same source reuses it, a changed one is a new version."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from biolake.core.instance import Instance
from biolake.tracking.source import Source

TRANSFORM_LOCKS = 0x6274  # "bt": the writers of one transform key (see Database.lock)


def upsert_transform(model: Any, instance: Instance, source: Source) -> Any:
    """The ``model`` row for ``source``: found by key and source hash, else a new version of the
    key (one more than its highest numbered version), inserted under the key's lock so that
    concurrent runs of a new source agree on one row."""
    session = instance.db.session
    found = session.scalars(_same_source(model, source)).first()
    instance.db.end_read()
    if found is not None and found.visibility == "default":
        return found  # the usual case, a script run again: no write
    with instance.db.write() as session:
        instance.db.lock(TRANSFORM_LOCKS, [source.key])
        found = session.scalars(_same_source(model, source)).first()
        if found is not None:
            if found.visibility != "default":  # run again: it is in use, out of the trash
                found.visibility = "default"
                session.flush()
            return found
        versions = session.scalars(select(model.version).where(model.key == source.key)).all()
        number = max((int(v) for v in versions if v.isdigit()), default=0) + 1
        transform = model(
            key=source.key,
            kind=source.kind,
            description=source.description,
            source_code=source.code,
            source_hash=source.hash,
            version=str(number),
        )
        return transform.save()  # joins this transaction


def _same_source(model: Any, source: Source) -> Any:
    return select(model).where(model.key == source.key, model.source_hash == source.hash)
