"""Features: dtypes, typed value tables, feature filters and counts, frames, ``obj.features``.

May use query, core, storage and errors. The Feature and Record classes come from the registries
through ``features.models`` (bound when ``biolake.registries`` is imported), never by import.
"""
