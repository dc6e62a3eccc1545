"""Database schema: the declarative base, column types and Alembic migrations.

``HEAD_REVISION`` is the newest migration. Opening an instance compares it with the revision
stored in the database and imports Alembic only when they differ (see ``migrate.py``).
"""

HEAD_REVISION = "0007"
