"""Tracking: which run is current, and (to come) track / finish / tracked and lineage.

May use query, core, storage and errors. The save path asks ``context.current_run()`` through
the registries (load, cache and open will too); tracking never imports a registry.
"""
