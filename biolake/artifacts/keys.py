"""Artifact keys: relative POSIX paths that name data, validated before anything is stored.

One key, one look: a key is stored in Unicode NFC (the NFD spelling of "é" is the same key),
and characters that look like a separator or like nothing are refused, so two different keys
never look the same. Keys are names, not file paths: stored bytes are named by their hash, so
no key reaches a file system; the path rules below keep keys safe to use as paths anyway (an
export, a cache) on POSIX and Windows.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from biolake.errors import ValidationError

MAX_KEY_LENGTH = 1024
RESERVED = ".biolake"  # the first segment of the keys of a run's report and environment
EXAMPLE = "e.g. 'experiments/scrna_batch1.h5ad'"
# Not text (controls, surrogates), invisible (format characters: zero-width, bidi controls,
# BOM, soft hyphen) or line breaks.
_REFUSED_CATEGORIES = {"Cc", "Cf", "Cs", "Zl", "Zp"}
# Letters and marks that draw nothing (fillers, blanks, the grapheme joiner).
_INVISIBLE = set("\u034f\u115f\u1160\u17b4\u17b5\u2800\u3164\uffa0")
# Slashes and backslashes that no normalisation maps to "/" or "\": a second separator.
_SLASH_LOOKALIKES = set("\u2044\u2215\u2216\u2571\u2572\u29f5\u29f8\u29f9")
_DRIVE = re.compile(r"[A-Za-z]:")
# Windows opens a device for these names, with any extension ("nul.txt") or trailing spaces.
_DEVICES = {"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"}
_DEVICES |= {f"{port}{n}" for port in ("COM", "LPT") for n in "0123456789"}


def validate_key(key: str) -> str:
    """Return ``key`` in NFC if it is a clean relative POSIX path, else raise ``ValidationError``.

    Rejected: empty keys; absolute paths, Windows drives (``C:``) and UNC paths; backslashes;
    ``.``/``..`` and empty segments (also spelled with look-alike dots), segments that start or
    end with whitespace or end with a dot; Windows device names (``CON``, ``nul.txt``, ``COM1``,
    also spelled ``COM\u00b9``); control, format (zero-width, bidi) and other invisible
    characters, spaces other than U+0020; characters that look like ``/`` or ``\\`` (U+FF0F,
    U+2215 …); keys longer than 1,024 characters, and keys under ``.biolake/`` (biolake's own
    records).

    Example: ``validate_key("cafe\\u0301/x.csv")`` is ``"caf\\u00e9/x.csv"``.
    """
    if not isinstance(key, str):
        raise ValidationError(f"An artifact key is a string, not {key!r}.")
    if not key:
        raise ValidationError(f"An artifact key cannot be empty: pass a relative path, {EXAMPLE}.")
    _check_characters(key)
    key = unicodedata.normalize("NFC", key)
    if len(key) > MAX_KEY_LENGTH:
        raise ValidationError(f"Artifact key is {len(key)} characters long; at most 1024 allowed.")
    if "\\" in key:
        raise ValidationError(
            f"Artifact key {key!r} contains a backslash: keys use '/' as separator, {EXAMPLE}."
        )
    if key.startswith("/"):
        raise ValidationError(
            f"Artifact key {key!r} is absolute: keys are relative paths inside the instance, "
            f"{EXAMPLE}. Drop the leading '/'."
        )
    if _DRIVE.match(key):
        raise ValidationError(
            f"Artifact key {key!r} starts with the Windows drive {key[:2]!r}: keys are relative "
            f"paths inside the instance, {EXAMPLE}."
        )
    if key.split("/", 1)[0] == RESERVED:
        raise ValidationError(
            f"Artifact key {key!r} starts with '{RESERVED}/', which holds biolake's own records "
            f"(run reports, environments): choose another folder, {EXAMPLE}."
        )
    segments = key.split("/")
    for segment in segments:
        _check_segment(key, segment, segments)
    return key


def key_lookup(lookup: str, value: Any) -> tuple[str, Any]:
    """A filter on ``key`` with its text in NFC, as keys are stored.

    ``exact`` and ``in`` also match the text as given: keys saved before keys were normalised
    may be stored in another form (NFD), and are still found by it.
    Example: ``key_lookup("exact", "cafe\\u0301")`` is ``("in", ["caf\\u00e9", "cafe\\u0301"])``.
    """
    if lookup == "in" and isinstance(value, list | tuple | set | frozenset):
        forms = [f for item in value for f in dict.fromkeys([_nfc(item), item])]
        return lookup, forms
    if not isinstance(value, str):
        return lookup, value
    nfc = _nfc(value)
    if lookup == "exact" and nfc != value:
        return "in", [nfc, value]
    return lookup, nfc


def stored_form(key: Any) -> Any:
    """``key`` in NFC, as keys are stored, without validating it (an unsaved artifact's key
    was validated by the constructor, or is one of biolake's own under ``.biolake/``)."""
    return _nfc(key)


def _nfc(value: Any) -> Any:
    if not isinstance(value, str) or not _is_text(value):
        return value  # the query layer says what is wrong with it
    return unicodedata.normalize("NFC", value)


def _is_text(value: str) -> bool:
    return not any(unicodedata.category(ch) == "Cs" for ch in value)


def _check_characters(key: str) -> None:
    if key.isascii():
        bad = next((ch for ch in key if ch < " " or ch == "\x7f"), None)
    else:
        bad = next((ch for ch in key if _refused(ch)), None)
    if bad is not None:
        raise ValidationError(_character_message(key, bad))


def _character_message(key: str, bad: str) -> str:
    category = unicodedata.category(bad)
    if bad in _SLASH_LOOKALIKES or "/" in _compatible(bad) or "\\" in _compatible(bad):
        why = "which looks like a separator: use '/' to separate folders"
    elif category == "Cc":
        why = "a control character: remove it"
    elif category == "Cs":
        why = "a lone surrogate, which is not text: remove it"
    elif category == "Zs":
        why = "a space that is not U+0020: use a plain space, or '_'"
    else:
        why = "which is invisible: remove it"
    name = unicodedata.name(bad, "unnamed")
    return (
        f"Artifact key {key!r} contains U+{ord(bad):04X} {name}, {why}. Keys that look the "
        "same must be the same key."
    )


def _refused(ch: str) -> bool:
    category = unicodedata.category(ch)
    if category in _REFUSED_CATEGORIES:
        return True
    if ch in _INVISIBLE or ch in _SLASH_LOOKALIKES:
        return True
    return not ch.isascii() and any(c in "/\\" for c in _compatible(ch))


def _compatible(text: str) -> str:
    """The NFKC form: what fullwidth and other look-alike spellings stand for."""
    return unicodedata.normalize("NFKC", text) if _is_text(text) else text


def _check_segment(key: str, segment: str, segments: list[str]) -> None:
    if segment != segment.strip():
        raise ValidationError(_whitespace_message(key, segment, segments))
    if not segment.isascii():
        space = next((c for c in segment if c != " " and unicodedata.category(c) == "Zs"), None)
        if space is not None:  # inside: around a segment, the message above names it
            raise ValidationError(_character_message(key, space))
    if segment in ("", ".", ".."):
        shown = "an empty segment" if not segment else f"a {segment!r} segment"
        raise ValidationError(
            f"Artifact key {key!r} has {shown}: use a plain relative path, {EXAMPLE}."
        )
    plain = segment if segment.isascii() else _compatible(segment)
    if plain in (".", ".."):
        raise ValidationError(
            f"Artifact key {key!r} has the segment {segment!r}, which stands for {plain!r}: use "
            f"a plain relative path, {EXAMPLE}."
        )
    if segment.endswith("."):
        raise ValidationError(
            f"Artifact key {key!r} has a segment ending with '.', which Windows drops "
            f"({segment!r} would be {segment.rstrip('.')!r}): remove the trailing dot."
        )
    device = plain.split(".", 1)[0].rstrip(" ").upper()
    if device in _DEVICES:
        raise ValidationError(
            f"Artifact key {key!r} has the segment {segment!r}: {device} names a device on "
            f"Windows, also with an extension. Rename it, e.g. {'my_' + segment!r}."
        )


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
