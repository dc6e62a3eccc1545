"""Ranked, typo-tolerant search backed by a trigram index; SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest

import biolake as ln
from biolake.errors import InvalidArgument
from biolake.registries.user import current_user_id


def names(qs: Any) -> list[str]:
    return [r.name for r in qs]


@pytest.fixture
def samples(instance: Any) -> Any:
    sample_type = ln.Record(name="Sample", is_type=True).save()
    for name in ["TP53-knockout", "P53mutant2", "xP53y", "P53mutant1", "p53", "WT-control"]:
        ln.Record(name=name, type=sample_type).save()
    ln.Record(name="Macrophage", description="innate immune cell").save()
    ln.Record(name="BRCA1", description="a tumor suppressor, like p53").save()
    return sample_type


def test_ranking_exact_prefix_substring(samples: Any) -> None:
    found = names(ln.Record.search("p53"))
    assert found[:3] == ["p53", "P53mutant1", "P53mutant2"]  # exact, then prefixes
    assert set(found[3:]) == {"xP53y", "TP53-knockout", "BRCA1"}  # substrings (BRCA1: description)
    assert "WT-control" not in found


def test_case_insensitive(samples: Any) -> None:
    assert names(ln.Record.search("P53MUTANT1"))[0] == "P53mutant1"
    assert names(ln.Record.search("wt-CONTROL")) == ["WT-control"]


@pytest.mark.parametrize(
    ("typo", "meant"),
    [
        ("p53mutnat1", "P53mutant1"),
        ("macrophge", "Macrophage"),
        ("macrophagee", "Macrophage"),
        ("brac1", "BRCA1"),  # short queries: two neighbours swapped
        ("tp35", "TP53-knockout"),
        ("5p3", "p53"),
    ],
)
def test_typos_find_near_matches(samples: Any, typo: str, meant: str) -> None:
    assert names(ln.Record.search(typo))[0] == meant


def test_searches_description(samples: Any) -> None:
    assert names(ln.Record.search("suppressor")) == ["BRCA1"]
    assert names(ln.Record.search("immune")) == ["Macrophage"]


def test_short_queries_match_name_prefixes(samples: Any) -> None:
    """One or two characters: names starting with them (index-backed, for search-as-you-type)."""
    assert names(ln.Record.search("wt")) == ["WT-control"]
    assert names(ln.Record.search("P")) == ["p53", "P53mutant1", "P53mutant2"]
    assert names(ln.Record.search("x")) == ["xP53y"]
    assert ln.Record.search("2").count() == 0  # not a prefix


def test_no_match_is_empty(samples: Any) -> None:
    assert ln.Record.search("zzzz").count() == 0
    assert not ln.Record.search("qq")


def test_result_is_a_queryset_that_keeps_its_order(samples: Any) -> None:
    qs = ln.Record.search("p53").filter(type=samples)
    assert names(qs)[:3] == ["p53", "P53mutant1", "P53mutant2"]
    assert "BRCA1" not in names(qs)
    assert qs.first().name == "p53"
    assert qs.count() == 5
    df = ln.Record.search("p53").to_dataframe()
    assert list(df["name"][:2]) == ["p53", "P53mutant1"]
    assert names(ln.Record.search("p53").order_by("name"))[0] == "BRCA1"


def test_index_follows_renames_and_deletes(samples: Any) -> None:
    r = ln.Record.get(name="Macrophage")
    r.name = "Neutrophil"
    r.save()
    assert "Macrophage" not in names(ln.Record.search("macrophage"))
    assert names(ln.Record.search("neutrophil")) == ["Neutrophil"]
    r.description = None
    r.save()
    assert ln.Record.search("immune").count() == 0
    r.delete()  # trash: hidden like everywhere else
    assert ln.Record.search("neutrophil").count() == 0
    r.restore()
    assert ln.Record.search("neutrophil").count() == 1
    r.delete(permanent=True)
    assert ln.Record.search("neutrophil").count() == 0
    ln.Record(name="Neutrophil").save()
    assert names(ln.Record.search("neutrophil")) == ["Neutrophil"]


def test_rows_written_without_the_orm_are_indexed(instance: Any) -> None:
    from sqlalchemy import insert

    from biolake.registries.record import Record

    rows = [
        {"uid": f"bulk{i:08d}", "name": f"bulk-{i}", "is_type": False, "visibility": "default"}
        for i in range(50)
    ]
    user_id = current_user_id(instance)
    with instance.db.write() as session:
        session.execute(insert(Record.__table__), [{**r, "created_by_id": user_id} for r in rows])
    assert ln.Record.search("bulk-42").first().name == "bulk-42"
    assert ln.Record.search("bulk").count() == 50


@pytest.mark.parametrize("query", ["50%", "a_b", '"', "'", "\\", "%_", "(x OR y)", "NEAR", "é"])
def test_special_characters_are_plain_text(instance: Any, query: str) -> None:
    for name in ["50%_done", "500 done", "a_b", "a-b", "axb", '"quoted"', "it's", "'tick"]:
        ln.Record(name=name).save()
    for name in ["\\back", "back\\slash", "%_pct", "(x OR y)", "NEARBY", "x", "éclair", "e"]:
        ln.Record(name=name).save()
    found = names(ln.Record.search(query))
    assert query.lower() in found[0].lower()  # contains it; "_" and "%" are no wildcards
    if query in {"a_b", "50%"}:
        assert found[0] in {"a_b", "50%_done"}


def test_bad_queries(instance: Any) -> None:
    with pytest.raises(InvalidArgument, match="non-empty string"):
        ln.Record.search("  ")
    with pytest.raises(InvalidArgument, match="non-empty string"):
        ln.Record.search(3)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="at most"):
        ln.Record.search("x" * 201)


LAST = "\U0010ffff"  # the last code point


@pytest.mark.parametrize(
    ("query", "found"),
    [
        (LAST, [LAST, LAST + "z"]),  # a prefix with no successor code point
        ("a" + LAST, ["a" + LAST, "a" + LAST + "b"]),
        (LAST * 2, []),
        ("\ud7ff", ["\ud7ffx"]),  # the next code point would be a surrogate
        ("k" + LAST + "m", ["k" + LAST + "m"]),
    ],
)
def test_queries_at_the_end_of_unicode(instance: Any, query: str, found: list[str]) -> None:
    for name in [
        LAST,
        LAST + "z",
        "a" + LAST,
        "a" + LAST + "b",
        "\ud7ffx",
        "\ue000",
        "k" + LAST + "m",
    ]:
        ln.Record(name=name).save()
    assert sorted(names(ln.Record.search(query))) == found


@pytest.mark.parametrize(
    ("query", "first"),
    [
        ("!!!", "wow!!!"),
        ('"', '"hi" she said'),  # one or two characters: a prefix of the name
        ('"hi', '"hi" she said'),  # a prefix ranks before 'say "hi"'
        ('hi"', 'say "hi"'),
        ("*", "*star"),
        ("sta*", None),
        ("NEAR(a b)", "NEAR(a b)"),
        ("a AND b", "a AND b"),
        ("AND", "a AND b"),
        ("col:abc", "col:abc"),
        ("^x", "^x"),
        ("{a}", "{a}"),
        ("-", "-flag"),
        ("-b", None),
        ("\u0301", "\u0301x"),  # a combining accent alone
        ("e\u0301", "e\u0301"),
        ("\ufeff", None),
        ("x" * 200, None),
    ],
)
def test_odd_queries_are_plain_text(instance: Any, query: str, first: str | None) -> None:
    """Punctuation, FTS syntax and odd characters are text to find, on both backends."""
    for name in ["wow!!!", 'say "hi"', "*star", "NEAR(a b)", "a AND b", "col:abc", "^x", "{a}"]:
        ln.Record(name=name).save()
    for name in ["a-b", "-flag", '"hi" she said', "\u0301x", "e\u0301", "plain"]:
        ln.Record(name=name).save()
    found = names(ln.Record.search(query))
    if first is None:  # what is found does not start with the query (nothing does)
        assert not any(name.lower().startswith(query.lower()) for name in found)
    else:
        assert found[0] == first


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("\ud800", "lone surrogate"),
        ("ab\udfffcd", "lone surrogate"),
        ("a\x00b", "NUL"),
        ("\x00", "NUL"),
        ("x" * 201, "at most 200"),
        ("\t\n ", "non-empty string"),
        (b"abc", "non-empty string"),
        (None, "non-empty string"),
    ],
)
def test_queries_no_database_can_take_are_refused(instance: Any, query: Any, message: str) -> None:
    ln.Record(name="abc").save()
    with pytest.raises(InvalidArgument, match=message):
        ln.Record.search(query)


def test_feature_and_project_search(instance: Any) -> None:
    ln.Feature(name="read_count", dtype=int, description="reads after QC").save()
    ln.Feature(name="gc_content", dtype=float).save()
    ln.Project(name="Cancer Drug Screen 2025").save()
    ln.Project(name="Atlas", description="a cancer cell atlas").save()
    assert names(ln.Feature.search("read")) == ["read_count"]
    assert names(ln.Feature.search("after qc")) == ["read_count"]
    assert names(ln.Feature.search("gc_contnet")) == ["gc_content"]
    assert names(ln.Project.search("cancer")) == ["Cancer Drug Screen 2025", "Atlas"]


def test_artifact_search(instance: Any, tmp_path: Any) -> None:
    from biolake.registries.artifact import Artifact
    from biolake.search.searchable import Searchable

    if not issubclass(Artifact, Searchable):
        pytest.skip("Artifact is not searchable yet")
    for key, description in [("rna/batch1.h5ad", "scRNA-seq batch 1"), ("atac/x.csv", None)]:
        path = tmp_path / key.replace("/", "_")
        path.write_text(key)
        ln.Artifact(path, key=key, description=description).save()
    assert [a.key for a in ln.Artifact.search("batch1")] == ["rna/batch1.h5ad"]
    assert [a.key for a in ln.Artifact.search("scrna")] == ["rna/batch1.h5ad"]
    assert [a.key for a in ln.Artifact.search("atac")] == ["atac/x.csv"]


def test_search_uses_the_index(instance: Any, samples: Any) -> None:
    """The plan reads candidates from the trigram index, not by scanning the table."""

    compiled = ln.Record.search("p53mutant")._statement().compile(instance.db.engine)
    params: Any = compiled.params
    if instance.db.is_sqlite:
        params = tuple(compiled.params[name] for name in compiled.positiontup or ())
    with instance.db.write() as session:
        conn = session.connection()
        if instance.db.is_sqlite:
            rows = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled.string}", params)
        else:
            conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
            rows = conn.exec_driver_sql(f"EXPLAIN {compiled.string}", params)
        plan = " ".join(str(row) for row in rows)
    if instance.db.is_sqlite:
        assert "records_fts VIRTUAL TABLE INDEX" in plan
        assert "SCAN records " not in plan
    else:
        assert "ix_records_name_trgm" in plan


def test_long_queries_tolerate_typos_by_pieces(instance: Any) -> None:
    """From 10 characters, candidates hold one unchanged piece of the query (see _piece_terms)."""
    from biolake.search.searchable import _piece_terms

    for name in ["TP53-knockout-line7", "TP53-knockin-line8", "Macrophage", "Monocyte"]:
        ln.Record(name=name).save()
    assert names(ln.Record.search("macrophaeg"))[0] == "Macrophage"  # 1 typo, 10 characters
    assert names(ln.Record.search("tp53-knokout-lime7"))[0] == "TP53-knockout-line7"  # 2 typos
    exact = names(ln.Record.search("TP53-knockout-line7"))
    assert exact == ["TP53-knockout-line7", "TP53-knockin-line8"]  # exact, then a near match
    assert _piece_terms("macrophag") is None  # 9 characters: trigram pairs
    assert _piece_terms("macrophaeg") == '"macro" OR "phaeg"'
    assert _piece_terms("tp53-knokout-lime7") == '"tp53-k" OR "nokout" OR "-lime7"'


def test_stale_trigram_counts_never_change_results(samples: Any) -> None:
    """Trigram counts are reused for a minute to pick the rarest; a typo search must still find
    rows saved after the counts were taken, when the rarest trigrams have become common."""
    assert ln.Record.search("macrophge").count() == 1  # counts cached now
    for i in range(30):  # make the query's trigrams common
        ln.Record(name=f"macro-{i}").save()
    ln.Record(name="Macrophages").save()
    found = names(ln.Record.search("macrophge"))
    assert found[:2] == ["Macrophage", "Macrophages"]


def test_trigram_counts_are_reused_then_expire(instance: Any, monkeypatch: Any) -> None:
    """SQLite reads fts5vocab counts once a minute per trigram; PostgreSQL has no such step."""
    from sqlalchemy import event

    from biolake.search import searchable as search

    ln.Record(name="Macrophage").save()
    vocab_reads: list[str] = []

    def record(conn: Any, cursor: Any, sql: str, *args: Any) -> None:
        if "_fts_vocab" in sql:
            vocab_reads.append(sql)

    event.listen(instance.db.engine, "before_cursor_execute", record)
    try:
        assert names(ln.Record.search("macrophge")) == ["Macrophage"]
        expected_first = 1 if instance.db.is_sqlite else 0
        assert len(vocab_reads) == expected_first
        assert names(ln.Record.search("macrophge")) == ["Macrophage"]
        assert len(vocab_reads) == expected_first  # answered from the counts kept
        assert names(ln.Record.search("macrophag")) == ["Macrophage"]
        assert len(vocab_reads) == 2 * expected_first  # only its new trigrams were read:
        assert vocab_reads[-1:] == [] or vocab_reads[-1].count("?") == 3  # 'hag', 'ag ', 'pha'
        monkeypatch.setattr(search, "RARITY_TTL", -1.0)  # every count is stale now
        assert names(ln.Record.search("macrophge")) == ["Macrophage"]
        assert len(vocab_reads) == 3 * expected_first
        monkeypatch.setattr(search, "RARITY_CACHE_MAX", 0)  # full: starts afresh
        ln.Record.search("immune").count()
        cache = instance.db.session.info.get("trigram_counts", {})
        assert all(term in search.trigrams("immune") for _, term in cache)
    finally:
        event.remove(instance.db.engine, "before_cursor_execute", record)


def test_swaps_of_short_queries() -> None:
    from biolake.search.searchable import swaps

    assert swaps("tp35") == ["pt35", "t3p5", "tp53"]
    assert swaps("aab") == ["aba"]  # a swap of equal letters is the query itself
    assert swaps("p53 ko") == ["5p3 ko", "p35 ko", "p5 3ko", "p53k o", "p53 ok"]
    assert swaps("p53mutant") == []  # long queries: near matches by trigrams instead
