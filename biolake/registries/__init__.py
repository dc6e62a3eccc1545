"""One module per registry. Importing this package maps every table."""

from biolake.registries.artifact import Artifact
from biolake.registries.base import Registry
from biolake.registries.feature import Feature
from biolake.registries.project import Project
from biolake.registries.record import Record
from biolake.registries.run import Run
from biolake.registries.storage import Storage
from biolake.registries.transform import Transform
from biolake.registries.user import User

__all__ = [
    "Artifact",
    "Feature",
    "Project",
    "Record",
    "Registry",
    "Run",
    "Storage",
    "Transform",
    "User",
]
