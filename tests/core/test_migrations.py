"""The migrations build exactly the schema the models declare, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import warnings
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

import biolake.registries  # noqa: F401  (maps every table)
from biolake.core.schema import HEAD_REVISION
from biolake.core.schema.base import Base
from biolake.core.schema.migrate import MIGRATIONS


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
    # remove_index: the expression indexes of 0002 (lower(name), trigram GIN indexes); any
    # other index in the database and not in the models is a leftover
    return kind == "remove_index" and change[1].name.endswith(("_lower", "_trgm"))


def test_partial_indexes_keep_their_conditions(instance: Any) -> None:
    """compare_metadata does not compare WHERE clauses: a partial index of the models must be
    partial in the database too, on the same condition."""
    from sqlalchemy import text

    dialect = instance.db.dialect
    declared = {
        index.name: (table.name, str(index.dialect_options[dialect]["where"]))
        for table in Base.metadata.tables.values()
        for index in table.indexes
        if index.dialect_options[dialect]["where"] is not None
    }
    assert len(declared) >= 10  # one-latest, trashed hosts, probe indexes of each value column
    query = (
        "SELECT name, sql FROM sqlite_master WHERE type = 'index'"
        if instance.db.is_sqlite
        else "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema()"
    )
    with instance.db.engine.connect() as conn:
        stored = {name: sql for name, sql in conn.execute(text(query))}
    for name, (table_name, where) in declared.items():
        condition = stored[name].split(" WHERE ", 1)[1]
        assert _words(condition, table_name) == _words(where, table_name), name


def _words(sql: str, table_name: str) -> list[str]:
    """The identifiers and literals of a condition, without the table names, casts and
    brackets that the databases add when they print it back."""
    import re

    noise = {table_name, "text", "character", "varying"}
    return [w for w in re.findall(r"[a-z_]+", sql.lower()) if w not in noise]


def _alembic(instance: Any, command_name: str, revision: str) -> None:
    from alembic import command
    from alembic.config import Config

    instance.db.session.close()  # no open transaction of ours holds the tables
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with instance.db.engine.begin() as conn:
        config.attributes["connection"] = conn
        getattr(command, command_name)(config, revision)


def test_0007_upgrade_from_0006_fingerprints_old_rows_on_first_read(
    instance: Any, tmp_path: Any
) -> None:
    """Rows of a 0006 instance keep working after the upgrade: the first read hashes the object
    and records its fingerprint; an object damaged before the upgrade is refused."""
    import biolake as ln

    (tmp_path / "a.txt").write_text("alpha")
    (tmp_path / "b.txt").write_text("beta")
    intact = ln.Artifact(tmp_path / "a.txt", key="a.txt").save()
    damaged = ln.Artifact(tmp_path / "b.txt", key="b.txt").save()
    _alembic(instance, "downgrade", "0006")
    with instance.db.engine.connect() as conn:
        columns = {c["name"] for c in inspect(conn).get_columns("artifacts")}
    assert "storage_fingerprint" not in columns
    damaged_path = instance.storage.local_path(damaged.storage_key)
    os.chmod(damaged_path, 0o644)
    with open(damaged_path, "r+b") as f:
        f.write(b"B")
    os.chmod(damaged_path, 0o444)
    root = instance.root
    ln.setup.close()

    reopened = ln.setup.connect(root)  # migrates to the head
    with reopened.db.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar() == "0007"
        rows = conn.exec_driver_sql("SELECT key, storage_fingerprint FROM artifacts").all()
    assert sorted(rows) == [("a.txt", None), ("b.txt", None)]
    first = ln.Artifact.get(key="a.txt")
    assert first.load() == "alpha"
    expected = reopened.storage.fingerprint(intact.storage_key)
    with reopened.db.engine.connect() as conn:
        query = "SELECT storage_fingerprint FROM artifacts WHERE key = 'a.txt'"
        assert conn.exec_driver_sql(query).scalar() == expected
    with pytest.raises(ln.errors.CorruptObjectError, match=r"key 'b\.txt'"):
        ln.Artifact.get(key="b.txt").load()
