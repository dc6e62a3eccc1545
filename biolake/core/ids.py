"""Random identifiers: the ``uid`` of every registry row, and the stems of artifact versions."""

from __future__ import annotations

import secrets
import string

UID_ALPHABET = string.ascii_letters + string.digits
# 248 = 4 * 62: bytes below it map uniformly onto the alphabet; the rest are dropped.
_TO_ALPHABET = bytes(ord(UID_ALPHABET[b % 62]) for b in range(256))
_DROPPED = bytes(range(248, 256))


def new_uid(length: int) -> str:
    """A random base62 string (about 5.95 bits per character, no modulo bias)."""
    chars = b""
    while len(chars) < length:
        chars += secrets.token_bytes(length + 8).translate(_TO_ALPHABET, _DROPPED)
    return chars[:length].decode()
