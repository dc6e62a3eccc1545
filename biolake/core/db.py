"""Engine and session per instance; the only module that knows SQL dialects apart.

SQLite runs in WAL mode with foreign keys on and a busy timeout. Reads run in autocommit mode
(each statement sees the latest committed data); writes open ``BEGIN IMMEDIATE`` so that several
processes writing at once queue up on the lock instead of failing on a read-to-write upgrade.
PostgreSQL uses READ COMMITTED; reads end their transaction right away so no connection idles in
a transaction that holds locks. A read-only database (``biolake.core.read_only``) refuses every
write with :class:`~biolake.errors.ReadOnlyInstance` before it reaches the database, and turns
the database's own refusals into that error too.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import math
import numbers
import threading
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any
from urllib.parse import unquote

from sqlalchemy import (
    BigInteger,
    Boolean,
    ColumnElement,
    Float,
    Integer,
    Numeric,
    String,
    Text,
    TypeDecorator,
    any_,
    bindparam,
    case,
    cast,
    create_engine,
    event,
    func,
    literal,
    select,
    text,
)
from sqlalchemy.engine import URL, Engine, ExceptionContext
from sqlalchemy.exc import IntegrityError as SAIntegrityError
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from biolake.core.log import logger
from biolake.core.read_only import read_refused, write_refused
from biolake.errors import InstanceError, IntegrityError, InvalidArgument, ReadOnlyInstance

SQLITE_BUSY_TIMEOUT_MS = 60_000
HASH_WORK_MEM = "64MB"
_SET_WORK_MEM = text(f"SELECT set_config('work_mem', '{HASH_WORK_MEM}', true)")


def _on_sqlite_connect(dbapi_conn: Any, _record: Any) -> None:
    _set_pragmas(dbapi_conn, read_only=False)


def _on_read_only_sqlite_connect(dbapi_conn: Any, _record: Any) -> None:
    _set_pragmas(dbapi_conn, read_only=True)


def _set_pragmas(dbapi_conn: Any, read_only: bool) -> None:
    # Driver-level autocommit: we emit BEGIN ourselves (see Database.write), so plain reads
    # never hold a snapshot open and writes take the lock up front.
    dbapi_conn.isolation_level = None
    cursor = dbapi_conn.cursor()
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    if not read_only:  # switching the journal is a write; a reader takes the file as it is
        _ensure_wal(cursor)
    for pragma in (
        "synchronous=NORMAL",
        "foreign_keys=ON",
        "case_sensitive_like=ON",  # `contains` is case-sensitive; `icontains` lowercases both
        "temp_store=MEMORY",
        "cache_size=-65536",  # 64 MiB page cache
        # Read pages through a memory map: no read() syscall per page. Counting 200,000 feature
        # matches in a 1.3 GB instance went from 0.22-0.31 s to 0.14 s. SQLite caps the size at
        # its build's maximum (2 GiB less 64 KiB by default); pages beyond it are read as usual.
        # An I/O error on a mapped page kills the process (SIGBUS) instead of raising: the
        # database must be on a local disk, which WAL mode requires anyway (README, Instances).
        f"mmap_size={2**31}",
    ):
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


def _ensure_wal(cursor: Any) -> None:
    """Switch the database file to WAL (a setting stored in the file, so usually a no-op).

    Switching needs an exclusive lock, and SQLite answers "database is locked" at once, without
    waiting, when another process is creating the same new database: retry until the timeout.
    """
    import sqlite3
    import time

    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            if cursor.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def _json_text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def make_engine(url: str | URL, *, read_only: bool = False) -> Engine:
    """Create an engine for a SQLite URL (``biolake.core.read_only.sqlite_url``) or a
    ``postgresql://`` URL; ``read_only`` opens PostgreSQL in read-only transactions."""
    if isinstance(url, URL) or url.startswith("sqlite"):
        # JSON as UTF-8, not \u escapes: SQLite's JSON paths match a key by its stored text, so
        # an escaped "é" was never found (PostgreSQL's JSONB decodes either way). Values
        # written before are still escaped: such keys match from their next save on.
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 60},
            json_serializer=_json_text,
        )
        on_connect = _on_read_only_sqlite_connect if read_only else _on_sqlite_connect
        event.listen(engine, "connect", on_connect)
        return engine
    if url.startswith(("postgresql://", "postgres://")):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    if not url.startswith("postgresql+psycopg://"):
        raise InstanceError(
            f"Unsupported database URL {url!r}: use a postgresql://user@host:port/dbname URL, "
            "or leave `db` unset for a SQLite database inside the storage folder."
        )
    try:
        import psycopg  # noqa: F401
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise InstanceError(
            "PostgreSQL support needs the driver: pip install 'biolake[postgres]'"
        ) from exc
    engine = create_engine(url, pool_pre_ping=True, connect_args={"connect_timeout": 10})
    event.listen(engine, "connect", _on_postgres_connect)
    if read_only:
        event.listen(engine, "connect", _on_read_only_postgres_connect)
    return engine


def _on_read_only_postgres_connect(dbapi_conn: Any, _record: Any) -> None:
    # The server refuses writes too, whatever the role may do.
    autocommit = dbapi_conn.autocommit
    dbapi_conn.autocommit = True
    dbapi_conn.execute("SET default_transaction_read_only = on")
    dbapi_conn.autocommit = autocommit


def _on_postgres_connect(dbapi_conn: Any, _record: Any) -> None:
    # Search's near matches (`q <% field`, index-backed) use this threshold; 0.5 tolerates a
    # typo in a short word like SQLite's search does (see biolake/search/searchable.py). Outside a
    # transaction, so that no rollback undoes it.
    autocommit = dbapi_conn.autocommit
    dbapi_conn.autocommit = True
    dbapi_conn.execute("SET pg_trgm.word_similarity_threshold = 0.5")
    # No JIT: biolake's queries are short, and a recursive lineage query's row estimate (the
    # planner cannot know a walk's size) once made JIT compile for 0.4 s a query of 2 ms.
    dbapi_conn.execute("SET jit = off")
    dbapi_conn.autocommit = autocommit


def _check_flushed_text(session: Session, _context: Any, _instances: Any) -> None:
    """Refuse NUL in any registry row about to be written (see ``Registry._check_text``)."""
    for obj in (*session.new, *session.dirty):
        check = getattr(obj, "_check_text", None)
        if check is not None:
            check()


def _run_quietly(work: Callable[[], None]) -> None:
    try:
        work()
    except Exception as exc:  # the transaction's own outcome (or error) comes first
        logger.warning(f"clean-up after a write failed and was skipped: {exc!r}")


_LOCK_STATEMENT = text(
    "SELECT count(pg_advisory_xact_lock(:space, id)) "
    "FROM (SELECT unnest(CAST(:ids AS integer[])) AS id ORDER BY id) AS ids"
)


class Database:
    """One database: its engine and the session that registry objects live in.

    ``read_only`` opens it without writing; the owner (an instance) sets ``owner`` (whose
    database it is) and ``read_only_reason`` (why writes are refused and how to get write
    access), which the messages of refused writes show.
    """

    def __init__(self, url: str | URL, *, read_only: bool = False) -> None:
        self.url = url
        self.engine = make_engine(url, read_only=read_only)
        self.dialect = self.engine.dialect.name
        self.owner = f"the database {self.safe_url}"
        self.read_only_reason: str | None = "as asked" if read_only else None
        event.listen(self.engine, "handle_error", self._translate_refusal)
        self.session = Session(self.engine, expire_on_commit=False, autoflush=False)
        event.listen(self.session, "before_flush", _check_flushed_text)
        event.listen(self.session, "before_flush", self._refuse_read_only_flush)
        self._lock = threading.RLock()
        self._depth = 0
        # Called after a write rolls back, e.g. to forget ids of rows inserted in it.
        self.on_rollback: list[Callable[[], None]] = []
        self._after_write: list[Callable[[], None]] = []

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    def check_connection(self) -> None:
        """Open one connection, turning driver errors into an error that says what to do."""
        try:
            with self.engine.connect() as conn:
                conn.exec_driver_sql("SELECT 1")
        except OperationalError as exc:
            raise InstanceError(
                f"Cannot reach the database {self.safe_url}: {exc.orig}. Check that the server "
                "runs and that the URL (host, port, database name, user) is right."
            ) from exc

    @property
    def safe_url(self) -> str:
        """The URL without a password, for messages; a SQLite file's path as it is."""
        url = self.engine.url
        if self.is_sqlite and url.database:
            path = url.database
            if path.startswith("file:"):  # the URI form of a read-only opener
                path = unquote(path.removeprefix("file:"))
            return f"sqlite:///{path}"
        return url.render_as_string(hide_password=True)

    @property
    def read_only(self) -> bool:
        return self.read_only_reason is not None

    def check_writable(self) -> None:
        """Raise ReadOnlyInstance when this database is open read-only: before any write, and
        before the bytes of an artifact are stored."""
        if self.read_only_reason is not None:
            raise ReadOnlyInstance(
                f"Cannot write to {self.owner}: it is open read-only {self.read_only_reason}."
            )

    def _refuse_read_only_flush(self, session: Session, _context: Any, _objects: Any) -> None:
        # A change made outside write() would be flushed by the next commit of a read.
        if session.new or session.dirty or session.deleted:
            self.check_writable()

    def _translate_refusal(self, context: ExceptionContext) -> None:
        """The database's refusal of a write (or a role's of a read) as a biolake error."""
        error, statement = context.original_exception, context.statement
        detail = " ".join(str(error).split())
        if write_refused(error, statement):
            self.check_writable()
            raise ReadOnlyInstance(
                f"Cannot write to {self.owner}: the database refused the write ({detail}). "
                "Connect with a database role that may INSERT, UPDATE and DELETE in every "
                "table of the instance, or open it with read_only=True to read."
            ) from error
        if read_refused(error, statement):
            raise InstanceError(
                f"Cannot read {self.owner}: the database role may not read it ({detail}). "
                "Grant it SELECT on the instance's tables (README, Read-only instances)."
            ) from error

    @contextlib.contextmanager
    def write(self) -> Iterator[Session]:
        """A write transaction; nested calls join the outer one.

        Everything done inside commits together or not at all: on an error the transaction
        rolls back and the objects added in it are detached again.
        """
        self.check_writable()
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield self.session
                except SAIntegrityError as exc:
                    raise integrity_error(exc) from exc
                finally:
                    self._depth -= 1
                return
            session = self.session
            if session.in_transaction():
                try:  # end a read transaction (flushing what was changed outside write())
                    session.commit()
                except SAIntegrityError as exc:
                    self._rollback()  # else the session refuses all work until rolled back
                    raise integrity_error(exc) from exc
                except BaseException:
                    self._rollback()
                    raise
            conn = session.connection()
            if self.is_sqlite:
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            self._depth = 1
            try:
                yield session
                session.commit()
            except SAIntegrityError as exc:
                self._rollback()
                raise integrity_error(exc) from exc
            except BaseException:
                self._rollback()
                raise
            finally:
                self._depth = 0
                self._run_after_write()

    def lock(self, space: int, values: Iterable[str]) -> None:
        """Inside a write: serialise it with the other writes that lock one of ``values`` in
        ``space`` (a number naming what they are: keys, content hashes, ...), until it ends.

        PostgreSQL advisory transaction locks, taken in one round trip in the order of their
        ids, so two writers that take locks of one space never wait on each other in a cycle;
        writers that lock several spaces take them in one agreed order. On SQLite every write
        holds the database's write lock already (BEGIN IMMEDIATE): nothing to do.
        """
        if self.is_sqlite:
            return
        ids = sorted({zlib.crc32(value.encode()) - 2**31 for value in values})
        if ids:
            self.session.execute(_LOCK_STATEMENT, {"space": space, "ids": ids})

    def after_write(self, work: Callable[[], None]) -> None:
        """Run ``work`` once, when the outermost write transaction ends (committed or rolled
        back), or now when none is open.

        For work that must see the outcome and take its own locks: deleting stored bytes that
        an enclosing transaction might still reference, or restore by rolling back.
        """
        with self._lock:
            if self._depth:
                self._after_write.append(work)
                return
        _run_quietly(work)

    def _run_after_write(self) -> None:
        pending, self._after_write = self._after_write, []
        for work in pending:
            _run_quietly(work)

    def _rollback(self) -> None:
        self.session.rollback()
        for hook in self.on_rollback:
            hook()

    @property
    def in_write(self) -> bool:
        return self._depth > 0

    def roomy_hashes(self) -> None:
        """Let this transaction's hash joins use up to HASH_WORK_MEM on PostgreSQL. At the
        default 4 MB, counting 50,000 of 1M artifacts by two features spills a 500,000-row
        hash to disk in batches (the statement alone: 114 -> 61 ms in psql on a quiet host;
        less through the driver). Scoped to the transaction: no server setting changes.
        SQLite needs nothing."""
        if not self.is_sqlite:
            self.session.execute(_SET_WORK_MEM)

    def end_read(self) -> None:
        """Close the implicit read transaction (PostgreSQL), unless a write is under way.

        Read-only: changes made to objects in memory (whose save was refused) are dropped
        here rather than flushed, so that reads go on working.
        """
        if not self._depth and not self.is_sqlite and self.session.in_transaction():
            session = self.session
            if self.read_only and (session.new or session.dirty or session.deleted):
                self._rollback()
            else:
                session.commit()

    def dispose(self) -> None:
        self.session.close()
        self.engine.dispose()


def integrity_error(exc: SAIntegrityError) -> IntegrityError:
    """The database's refusal of a write as a biolake error that says what to do."""
    detail = " ".join(line.strip() for line in str(exc.orig).splitlines() if line.strip())
    lowered = detail.lower()
    if "unique" in lowered or "duplicate key" in lowered:
        hint = (
            "A row with the same unique value exists already: fetch it with "
            ".get(...) instead of creating it again, or choose another value."
        )
    elif "foreign key" in lowered:
        hint = "A related row is missing or still referenced: save or keep it first."
    elif "null" in lowered:
        hint = "A required field has no value: pass it to the constructor."
    else:
        hint = "Check the values being saved."
    return IntegrityError(f"The database refused the write ({detail.rstrip('.')}). {hint}")


# --- JSON paths -------------------------------------------------------------------------------
# A lookup on a JSON column (``params__a__b=1``) compares the value at a key path. The value's
# Python type chooses the comparison: numbers compare as numbers, strings as text, booleans as
# booleans; a stored value of another JSON type never matches (and never raises a cast error).


def json_value(
    column: ColumnElement[Any], path: Sequence[str], kind: str, dialect: str
) -> ColumnElement[Any]:
    """The value at ``path`` in a JSON ``column`` as SQL of ``kind`` (number, text, bool, any)."""
    if sum(_is_index(p) for p in path) > MAX_INDEX_SEGMENTS:  # on both backends alike
        raise InvalidArgument(
            f"A JSON path has at most {MAX_INDEX_SEGMENTS} numeric segments (list indexes)."
        )
    quoted = next((p for p in path if '"' in p), None)
    if quoted is not None:  # SQLite's JSON paths cannot spell it: refused on both backends
        raise InvalidArgument(
            f"Cannot filter by the JSON key {quoted!r}: keys containing '\"' cannot be queried. "
            "Rename the key, or filter the rows in Python."
        )
    if dialect == "sqlite":
        jtype, extracted = _sqlite_json_at(column, path)
        if kind == "number":
            return case((jtype.in_(["integer", "real"]), extracted))
        if kind == "text":
            return case((jtype == "text", extracted))
        if kind == "bool":
            return case((jtype == "true", literal(True)), (jtype == "false", literal(False)))
        return case((jtype.is_not(None) & (jtype != "null"), literal(1)))
    from sqlalchemy.dialects.postgresql import ARRAY

    pg_path = literal(list(path), ARRAY(String))
    node = column.op("#>")(pg_path)
    text = column.op("#>>")(pg_path)
    jtype = func.jsonb_typeof(node)
    if kind == "number":  # NUMERIC, not a float: 2**62 and 2**62 + 1 stay apart
        return case((jtype == "number", cast(text, Numeric)))
    if kind == "text":
        return case((jtype == "string", cast(text, String)))
    if kind == "bool":
        return case((jtype == "boolean", cast(text, Boolean)))
    return case((jtype.is_not(None) & (jtype != "null"), literal(1)))


MAX_INDEX_SEGMENTS = 4  # digit segments of a JSON path (each doubles SQLite's paths tried)


def _is_index(segment: str) -> bool:
    """ASCII digits only, as PostgreSQL reads a path segment: "²" is a key, not an index."""
    return segment.isascii() and segment.isdigit()


def _sqlite_json_at(column: Any, path: Sequence[str]) -> tuple[Any, Any]:
    """SQLite's json_type and json_extract at ``path``, read as PostgreSQL's ``#>`` reads it: a
    segment of digits is an index into an array, or else a key of an object (SQLite's paths
    spell the two differently, so each reading is tried; at most one exists)."""
    options = [[f"[{p}]", f'."{p}"'] if _is_index(p) else [f'."{p}"'] for p in path]
    paths = ["$" + "".join(parts) for parts in itertools.product(*options)]
    if len(paths) == 1:
        return func.json_type(column, paths[0]), func.json_extract(column, paths[0])
    found = [func.json_type(column, p).is_not(None) for p in paths]
    jtype = case(*((f, func.json_type(column, p)) for f, p in zip(found, paths, strict=True)))
    value = case(*((f, func.json_extract(column, p)) for f, p in zip(found, paths, strict=True)))
    return jtype, value


def integer_or_null(column: Any, dialect: str) -> ColumnElement[Any]:
    """``column`` (text) as an integer where it holds only digits, else NULL."""
    from sqlalchemy import Integer

    is_number: ColumnElement[bool]
    if dialect == "sqlite":
        is_number = (column != "") & column.op("NOT GLOB", is_comparison=True)("*[^0-9]*")
    else:
        is_number = column.op("~", is_comparison=True)("^[0-9]+$")
    return case((is_number, cast(column, Integer)))


# A bound IN list costs one parameter per value: PostgreSQL's protocol allows 65,535 per
# statement and SQLite builds as few as 999 (32,766 by default), and SQLite's count() binds its
# statement twice (see features.filters.count_by_values). Up to this many values stay an ordinary
# IN list; longer lists travel as one parameter: a JSON array read by json_each on SQLite, an
# array on PostgreSQL (``= ANY``, planned like IN).
LONG_IN_LIST = 100


def in_values(column: Any, values: Sequence[Any], dialect: str) -> ColumnElement[bool]:
    """``column IN values`` for a list of any length."""
    if len(values) <= LONG_IN_LIST:
        return column.in_(list(values))
    item_type, items = _array_items(column, values)
    if dialect == "sqlite":
        each = func.json_each(bindparam(None, items, type_=_JsonArray(item_type)))
        return column.in_(select(each.table_valued("value").c.value))
    from sqlalchemy.dialects.postgresql import ARRAY

    array = cast(bindparam(None, items, type_=ARRAY(item_type)), ARRAY(item_type))
    return column == any_(array)


def _array_items(column: Any, values: Sequence[Any]) -> tuple[Any, list[Any]]:
    """The item type and items of a long IN list, such that each value matches what it would
    match in a short list. One array holds one type: numbers become the column's kind (a
    fraction never equals an int), text stays unbounded (a VARCHAR(64)[] cast would cut it)."""
    type_ = column.type
    if isinstance(type_, Boolean):
        return type_, list(values)
    if isinstance(type_, Integer):
        numbers_ = [_number(column, v) for v in values]
        return BigInteger(), [v if v is None else int(v) for v in numbers_ if _whole(v)]
    if isinstance(type_, Float | Numeric):
        return Float(), [None if v is None else float(_number(column, v)) for v in values]
    if isinstance(type_, String):  # Text too
        return Text(), [v if v is None or isinstance(v, str) else str(v) for v in values]
    return type_, list(values)


def _whole(value: Any) -> bool:
    """None, or a number equal to an int (no NaN, no infinity)."""
    if value is None or isinstance(value, numbers.Integral):
        return True
    return math.isfinite(value) and float(value).is_integer()


def _number(column: Any, value: Any) -> Any:
    if value is None or isinstance(value, numbers.Real):
        return value
    name = getattr(column, "key", "the field")
    raise InvalidArgument(f"`{name}__in` compares numbers: {value!r} is not one.")


class _JsonArray(TypeDecorator[list[Any]]):
    """A list bound as JSON text, each item first stored as ``item_type`` stores it (dates as
    ISO text, booleans as 0/1), so json_each yields what the column holds."""

    impl = String
    cache_ok = True

    def __init__(self, item_type: Any) -> None:
        super().__init__()
        self.item_type = item_type

    def process_bind_param(self, value: Any, dialect: Any) -> str:
        store = self.item_type.dialect_impl(dialect).bind_processor(dialect)
        items = [store(v) for v in value] if store else list(value)
        # NaN is not JSON, and like NULL it equals nothing
        return json.dumps([None if v != v else v for v in items])
