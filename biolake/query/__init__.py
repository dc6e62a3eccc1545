"""The query layer: Django-style lookups to SQL, the lazy ``QuerySet``, and DataFrame frames.

May use core, storage and errors. It knows registries only through hooks on the model class it
is given (``_resolve_extra``, ``_plan_terms``, ``_count_terms``, ``_missing_hint``, ...).
"""

from biolake.query.queryset import QuerySet

__all__ = ["QuerySet"]
