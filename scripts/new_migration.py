"""Write a new Alembic migration from the difference between the models and the newest schema.

Usage: python scripts/new_migration.py REV_ID "message"    (e.g. 0002 "add projects")

It builds a scratch SQLite database at the current head, autogenerates the difference, and
writes ``biolake/schema/migrations/versions/<REV_ID>_<slug>.py``. Read the result: autogenerate
does not see everything (FTS tables, triggers, partial indexes need hand-written ops). Then set
``HEAD_REVISION`` in ``biolake/schema/__init__.py``.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine

from biolake.schema.migrate import MIGRATIONS


def main() -> None:
    rev_id, message = sys.argv[1], sys.argv[2]
    with tempfile.TemporaryDirectory() as tmp:
        engine = create_engine(f"sqlite:///{Path(tmp) / 'scratch.db'}")
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        with engine.begin() as conn:
            config.attributes["connection"] = conn
            if any((MIGRATIONS / "versions").glob("*.py")):
                command.upgrade(config, "head")
            command.revision(config, message, autogenerate=True, rev_id=rev_id)


if __name__ == "__main__":
    main()
