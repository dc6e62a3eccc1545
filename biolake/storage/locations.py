"""``storage_for(root)``: the storage backend for a location (a path, ``file://``, ``memory://``)."""

from __future__ import annotations

import re

from biolake.errors import ValidationError
from biolake.storage.base import Storage
from biolake.storage.local import LocalStorage
from biolake.storage.memory import MemoryStorage

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://(.*)$", re.DOTALL)


def storage_for(root: str) -> Storage:
    """Return the storage backend for the location ``root``."""
    match = _SCHEME.match(root)
    if match is None:
        return LocalStorage(root)
    scheme, rest = match.group(1).lower(), match.group(2)
    if scheme == "file":
        return LocalStorage(rest)
    if scheme == "memory":
        if not rest:
            raise ValidationError("memory:// needs a name, e.g. 'memory://test'.")
        return MemoryStorage.shared(rest)
    if scheme == "s3":
        raise NotImplementedError(
            f"S3 storage ({root!r}) is not supported yet. Use a local folder, e.g. './mydata'."
        )
    raise ValidationError(
        f"Unsupported storage location {root!r}: use a local folder path, 'file://', "
        "'memory://name' or (soon) 's3://bucket/prefix'."
    )
