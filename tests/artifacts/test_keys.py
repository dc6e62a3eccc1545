"""Artifact keys: one look, one key (NFC, no invisible or look-alike separators), and no key
that could leave the storage as a path; lookups by key find the NFC and the NFD spelling."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

import biolake as ln
from biolake.artifacts.keys import key_lookup, validate_key
from biolake.errors import ValidationError

NFC = "caf\u00e9/data.csv"
NFD = "cafe\u0301/data.csv"

# key -> the key stored
ACCEPTED = [
    (NFC, NFC),
    (NFD, NFC),  # the same key
    ("\u212bngstr\u00f6m.csv", "\u00c5ngstr\u00f6m.csv"),  # ANGSTROM SIGN is A with ring
    ("a b/c d.csv", "a b/c d.csv"),  # plain spaces inside a segment
    (".hidden/x.csv", ".hidden/x.csv"),
    ("a/...x.csv", "a/...x.csv"),
    ("run:1/x.csv", "run:1/x.csv"),  # a colon that is no drive
    ("console/x.csv", "console/x.csv"),
    ("com10.txt", "com10.txt"),
    ("\u00e9t\u00e9/\u6570\u636e.csv", "\u00e9t\u00e9/\u6570\u636e.csv"),
    ("\U0001f9ec/x.csv", "\U0001f9ec/x.csv"),  # an emoji is a visible character
]


@pytest.mark.parametrize(("key", "stored"), ACCEPTED)
def test_accepted_keys_are_stored_in_nfc(key: str, stored: str) -> None:
    assert validate_key(key) == stored


# key -> what the message says
REFUSED = [
    ("a\uff0fb.csv", r"U\+FF0F FULLWIDTH SOLIDUS, which looks like a separator"),
    ("a\u2215b.csv", r"U\+2215 DIVISION SLASH, which looks like a separator"),
    ("a\u2044b.csv", r"U\+2044 FRACTION SLASH"),
    ("a\uff3cb.csv", r"U\+FF3C FULLWIDTH REVERSE SOLIDUS"),
    ("a\ufe68b.csv", r"U\+FE68 SMALL REVERSE SOLIDUS"),
    ("a/\u200b/b.csv", r"U\+200B ZERO WIDTH SPACE, which is invisible"),
    ("a\u200cb.csv", r"U\+200C ZERO WIDTH NON-JOINER"),
    ("a\u200db.csv", r"U\+200D ZERO WIDTH JOINER"),
    ("a\u2060b.csv", r"U\+2060 WORD JOINER"),
    ("\ufeffa.csv", r"U\+FEFF ZERO WIDTH NO-BREAK SPACE"),
    ("a\u202eb.csv", r"U\+202E RIGHT-TO-LEFT OVERRIDE"),
    ("a\u2066b.csv", r"U\+2066 LEFT-TO-RIGHT ISOLATE"),
    ("a\u00adb.csv", r"U\+00AD SOFT HYPHEN"),
    ("a\u3164b.csv", r"U\+3164 HANGUL FILLER"),
    ("a\u2028b.csv", r"U\+2028 LINE SEPARATOR"),
    ("a\x85b.csv", r"U\+0085 .*a control character"),
    ("a\x00b.csv", r"U\+0000 .*a control character"),
    ("a\ud800b.csv", r"U\+D800 .*lone surrogate"),
    ("a\u00a0b.csv", r"U\+00A0 NO-BREAK SPACE, a space that is not U\+0020"),
    ("a\u3000b.csv", r"U\+3000 IDEOGRAPHIC SPACE"),
    ("a/b.csv\u00a0", r"ends with '\\xa0'; use 'a/b.csv'"),
    ("C:x.csv", r"Windows drive 'C:'"),
    ("c:/x.csv", r"Windows drive 'c:'"),
    ("//server/share/x.csv", "absolute"),
    ("\\\\server\\share\\x.csv", "backslash"),
    ("a/\uff0e\uff0e/b.csv", r"U\+FF0E|stands for '\.\.'"),
    ("a/\u2025/b.csv", r"stands for '\.\.'"),
    ("a/\u2024/b.csv", r"stands for '\.'"),
    ("a/b./c.csv", r"ending with '\.', which Windows drops \('b\.' would be 'b'\)"),
    ("a/x.csv.", "ending with '.'"),
    ("CON", "CON names a device on Windows"),
    ("data/nul.txt", "NUL names a device"),
    ("data/Com1.csv", "COM1 names a device"),
    ("data/lpt9", "LPT9 names a device"),
    ("data/aux .txt", "AUX names a device"),
    ("data/COM\u00b9.csv", "COM1 names a device"),
    ("data/\uff23\uff2f\uff2e.csv", "CON names a device"),  # fullwidth CON
    ("a/../b.csv", "'..' segment"),
    ("/abs.csv", "absolute"),
]


@pytest.mark.parametrize(("key", "message"), REFUSED)
def test_refused_keys_say_why(key: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        validate_key(key)


def test_the_message_shows_the_key_readably() -> None:
    with pytest.raises(ValidationError) as info:
        validate_key("a/\u200b/b.csv")
    assert str(info.value) == (
        "Artifact key 'a/\\u200b/b.csv' contains U+200B ZERO WIDTH SPACE, which is invisible: "
        "remove it. Keys that look the same must be the same key."
    )


LOOKUPS = [
    ("exact", NFC, ("exact", NFC)),
    ("exact", NFD, ("in", [NFC, NFD])),  # and a key saved in NFD before
    ("in", [NFD, "x.csv"], ("in", [NFC, NFD, "x.csv"])),
    ("startswith", "cafe\u0301", ("startswith", "caf\u00e9")),
    ("isnull", True, ("isnull", True)),
    ("exact", "a\ud800", ("exact", "a\ud800")),  # not text: left for the query layer to refuse
]


@pytest.mark.parametrize(("lookup", "value", "expected"), LOOKUPS)
def test_key_lookups_compare_nfc(lookup: str, value: Any, expected: Any) -> None:
    assert key_lookup(lookup, value) == expected


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_nfc_and_nfd_spellings_are_one_key(instance: Any, tmp_path: Path) -> None:
    first = ln.Artifact(_write(tmp_path / "a.csv", "a\n1\n"), key=NFC).save()
    second = ln.Artifact(_write(tmp_path / "b.csv", "a\n2\n"), key=NFD).save()
    assert second.key == NFC and second.stem == first.stem and second.version == "2"
    assert ln.Artifact.filter(key=NFC).count() == 2
    assert ln.Artifact.get(key=NFD) == second
    assert ln.Artifact.filter(key__in=[NFD]).count() == 2
    assert ln.Artifact.filter(key__startswith="cafe\u0301").count() == 2
    renamed = ln.Artifact.get(key=NFC)
    renamed.key = "cafe\u0301/renamed.csv"
    renamed.save()
    assert {a.key for a in ln.Artifact.filter()} == {"caf\u00e9/renamed.csv"}


def test_refused_keys_store_nothing(instance: Any, tmp_path: Path) -> None:
    path = _write(tmp_path / "a.csv", "a\n1\n")
    for key in ["a\uff0fb.csv", "a/\u200b/b.csv", "data/nul.txt", "C:x.csv"]:
        with pytest.raises(ValidationError):
            ln.Artifact(path, key=key)
    saved = ln.Artifact(path, key="ok.csv").save()
    with pytest.raises(ValidationError, match="U\\+FF0F"):
        saved.key = "a\uff0fb.csv"  # a rename is checked too
    assert [a.key for a in ln.Artifact.filter()] == ["ok.csv"]
    objects = instance.root / ".biolake" / "objects"
    assert len([p for p in objects.rglob("*") if p.is_file()]) == 1


def test_a_key_saved_in_nfd_before_is_found_and_renamed_to_nfc(
    instance: Any, tmp_path: Path
) -> None:
    """Keys saved before keys were normalised may be NFD: found by that spelling, and a
    rename to the same text stores it in NFC."""
    artifact = ln.Artifact(_write(tmp_path / "a.csv", "a\n1\n"), key=NFC).save()
    table = type(artifact).__table__
    with instance.db.write() as session:  # as an earlier biolake stored it
        session.execute(update(table).where(table.c.id == artifact.id).values(key=NFD))
    old = ln.Artifact.get(key=NFD)
    assert old.id == artifact.id and old.key == NFD
    assert ln.Artifact.filter(key=NFC).count() == 0  # documented: type it as it was saved
    old.key = NFD
    old.save()
    assert ln.Artifact.get(key=NFC).id == artifact.id
