"""biolake: findable, versioned, traceable data for biology and ML labs.

Import it as ``import biolake as ln``. Importing does nothing else: no database is opened and no
heavy library is loaded until a registry or function is first used.

Example::

    import biolake as ln
    ln.setup.init(storage="./mydata")
    ln.User.filter(handle="alice").first()
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# Public name -> the module that defines it; resolved on first access (PEP 562).
_LAZY = {
    "Artifact": "biolake.registries.artifact",
    "Registry": "biolake.registries.base",
    "Record": "biolake.registries.record",
    "Feature": "biolake.registries.feature",
    "Storage": "biolake.registries.storage",
    "QuerySet": "biolake.query.queryset",
    "User": "biolake.registries.user",
    "Project": "biolake.registries.project",
    "Run": "biolake.registries.run",
    "Transform": "biolake.registries.transform",
    "check": "biolake.integrity",
    "errors": "biolake.errors",
    "export_openlineage": "biolake.registries.openlineage",
    "finish": "biolake.registries.track",
    "openlineage_events": "biolake.registries.openlineage",
    "track": "biolake.registries.track",
    "tracked": "biolake.registries.track",
    "save": "biolake.registries.save",
    "settings": "biolake.setup",
    "setup": "biolake.setup",
}

_MODULES = {"errors", "setup"}  # public names that are modules, not attributes of one

__all__ = sorted([*_LAZY, "__version__"])

if TYPE_CHECKING:  # what type checkers and IDEs see; at runtime __getattr__ imports lazily
    from biolake import errors as errors
    from biolake import setup as setup
    from biolake.integrity import check as check
    from biolake.query.queryset import QuerySet as QuerySet
    from biolake.registries.artifact import Artifact as Artifact
    from biolake.registries.base import Registry as Registry
    from biolake.registries.feature import Feature as Feature
    from biolake.registries.openlineage import export_openlineage as export_openlineage
    from biolake.registries.openlineage import openlineage_events as openlineage_events
    from biolake.registries.project import Project as Project
    from biolake.registries.record import Record as Record
    from biolake.registries.run import Run as Run
    from biolake.registries.save import save as save
    from biolake.registries.storage import Storage as Storage
    from biolake.registries.track import finish as finish
    from biolake.registries.track import track as track
    from biolake.registries.track import tracked as tracked
    from biolake.registries.transform import Transform as Transform
    from biolake.registries.user import User as User
    from biolake.setup import settings as settings


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'biolake' has no attribute {name!r}")
    module = importlib.import_module(module_name)
    value = module if name in _MODULES else getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
