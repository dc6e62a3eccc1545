"""Ranked, typo-tolerant text search over a registry's fields, backed by a trigram index.

A registry opts in with the mixin and the fields to search, first field first in rank::

    class Artifact(Searchable, CreatedBy, Registry):
        _search_fields = ("key", "description")

and a migration creates the index (``biolake.core.schema.search_index``: add the table and fields to
``SEARCHED_TABLES`` and run its ``create_statements`` in a migration). ``Artifact.search("rna")``
then returns a lazy QuerySet that can be filtered further and keeps its order.

Matching is case-insensitive. A row matches when a field contains the query, or, for queries of
three characters or more, when a field shares at least half of the query's trigrams (a near
match, e.g. a typo), or, for queries of up to six characters, contains the query with two
neighbouring characters swapped ("tp35" finds TP53). Rows are ranked: exact value first, then
prefix, substring, near match; ties
go to the larger trigram overlap, then the shorter first field, then alphabetical order.

- SQLite: candidates come from the FTS5 trigram index: the query as a phrase, OR pairs of its
  rarest trigrams, chosen (pigeonhole principle) so that every near match holds one pair; the
  few candidates are then checked and ranked in SQL. Queries of 10 characters or more look up
  pieces of the query instead of pairs (far fewer posting lists to read): a near match must
  then also hold one piece unchanged, which a value within 1 typo (2 from 15 characters) does.
- PostgreSQL: ``ILIKE '%q%'`` and pg_trgm's word similarity ``q <% field`` (threshold 0.5, set
  per connection in ``biolake.core.db``), both
  answered by the GIN trigram index; ranked by ``word_similarity``.

Queries of one or two characters cannot use a trigram index: they match values of the first
field that start with the query (an index on ``lower(field)``), as in search-as-you-type.
"""

from __future__ import annotations

import itertools
import math
import sys
import time
from typing import TYPE_CHECKING, Any, ClassVar, Self

from sqlalchemy import (
    ColumnElement,
    Float,
    Integer,
    case,
    cast,
    column,
    func,
    literal,
    or_,
    select,
    table,
    text,
    type_coerce,
)

from biolake.core.schema.search_index import TRGM_SCHEMA_QUERY
from biolake.core.values import text_problem
from biolake.errors import BiolakeError, InstanceError, InvalidArgument, suggestion
from biolake.query.queryset import QuerySet

if TYPE_CHECKING:
    from biolake.core.instance import Instance

NEAR_SHARE = 0.5  # SQLite: a near match shares at least this fraction of the query's trigrams
MAX_QUERY_LENGTH = 200
MAX_PAIRS = 66  # FTS terms of the pairwise candidate query (a pool of 12 trigrams)
PIECE_LENGTH = 5  # long queries: candidates hold one piece of at least this length
SWAP_MAX_LENGTH = 6  # queries up to this long also match with two neighbours swapped


class Searchable:
    """Mixin: ``Model.search(text)`` over the fields named in ``_search_fields``."""

    _search_fields: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def search(cls, query: str) -> QuerySet[Self]:  # type: ignore[type-var]
        """Rows matching ``query``, best match first, as a QuerySet.

        Example: ``ln.Record.search("p53").to_dataframe()``
        """
        model: Any = cls
        return cls._search(query, model.objects().instance)

    @classmethod
    def _search(cls, query: str, instance: Instance) -> QuerySet[Self]:  # type: ignore[type-var]
        """``search`` in ``instance`` (a QuerySet may belong to another than the current one)."""
        q = _normalize(query)
        model: Any = cls
        if len(q) < 3:
            where, score = _prefix_match(model, q, instance.db.dialect), literal(0.0)
        elif instance.db.is_sqlite:
            where, score = _sqlite_match(model, q, instance)
        else:
            where, score = _postgres_match(model, q, _trgm_schema(instance))
        order = _ranking(model, q, score, instance.db.dialect)
        return QuerySet(
            model, instance, where=(where,), order=order, described=(f"search({query!r})",)
        )

    @classmethod
    def _missing_hint(cls, queryset: QuerySet[Any], lookups: dict[str, Any]) -> str:
        """For a failed ``get(name="x")`` (the lookup is the first search field): " Did you
        mean …?" with up to 3 values the search finds among the rows ``queryset`` and the other
        lookups allow, or "". Runs when the error is shown."""
        if not cls._search_fields:
            return ""
        field = cls._search_fields[0]
        value = lookups.get(field)
        if not isinstance(value, str):
            return ""
        others = {k: v for k, v in lookups.items() if k != field}
        try:
            found = cls._search(value, queryset.instance)
            found = found._clone(
                where=(*found._where, *queryset._where), filtered=queryset._filtered
            )
            column = getattr(cls, field)
            rows = queryset._execute(found.filter(**others)[:20]._statement(column)).all()
        except BiolakeError:  # e.g. a value search rejects (too long): no hint, same error
            return ""
        close = [v for v in dict.fromkeys(row[0] for row in rows) if v and v != value]
        return suggestion(close[:3])


def _normalize(query: Any) -> str:
    if not isinstance(query, str) or not query.strip():
        raise InvalidArgument(f"search() takes a non-empty string, not {query!r}.")
    q = " ".join(query.lower().split())
    if len(q) > MAX_QUERY_LENGTH:
        raise InvalidArgument(f"Search queries are at most {MAX_QUERY_LENGTH} characters.")
    problem = text_problem(q)
    if problem is not None:
        raise InvalidArgument(f"Search query {query!r} contains {problem}: remove it.")
    return q


def _fields(model: Any) -> list[ColumnElement[Any]]:
    return [func.lower(func.coalesce(getattr(model, f), "")) for f in model._search_fields]


def _contains(lowered: ColumnElement[Any], q: str) -> ColumnElement[bool]:
    return lowered.contains(q, autoescape=True)


# --- SQLite: FTS5 trigram ---------------------------------------------------------------------


def trigrams(q: str) -> list[str]:
    """The distinct trigrams of ``q`` padded with a space on both sides, as the index holds them."""
    padded = f" {q} "
    return list(dict.fromkeys(padded[i : i + 3] for i in range(len(padded) - 2)))


def swaps(q: str) -> list[str]:
    """For a short query (up to SWAP_MAX_LENGTH characters), the query with two neighbouring
    characters swapped, each way: "tp35" -> "pt35", "t3p5", "tp53". Such a typo breaks most
    trigrams of a short word, so near matching alone misses it (TP53 shares none with tp35)."""
    if len(q) > SWAP_MAX_LENGTH:
        return []
    found = (q[:i] + q[i + 1] + q[i] + q[i + 2 :] for i in range(len(q) - 1))
    return [v for v in dict.fromkeys(found) if v != q and v == v.strip()]


def _sqlite_match(model: Any, q: str, instance: Instance) -> tuple[Any, Any]:
    lowered = _fields(model)
    substring = or_(*(_contains(f, v) for f in lowered for v in [q, *swaps(q)]))
    tris = trigrams(q)
    needed = math.ceil(NEAR_SHARE * len(tris))
    name = f"{model.__tablename__}_fts"
    fts = table(name, column("rowid"), column(name))  # the hidden column named like the table
    near_terms = _piece_terms(q) or _near_terms(model, tris, needed, instance)
    terms = " OR ".join([*(_fts_string(v) for v in [q, *swaps(q)]), near_terms])
    candidates = select(fts.c.rowid).where(fts.c[name].op("MATCH")(terms))
    shared = [_shared(getattr(model, f), tris) for f in model._search_fields]
    near = or_(*(s >= needed for s in shared))
    score = func.max(*shared, literal(0)) if len(shared) > 1 else shared[0]
    where = model.id.in_(candidates.scalar_subquery()) & (substring | near)
    return where, cast(score, Float) / len(tris)


def _near_terms(model: Any, tris: list[str], needed: int, instance: Instance) -> str:
    """An FTS expression every row sharing ``needed`` of ``tris`` satisfies, as narrow as cheap.

    Pigeonhole: such a row misses at most ``n - needed`` trigrams, so it holds at least 2 of any
    ``n - needed + 2`` of them (pairs: few candidates), or at least 1 of any ``n - needed + 1``.
    The rarest trigrams are chosen, from the index's own counts.
    """
    n = len(tris)
    ranked = _by_rarity(model, tris, instance)
    pool = n - needed + 2
    if needed >= 2 and pool <= n and math.comb(pool, 2) <= MAX_PAIRS:
        pairs = itertools.combinations(ranked[:pool], 2)
        return " OR ".join(f"({_fts_string(a)} AND {_fts_string(b)})" for a, b in pairs)
    return " OR ".join(_fts_string(t) for t in ranked[: n - needed + 1])


def _piece_terms(q: str) -> str | None:
    """For a query of 10 characters or more: the query cut into pieces, as FTS phrases.

    A value within ``k`` typos of the query holds at least one of ``k + 1`` pieces unchanged
    (each typo breaks at most one piece), and a phrase of 5+ characters is a narrow index
    lookup, where pairs of trigrams (``_near_terms``) read many long posting lists (a
    14-character name among 1M records: 124 -> 10 ms). Shorter pieces match so many rows that
    checking them costs more than the pairs. Tolerated: 1 typo from 10 characters, 2 from 15.
    Shorter queries: None (the pairs find every value sharing half the trigrams).
    """
    typos = 2 if len(q) >= 3 * PIECE_LENGTH else 1
    if len(q) < PIECE_LENGTH * (typos + 1):
        return None
    n = typos + 1
    bounds = [len(q) * i // n for i in range(n + 1)]
    pieces = dict.fromkeys(q[a:b] for a, b in itertools.pairwise(bounds))
    return " OR ".join(_fts_string(p) for p in pieces)


def _fts_string(term: str) -> str:
    return '"' + term.replace('"', '""') + '"'


def _shared(field: ColumnElement[Any], tris: list[str]) -> ColumnElement[Any]:
    """How many of ``tris`` the padded field contains (computed for candidates only).

    An empty field (most descriptions) is 0 without looking: the trigram checks of a second
    field were a quarter of a 1,270-match search.
    """
    padded = literal(" ") + func.lower(field) + literal(" ")
    # A comparison is 0 or 1 in SQLite: summed as it is, without a CASE per trigram.
    hits = [type_coerce(func.instr(padded, t) > 0, Integer) for t in tris]
    total: ColumnElement[Any] = hits[0]
    for hit in hits[1:]:
        total = total + hit
    return case((field.is_(None), 0), else_=total)


RARITY_TTL = 60.0  # seconds a trigram's row count is reused
RARITY_CACHE_MAX = 100_000  # counts kept per connection before starting afresh


def _by_rarity(model: Any, tris: list[str], instance: Instance) -> list[str]:
    """``tris``, those held by the fewest rows first, from the fts5vocab table's counts.

    FTS5 counts a term's rows by reading its whole posting list (3 ms for a trigram in 166,000
    of 1M names), so counts are kept for a minute: successive queries (search as you type)
    share most trigrams. A stale count only makes the candidate query a little wider or
    narrower, never its result different.
    """
    name = model.__tablename__
    cache: dict[tuple[str, str], tuple[int, float]]
    cache = instance.db.session.info.setdefault("trigram_counts", {})
    now = time.monotonic()
    counts = {
        t: hit[0] for t in tris if (hit := cache.get((name, t))) and now - hit[1] < RARITY_TTL
    }
    missing = [t for t in tris if t not in counts]
    if missing:
        vocab = table(f"{name}_fts_vocab", column("term"), column("doc", Integer))
        stmt = select(vocab.c.term, vocab.c.doc).where(vocab.c.term.in_(missing))
        db = instance.db
        try:
            found = {term: doc for term, doc in db.session.execute(stmt)}
        finally:
            db.end_read()
        if len(cache) > RARITY_CACHE_MAX:
            cache.clear()
        for t in missing:
            counts[t] = found.get(t, 0)
            cache[(name, t)] = (counts[t], now)
    return sorted(tris, key=lambda t: counts[t])


# --- PostgreSQL: pg_trgm ----------------------------------------------------------------------


def _trgm_schema(instance: Instance) -> str:
    """The schema pg_trgm is installed in (cached per instance); its operators are qualified."""
    info = instance.db.session.info
    if "pg_trgm_schema" not in info:
        try:
            schema = instance.db.session.execute(text(TRGM_SCHEMA_QUERY)).scalar()
        finally:
            instance.db.end_read()
        if schema is None:
            raise InstanceError(
                "Search needs the PostgreSQL extension pg_trgm: run CREATE EXTENSION pg_trgm "
                "as a superuser in this database, then reconnect."
            )
        info["pg_trgm_schema"] = schema
    return str(info["pg_trgm_schema"])


def _postgres_match(model: Any, q: str, schema: str) -> tuple[Any, Any]:
    fields = [getattr(model, f) for f in model._search_fields]
    patterns = ["%" + _like_escape(v) + "%" for v in [q, *swaps(q)]]
    near = literal(q).op(f'OPERATOR("{schema}".<%)', is_comparison=True)
    matches = [f.ilike(p) for f in fields for p in patterns] + [near(f) for f in fields]
    similarity = getattr(func, schema).word_similarity
    scores = [func.coalesce(similarity(q, f), 0.0) for f in fields]
    score = func.greatest(*scores) if len(scores) > 1 else scores[0]
    return or_(*matches), score


def _prefix_match(model: Any, q: str, dialect: str) -> Any:
    """Values of the first field starting with ``q``: a range on the ``lower(field)`` index."""
    first = func.lower(getattr(model, model._search_fields[0]))
    if dialect == "sqlite":  # BINARY order: every value with prefix q sorts in [q, next)
        upper = prefix_successor(q)
        return (first >= q) & (first < upper) if upper is not None else first >= q
    return first.like(_like_escape(q) + "%")  # text_pattern_ops index


def prefix_successor(q: str) -> str | None:
    """The first string after every string that starts with ``q``, in code-point order (that
    of UTF-8 bytes), or None when there is none ("\U0010ffff" is the last code point).
    Surrogates are skipped: they are not text, and no value holds one."""
    stem = q.rstrip(chr(sys.maxunicode))
    if not stem:
        return None
    following = ord(stem[-1]) + 1
    if 0xD800 <= following <= 0xDFFF:
        following = 0xE000
    return stem[:-1] + chr(following)


def _like_escape(q: str) -> str:
    return q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


# --- ranking ----------------------------------------------------------------------------------


def _ranking(model: Any, q: str, score: Any, dialect: str) -> tuple[Any, ...]:
    tiers = [
        case(
            (f == q, 0),
            (func.substr(f, 1, len(q)) == q, 1),
            (_contains(f, q), 2),
            else_=3,
        )
        for f in _fields(model)
    ]
    least = func.min if dialect == "sqlite" else func.least
    tier = least(*tiers) if len(tiers) > 1 else tiers[0]
    first = getattr(model, model._search_fields[0])
    alphabetical = _fields(model)[0]
    return (tier.asc(), score.desc(), func.length(first).asc(), alphabetical.asc(), model.id.asc())
