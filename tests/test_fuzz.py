"""Fuzzed input: whatever a user passes, only biolake's own errors escape.

Hypothesis drives filter and exclude keyword arguments (real and made-up field names, every
lookup, values of every type, nesting through relations and JSON), keys, feature names, dtypes
and values, record names, search strings, params and command-line arguments. Each call either
works or raises a ``BiolakeError``: never a raw SQLite, psycopg or SQLAlchemy error, never a
crash, never a file outside the storage folder, and the database is still whole afterwards.

The budget is small here (``derandomize``: the same examples on every run, no example
database); ``BIOLAKE_FUZZ_EXAMPLES=5000 pytest tests/test_fuzz.py`` runs a large one.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import math
import os
import uuid
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import biolake as ln
from biolake.errors import BiolakeError, InvalidArgument, ValidationError

EXAMPLES = int(os.environ.get("BIOLAKE_FUZZ_EXAMPLES", "60"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=EXAMPLES <= 200,  # CI: reproducible; a large budget explores anew
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# Text that has broken databases and path handling before: NUL, lone surrogates, the last
# code point, quotes, SQL and FTS syntax, path tricks, look-alike and invisible characters.
NASTY = [
    "",
    " ",
    "\x00",
    "\ud800",
    "\U0010ffff",
    "'",
    '"',
    "\\",
    "%",
    "_",
    "*",
    "a\"'b",
    "'; DROP TABLE artifacts; --",
    'NEAR("a" "b")',
    "AND",
    "OR NOT",
    "..",
    "../x",
    "/etc/passwd",
    "C:\\x",
    "\\\\server\\share",
    "CON",
    "nul.txt",
    "a/./b",
    "a//b",
    "é",
    "e\u0301",
    "a\uff0fb",
    "a/\u200b/b",
    "\u202e",
    "²",
    "x" * 300,
    "x" * 5000,
]
TEXT = st.one_of(st.sampled_from(NASTY), st.text(max_size=40))
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(),
    TEXT,
    st.binary(max_size=8),
    st.datetimes(),
    st.datetimes(timezones=st.just(dt.UTC)),
    st.dates(),
    st.decimals(allow_nan=True),
    st.uuids(),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(TEXT, inner, max_size=3),
        st.tuples(inner, inner),
        st.sets(st.integers(), max_size=3),
    ),
    max_leaves=6,
)
LOOKUPS = [
    "exact",
    "iexact",
    "contains",
    "icontains",
    "startswith",
    "istartswith",
    "endswith",
    "iendswith",
    "gt",
    "gte",
    "lt",
    "lte",
    "in",
    "isnull",
    "range",
    "regex",
    "year",
    "",
]
FIELDS = {
    "Artifact": [
        "key",
        "uid",
        "size",
        "hash",
        "version",
        "is_latest",
        "created_at",
        "suffix",
        "description",
        "run",
        "run__transform__key",
        "transform",
        "created_by",
        "created_by__handle",
        "projects",
        "projects__name",
        "storage",
        "ulabels",
        "feature_x",
        "feature_x__a",
    ],
    "Run": [
        "params",
        "params__lr",
        "params__a__b",
        "params__0",
        "status",
        "started_at",
        "transform__key",
        "inputs",
        "initiated_by_run",
        "exit_code",
    ],
    "Record": ["name", "type", "type__name", "is_type", "parents", "children", "description"],
    "Feature": ["name", "dtype", "description"],
}
REGISTRIES = sorted(FIELDS)


def only_ours(call: Any) -> Any:
    """Run ``call``; a BiolakeError is an answer, anything else a finding."""
    try:
        return call()
    except BiolakeError:
        return None


@st.composite
def lookups(draw: Any, registry: str) -> dict[str, Any]:
    kwargs = {}
    for _ in range(draw(st.integers(1, 2))):
        field = draw(st.one_of(st.sampled_from(FIELDS[registry]), TEXT))
        lookup = draw(st.sampled_from(LOOKUPS))
        name = f"{field}__{lookup}" if lookup else field
        kwargs[name] = draw(VALUES)
    return kwargs


@pytest.fixture
def populated(instance: Any, tmp_path: Path) -> Any:
    """A few rows of every kind, so that queries have something to compare with."""
    (tmp_path / "a.csv").write_text("x\n1\n")
    artifact = ln.Artifact(tmp_path / "a.csv", key="fuzz/a.csv").save()
    ln.Feature(name="feature_x", dtype="dict").save()
    artifact.features.add_values({"feature_x": {"a": 1, "é": "b"}})
    transform = ln.Transform(key="fuzz.py").save()
    ln.Run(transform=transform, params={"lr": 0.1, "a": {"b": 1}}).save()
    cell = ln.Record(name="T cell").save()
    ln.Record(name="CD8 T cell", type=None).save().parents.add(cell)
    return instance


def _intact(instance: Any) -> None:
    assert ln.Artifact.get(key="fuzz/a.csv").load().shape == (1, 1)
    assert ln.Record.filter(name="T cell").count() == 1


@FUZZ
@given(data=st.data())
def test_filter_and_exclude_raise_only_biolake_errors(populated: Any, data: Any) -> None:
    registry = data.draw(st.sampled_from(REGISTRIES))
    kwargs = data.draw(lookups(registry))
    model = getattr(ln, registry)
    only_ours(lambda: model.filter(**kwargs).count())
    only_ours(lambda: model.exclude(**kwargs).to_list())
    only_ours(lambda: model.filter(**kwargs).order_by("-id").first())
    _intact(populated)


@FUZZ
@given(
    key=st.one_of(TEXT, st.lists(st.sampled_from([*NASTY, "a", "b.csv"]), max_size=4).map("/".join))
)
def test_keys_never_escape_the_storage(populated: Any, tmp_path: Path, key: str) -> None:
    path = tmp_path / "k.txt"
    path.write_text(uuid.uuid4().hex)  # new bytes: every save stores an object
    artifact = only_ours(lambda: ln.Artifact(path, key=key).save())
    if artifact is None:
        return
    stored = Path(populated.storage.local_path(artifact.storage_key)).resolve()
    assert stored.is_relative_to(Path(populated.root).resolve() / ".biolake" / "objects")
    assert ln.Artifact.get(key=artifact.key) == artifact
    _intact(populated)


DTYPES = st.one_of(
    st.sampled_from(
        [
            "int",
            "float",
            "str",
            "bool",
            "date",
            "datetime",
            "dict",
            "list[int]",
            "list[str]",
            "cat",
            "cat[Record]",
            "cat[Record[Nope]]",
            "list[cat[Record]]",
            "num",
            "object",
        ]
    ),
    TEXT,
    st.sampled_from([int, float, str, bool, dict, list, None, 3]),
)


@FUZZ
@given(name=TEXT, dtype=DTYPES, value=VALUES)
def test_features_raise_only_biolake_errors(
    populated: Any, name: str, dtype: Any, value: Any
) -> None:
    feature = only_ours(lambda: ln.Feature(name=name, dtype=dtype).save())
    artifact = ln.Artifact.get(key="fuzz/a.csv")
    only_ours(lambda: artifact.features.add_values({name: value}))
    only_ours(lambda: ln.Artifact.filter(**{name: value}).count())
    if feature is not None:
        only_ours(lambda: artifact.features.get_values())
    _intact(populated)


@FUZZ
@given(name=TEXT, query=TEXT, description=st.one_of(st.none(), TEXT))
def test_records_and_search_raise_only_biolake_errors(
    populated: Any, name: str, query: str, description: str | None
) -> None:
    only_ours(lambda: ln.Record(name=name, description=description).save())
    only_ours(lambda: ln.Record.search(query).to_list())
    only_ours(lambda: ln.Artifact.search(query).to_list())
    only_ours(lambda: ln.Record.get(name=name))
    _intact(populated)


@FUZZ
@given(params=st.one_of(VALUES, st.dictionaries(TEXT, VALUES, max_size=4)), probe=lookups("Run"))
def test_params_raise_only_biolake_errors(
    populated: Any, params: Any, probe: dict[str, Any]
) -> None:
    transform = ln.Transform.get(key="fuzz.py")
    run = only_ours(lambda: ln.Run(transform=transform, params=params).save())
    if run is not None:  # what was accepted comes back as it went in (a tuple as a list)
        assert ln.Run.get(run.id).params == json.loads(json.dumps(params))
    only_ours(lambda: ln.Run.filter(**probe).count())
    _intact(populated)


WORDS = ["init", "connect", "info", "--json", "--instance", "-i", "--help", "--db", "--name"]
ARGS = st.lists(
    st.one_of(st.sampled_from([*WORDS, "--storage", "--version", "--nope"]), TEXT), max_size=5
)
# Runs each argument list as the `biolake` command would, in one process per batch (a command
# may connect or create instances: never in the test's own process).
CLI_DRIVER = """
import json, sys, traceback
from biolake.cli import cli
results = []
for args in json.load(sys.stdin):
    try:
        cli.main(args=args, prog_name="biolake", standalone_mode=True)
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        code = "crash: " + traceback.format_exc()
    results.append(code)
print(json.dumps(results))
"""


@settings(FUZZ, max_examples=max(2, EXAMPLES // 20))
@given(batch=st.lists(ARGS, min_size=20, max_size=20))
def test_command_line_arguments_end_cleanly(
    populated: Any, tmp_path_factory: Any, batch: list[list[str]]
) -> None:
    import subprocess
    import sys

    folder = tmp_path_factory.mktemp("cli")
    env = {
        **os.environ,
        "BIOLAKE_HOME": str(folder / "home"),
        "BIOLAKE_INSTANCE": str(populated.root),
    }
    text = json.dumps(batch, ensure_ascii=True)  # lone surrogates travel as JSON escapes
    done = subprocess.run(
        [sys.executable, "-c", CLI_DRIVER],
        input=text,
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    codes = json.loads(done.stdout.strip().splitlines()[-1])
    # click's usage errors exit 2, biolake's errors 1 (one line, no traceback)
    for args, code in zip(batch, codes, strict=True):
        assert code in (0, 1, 2), (args, code)
    assert "Traceback" not in done.stderr, done.stderr


def test_nan_and_huge_numbers_in_filters_are_refused_with_our_errors(populated: Any) -> None:
    """NaN matches nothing (so a filter with it is a mistake), and numbers beyond 64 bits fit
    no column: each is refused by biolake, not by a driver or by an empty result."""
    for key in ("size__gt", "size__in", "params__lr", "feature_x__a"):
        for value in (math.nan, decimal.Decimal("NaN"), [1, math.nan]):
            model = ln.Run if key.startswith("params") else ln.Artifact
            with pytest.raises(InvalidArgument, match="NaN is equal to nothing"):
                model.filter(**{key: value}).count()
    with pytest.raises(InvalidArgument, match="outside the 64-bit integer range"):
        ln.Artifact.filter(size__gt=2**64).count()
    assert ln.Artifact.filter(size__lt=math.inf).count() == 1  # infinity is a bound, and fine


FOUND = [  # (registry, filter kwargs): each once escaped as a raw driver or SQLAlchemy error
    ("Artifact", {"\ud800__exact": None}),
    ("Artifact", {"key__gt": None}),
    ("Artifact", {"key__startswith": None}),
    ("Artifact", {"\ud800": 1}),
    ("Run", {"params__regex": (0, None)}),
    ("Run", {"params__a": {"b": 1}}),
    ("Run", {"params__exact": decimal.Decimal("sNaN")}),
    ("Artifact", {"feature_x__a": decimal.Decimal("sNaN")}),
    ("Artifact", {"key__gt": False}),
    ("Artifact", {"key__in": (dt.datetime(2000, 1, 1), False)}),
    ("Artifact", {"key__in": (b"", False)}),
    ("Artifact", {"key__in": (0.0, uuid.UUID(int=1))}),
    ("Artifact", {"is_latest__in": (False, -1)}),
    ("Run", {"started_at__in": (None, "")}),
    ("Run", {"started_at__contains": ""}),
    ("Record", {"name": "\ud800"}),
]


@pytest.mark.parametrize(("registry", "kwargs"), FOUND)
def test_what_fuzzing_found_raises_invalid_argument(
    populated: Any, registry: str, kwargs: dict
) -> None:
    with pytest.raises(InvalidArgument):
        getattr(ln, registry).filter(**kwargs).count()


def test_non_json_params_raise_validation_error(populated: Any) -> None:
    transform = ln.Transform.get(key="fuzz.py")
    for params in (b"", {"a": b""}, {"a": {1: 2}}, {"a": {"b": math.inf}}):
        with pytest.raises(ValidationError):
            ln.Run(transform=transform, params=params).save()
    assert ln.Run.filter(transform=transform).count() == 1  # only the populated one
