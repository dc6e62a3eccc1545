"""The migrations build exactly the schema the models declare, on SQLite and PostgreSQL."""

from __future__ import annotations

import warnings
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

import biolake.registries  # noqa: F401  (maps every table)
from biolake.schema import HEAD_REVISION
from biolake.schema.base import Base
from biolake.schema.migrate import MIGRATIONS


def test_head_revision_is_the_newest_migration() -> None:
    revisions = sorted(p.name.split("_", 1)[0] for p in (MIGRATIONS / "versions").glob("0*.py"))
    assert revisions[-1] == HEAD_REVISION


def test_migrated_schema_matches_the_models(instance: Any) -> None:
    with instance.db.engine.connect() as conn, warnings.catch_warnings():
        # Reflection cannot read expression indexes (lower(key)); they are the hand-written ones.
        warnings.filterwarnings("ignore", "Skipped unsupported reflection of expression-based")
        warnings.filterwarnings("ignore", "autogenerate skipping metadata-specified expression")
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, Base.metadata)
    # Hand-written objects of later migrations (search tables, expression indexes) are not in
    # the models; everything the models declare must exist exactly as declared.
    unexpected = [d for d in diff if not _is_hand_written(d)]
    assert unexpected == [], "run scripts/new_migration.py: models and migrations differ"


def _is_hand_written(change: Any) -> bool:
    kind = change[0] if isinstance(change, tuple) else change[0][0]
    if kind == "remove_table":
        return "_search" in change[1].name or "fts" in change[1].name
    # remove_index: expression indexes from 0002 (lower(name), trigram GIN indexes)
    return bool(kind == "remove_index")
