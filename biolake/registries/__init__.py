"""The public model classes (Artifact, Record, Feature, Run, ...), one module per registry.

May use every layer below: artifacts, features, search, tracking, query, core, storage, errors.
Importing this package maps every table and hands Feature and Record to the features subsystem.
"""

from biolake.features.models import bind as _bind_feature_models
from biolake.registries.artifact import Artifact
from biolake.registries.base import Registry
from biolake.registries.feature import Feature
from biolake.registries.project import Project
from biolake.registries.record import Record
from biolake.registries.run import Run
from biolake.registries.storage import Storage
from biolake.registries.transform import Transform
from biolake.registries.user import User

_bind_feature_models(feature=Feature, record=Record)

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
