"""Storage: where artifact bytes live. The storage contract, its backends, and hashing.

May use errors only: storage knows nothing of databases or registries.

``storage_for(root)`` picks the backend from the location: a local path (or ``file://``) gives
:class:`LocalStorage`, ``memory://name`` the in-process :class:`MemoryStorage` test double.

Example::

    from biolake.storage import storage_for

    storage = storage_for("./mydata")
    stored = storage.put_file(Path("counts.csv"), ".csv")
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# Public name -> its module, imported on first access: importing one storage module (hashing,
# for instance) does not load the backends and their thread pool.
_LAZY = {
    "LocalStorage": "biolake.storage.local",
    "MemoryStorage": "biolake.storage.memory",
    "Storage": "biolake.storage.base",
    "StoredObject": "biolake.storage.base",
    "storage_for": "biolake.storage.locations",
}

__all__ = sorted(_LAZY)

if TYPE_CHECKING:
    from biolake.storage.base import Storage as Storage
    from biolake.storage.base import StoredObject as StoredObject
    from biolake.storage.local import LocalStorage as LocalStorage
    from biolake.storage.locations import storage_for as storage_for
    from biolake.storage.memory import MemoryStorage as MemoryStorage


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'biolake.storage' has no attribute {name!r}")
    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value
