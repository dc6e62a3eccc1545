"""Artifacts: keys, versions and stored bytes of a save or delete, loaders and writers by suffix.

May use query, core, storage and errors. The Artifact class is passed in by its registry
(``save_artifacts(type(self), ...)``); nothing here imports a registry.
"""
