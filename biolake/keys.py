"""Artifact keys: relative POSIX paths that name data, validated before anything is stored."""

from __future__ import annotations

import re

from biolake.errors import ValidationError

MAX_KEY_LENGTH = 1024
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def validate_key(key: str) -> str:
    """Return ``key`` if it is a clean relative POSIX path, else raise ``ValidationError``.

    Rejected: empty keys, absolute paths, backslashes, ``.``/``..`` and empty segments, NUL and
    other control characters, keys longer than 1,024 characters.
    """
    if not isinstance(key, str):
        raise ValidationError(f"An artifact key is a string, not {key!r}.")
    example = "e.g. 'experiments/scrna_batch1.h5ad'"
    if not key:
        raise ValidationError(f"An artifact key cannot be empty: pass a relative path, {example}.")
    if len(key) > MAX_KEY_LENGTH:
        raise ValidationError(f"Artifact key is {len(key)} characters long; at most 1024 allowed.")
    bad = _CONTROL.search(key)
    if bad:
        raise ValidationError(
            f"Artifact key {key!r} contains the control character {bad.group()!r}: remove it."
        )
    if "\\" in key:
        raise ValidationError(
            f"Artifact key {key!r} contains a backslash: keys use '/' as separator, {example}."
        )
    if key.startswith("/"):
        raise ValidationError(
            f"Artifact key {key!r} is absolute: keys are relative paths inside the instance, "
            f"{example}. Drop the leading '/'."
        )
    for segment in key.split("/"):
        if segment in ("", ".", ".."):
            shown = "an empty segment" if not segment else f"a {segment!r} segment"
            raise ValidationError(
                f"Artifact key {key!r} has {shown}: use a plain relative path, {example}."
            )
    return key
