"""Core: the database (engine, sessions, dialects), instances, schema and migrations, ids, logging.

May use storage and errors only: no query layer, subsystem or registry. Registries pass their
classes where core creates rows (``Instance.get_or_create``).
"""
