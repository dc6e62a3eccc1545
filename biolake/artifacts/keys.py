"""Artifact keys: relative POSIX paths that name data, validated before anything is stored."""

from __future__ import annotations

import re

from biolake.errors import ValidationError

MAX_KEY_LENGTH = 1024
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
RESERVED = ".biolake"  # the first segment of the keys of a run's report and environment
EXAMPLE = "e.g. 'experiments/scrna_batch1.h5ad'"


def validate_key(key: str) -> str:
    """Return ``key`` if it is a clean relative POSIX path, else raise ``ValidationError``.

    Rejected: empty keys, absolute paths, backslashes, ``.``/``..`` and empty segments, segments
    that start or end with whitespace, NUL and other control characters, keys longer than 1,024
    characters, and keys under ``.biolake/`` (biolake's own records).
    """
    if not isinstance(key, str):
        raise ValidationError(f"An artifact key is a string, not {key!r}.")
    if not key:
        raise ValidationError(f"An artifact key cannot be empty: pass a relative path, {EXAMPLE}.")
    if len(key) > MAX_KEY_LENGTH:
        raise ValidationError(f"Artifact key is {len(key)} characters long; at most 1024 allowed.")
    bad = _CONTROL.search(key)
    if bad:
        raise ValidationError(
            f"Artifact key {key!r} contains the control character {bad.group()!r}: remove it."
        )
    if "\\" in key:
        raise ValidationError(
            f"Artifact key {key!r} contains a backslash: keys use '/' as separator, {EXAMPLE}."
        )
    if key.startswith("/"):
        raise ValidationError(
            f"Artifact key {key!r} is absolute: keys are relative paths inside the instance, "
            f"{EXAMPLE}. Drop the leading '/'."
        )
    if key.split("/", 1)[0] == RESERVED:
        raise ValidationError(
            f"Artifact key {key!r} starts with '{RESERVED}/', which holds biolake's own records "
            f"(run reports, environments): choose another folder, {EXAMPLE}."
        )
    segments = key.split("/")
    for segment in segments:
        if segment != segment.strip():
            raise ValidationError(_whitespace_message(key, segment, segments))
        if segment in ("", ".", ".."):
            shown = "an empty segment" if not segment else f"a {segment!r} segment"
            raise ValidationError(
                f"Artifact key {key!r} has {shown}: use a plain relative path, {EXAMPLE}."
            )
    return key


def _whitespace_message(key: str, segment: str, segments: list[str]) -> str:
    """Name the stray whitespace (``' '``, ``'\\xa0'`` …) and suggest the stripped key."""
    stripped = segment.strip()
    if not stripped:
        what = f"{segment!r} is only whitespace"
    else:
        lead, trail = segment[: segment.index(stripped)], segment[len(segment.rstrip()) :]
        ends = [f"starts with {lead!r}"] if lead else []
        ends += [f"ends with {trail!r}"] if trail else []
        what = f"{segment!r} {' and '.join(ends)}"
    fixed = "/".join(s.strip() for s in segments if s.strip())
    fix = f"use {fixed!r}" if fixed else f"pass a relative path, {EXAMPLE}"
    return f"Artifact key {key!r} has whitespace around a segment: {what}; {fix}."
