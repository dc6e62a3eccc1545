"""Write a new Alembic migration from the difference between the models and the newest schema.

Usage: python scripts/new_migration.py REV_ID "message"    (e.g. 0002 "add projects")

It builds a scratch SQLite database at the current head, autogenerates the difference, and
writes ``biolake/core/schema/migrations/versions/<REV_ID>_<slug>.py``. Read the result: autogenerate
does not see everything (FTS tables, triggers, partial indexes need hand-written ops). Then set
``HEAD_REVISION`` in ``biolake/core/schema/__init__.py``.
"""

from __future__ import annotations

import contextlib
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine

import biolake.registries  # noqa: F401  (maps every table: autogenerate compares the models)
from biolake.core.schema.migrate import MIGRATIONS


def main() -> None:
    rev_id, message = sys.argv[1], sys.argv[2]
    with tempfile.TemporaryDirectory() as tmp, _later_set_aside(rev_id, Path(tmp)):
        engine = create_engine(f"sqlite:///{Path(tmp) / 'scratch.db'}")
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        with engine.begin() as conn:
            config.attributes["connection"] = conn
            config.attributes["autogenerate"] = True
            if any((MIGRATIONS / "versions").glob("*.py")):
                command.upgrade(config, "head")
            command.revision(config, message, autogenerate=True, rev_id=rev_id)


@contextlib.contextmanager
def _later_set_aside(rev_id: str, tmp: Path) -> Iterator[None]:
    """Hide migrations after ``rev_id`` (e.g. the hand-written 0002 while 0001 is regenerated)."""
    versions = MIGRATIONS / "versions"
    later = [p for p in versions.glob("*.py") if p.name.split("_", 1)[0] > rev_id]
    for path in later:
        shutil.move(path, tmp / path.name)
    try:
        yield
    finally:
        for path in later:
            shutil.move(tmp / path.name, path)


if __name__ == "__main__":
    main()
