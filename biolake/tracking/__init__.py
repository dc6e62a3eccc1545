"""Tracking: which run is current, and (to come) track / finish / tracked and lineage.

May use query, core, storage and errors. The save and load paths ask ``context.current_run()``
through the registries; tracking itself never imports a registry (models are passed in).
"""
