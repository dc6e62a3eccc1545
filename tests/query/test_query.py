"""The query layer as tables: (lookups -> expected rows), each run on SQLite and PostgreSQL.

One small lab is built per test with the real registries:

    users       alice "Alice Smith", bob "Bob Jones", carol (no name), testuser (current, no name)
    projects    P1, P2
    transforms  preprocess.py (alice), train.ipynb (bob), pkg.module.fn, unused.py (no runs)
    runs        r1: preprocess.py  lr=0.01  epochs=10   downsample  model={mlp, 2 layers}  P1
                r2: train.ipynb    lr=0.1   epochs=100  !downsample model={cnn}            P1, P2
                r3: train.ipynb    lr="fast" epochs=5   initiated by r2
                r4: pkg.module.fn  no params
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from conftest import BACKENDS, postgres_url_for_test

import biolake as ln
from biolake.errors import InvalidArgument

PAST = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
FUTURE = dt.datetime(2100, 1, 1, tzinfo=dt.UTC)


class Lab:
    """Handles on the rows of the example lab, by label."""

    def __init__(self) -> None:
        self.users = {
            "alice": ln.User(handle="alice", name="Alice Smith"),
            "bob": ln.User(handle="bob", name="Bob Jones"),
            "carol": ln.User(handle="carol"),
        }
        ln.save(list(self.users.values()))
        self.users["testuser"] = ln.User.get(handle=ln.settings.user.handle)
        self.p1 = ln.Project(name="P1").save()
        self.p2 = ln.Project(name="P2", description="second").save()
        self.transforms = {
            "preprocess.py": self._transform(
                "preprocess.py", "script", "Normalize counts", "alice"
            ),
            "train.ipynb": self._transform("train.ipynb", "notebook", "Train the model", "bob"),
            "pkg.module.fn": self._transform("pkg.module.fn", "function", None, "testuser"),
            "unused.py": self._transform("unused.py", "script", None, "testuser"),
        }
        t = self.transforms
        self.runs = {
            "r1": self._run(
                t["preprocess.py"],
                {
                    "lr": 0.01,
                    "epochs": 10,
                    "downsample": True,
                    "model": {"name": "mlp", "layers": 2},
                    "tag": "alpha",
                },
                [self.p1],
            ),
            "r2": self._run(
                t["train.ipynb"],
                {"lr": 0.1, "epochs": 100, "downsample": False, "model": {"name": "cnn"}},
                [self.p1, self.p2],
            ),
            "r3": self._run(t["train.ipynb"], {"lr": "fast", "epochs": 5}, []),
            "r4": self._run(t["pkg.module.fn"], None, []),
        }
        self.runs["r3"].initiated_by_run = self.runs["r2"]
        self.runs["r3"].save()

    def _transform(self, key: str, kind: str, description: str | None, by: str) -> Any:
        transform = ln.Transform(key=key, kind=kind, description=description)
        transform.created_by_id = self.users[by].id
        return transform.save()

    def _run(self, transform: Any, params: Any, projects: list[Any]) -> Any:
        run = ln.Run(transform=transform, params=params)
        run.projects.extend(projects)
        return run.save()

    def label(self, obj: Any) -> str:
        for table in (self.users, self.transforms, self.runs):
            for name, row in table.items():
                if type(row) is type(obj) and row.id == obj.id:
                    return name
        raise AssertionError(f"unknown row {obj!r}")

    def labels(self, queryset: Any) -> set[str]:
        return {self.label(row) for row in queryset}


@pytest.fixture(scope="module", params=BACKENDS)
def lab_instance(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    postgres_database: str | None,
) -> tuple[Path, Lab]:
    """The lab, built once per backend: the table tests only read it."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BIOLAKE_HOME", str(tmp_path_factory.mktemp("home")))
        mp.setenv("BIOLAKE_USER", "testuser")
        mp.delenv("BIOLAKE_INSTANCE", raising=False)
        db = None
        if request.param == "postgres":
            assert postgres_database is not None
            db = postgres_url_for_test(postgres_database)
        root = tmp_path_factory.mktemp("lab") / "data"
        ln.setup.init(storage=root, db=db, name=f"lab-{request.param}")
        lab = Lab()
        ln.setup.close()
    return root, lab


@pytest.fixture
def lab(lab_instance: tuple[Path, Lab]) -> Lab:
    root, lab = lab_instance
    ln.setup.connect(root)
    return lab


def case_id(value: Any) -> str:
    """Test ids that are the same in every process (a set's repr order is not)."""
    if isinstance(value, set):
        return repr(sorted(value))
    if isinstance(value, type):
        return value.__name__
    return repr(value)


ALL_USERS = {"alice", "bob", "carol", "testuser"}
ALL_TRANSFORMS = {"preprocess.py", "train.ipynb", "pkg.module.fn", "unused.py"}
ALL_RUNS = {"r1", "r2", "r3", "r4"}

# --- field lookups ----------------------------------------------------------------------------

USER_LOOKUPS: list[tuple[dict[str, Any], set[str]]] = [
    ({}, ALL_USERS),
    ({"handle": "alice"}, {"alice"}),
    ({"handle__exact": "alice"}, {"alice"}),
    ({"handle": "ALICE"}, set()),
    ({"handle__iexact": "ALICE"}, {"alice"}),
    ({"name__contains": "Smith"}, {"alice"}),
    ({"name__contains": "smith"}, set()),
    ({"name__icontains": "SMITH"}, {"alice"}),
    ({"name__contains": "%"}, set()),  # wildcards are literal characters
    ({"name__contains": "_"}, set()),
    ({"name__startswith": "Bob"}, {"bob"}),
    ({"name__startswith": "bob"}, set()),
    ({"name__istartswith": "bob"}, {"bob"}),
    ({"name__endswith": "Jones"}, {"bob"}),
    ({"name__iendswith": "JONES"}, {"bob"}),
    ({"handle__gt": "bob"}, {"carol", "testuser"}),
    ({"handle__gte": "bob"}, {"bob", "carol", "testuser"}),
    ({"handle__lt": "bob"}, {"alice"}),
    ({"handle__lte": "bob"}, {"alice", "bob"}),
    ({"handle__in": ["alice", "carol", "nobody"]}, {"alice", "carol"}),
    ({"handle__in": []}, set()),
    ({"handle__in": ("bob",)}, {"bob"}),
    ({"name__isnull": True}, {"carol", "testuser"}),
    ({"name__isnull": False}, {"alice", "bob"}),
    ({"name": None}, {"carol", "testuser"}),
    ({"handle__range": ("b", "c")}, {"bob"}),
    ({"handle__range": ("alice", "bob")}, {"alice", "bob"}),
    ({"handle__startswith": "a", "name__contains": "Smith"}, {"alice"}),
    ({"handle__startswith": "a", "name__contains": "Jones"}, set()),
    ({"created_at__gt": PAST}, ALL_USERS),
    ({"created_at__lt": PAST}, set()),
    ({"created_at__range": (PAST, FUTURE)}, ALL_USERS),
    ({"created_at__lte": "2000-01-01T00:00:00+00:00"}, set()),
    ({"id__in": []}, set()),
]


@pytest.mark.parametrize(("lookups", "expected"), USER_LOOKUPS, ids=case_id)
def test_user_lookups(lab: Lab, lookups: dict[str, Any], expected: set[str]) -> None:
    assert lab.labels(ln.User.filter(**lookups)) == expected


TRANSFORM_LOOKUPS: list[tuple[dict[str, Any], set[str]]] = [
    ({"key": "train.ipynb"}, {"train.ipynb"}),
    ({"name": "train.ipynb"}, {"train.ipynb"}),  # alias of key
    ({"name__endswith": ".py"}, {"preprocess.py", "unused.py"}),
    ({"kind__in": ["notebook", "function"]}, {"train.ipynb", "pkg.module.fn"}),
    ({"description__icontains": "MODEL"}, {"train.ipynb"}),
    ({"description__isnull": True}, {"pkg.module.fn", "unused.py"}),
    ({"key__contains": "."}, ALL_TRANSFORMS),
    ({"key__istartswith": "PKG."}, {"pkg.module.fn"}),
]


@pytest.mark.parametrize(("lookups", "expected"), TRANSFORM_LOOKUPS, ids=case_id)
def test_transform_lookups(lab: Lab, lookups: dict[str, Any], expected: set[str]) -> None:
    assert lab.labels(ln.Transform.filter(**lookups)) == expected


# --- JSON key paths ---------------------------------------------------------------------------

PARAM_LOOKUPS: list[tuple[dict[str, Any], set[str]]] = [
    ({"params__lr": 0.01}, {"r1"}),
    ({"params__lr": 0.1}, {"r2"}),
    ({"params__lr__gt": 0.05}, {"r2"}),
    ({"params__lr__lt": 1}, {"r1", "r2"}),  # r3's lr is a string: no match, no error
    ({"params__lr__gte": 0.01, "params__lr__lte": 0.01}, {"r1"}),
    ({"params__lr": "fast"}, {"r3"}),
    ({"params__lr__startswith": "fa"}, {"r3"}),
    ({"params__lr__icontains": "AS"}, {"r3"}),
    ({"params__epochs": 10}, {"r1"}),
    ({"params__epochs": 10.0}, {"r1"}),
    ({"params__epochs": "10"}, set()),  # a string never equals a JSON number
    ({"params__epochs__gte": 10}, {"r1", "r2"}),
    ({"params__epochs__range": (5, 10)}, {"r1", "r3"}),
    ({"params__epochs__in": [5, 100]}, {"r2", "r3"}),
    ({"params__downsample": True}, {"r1"}),
    ({"params__downsample": False}, {"r2"}),
    ({"params__downsample": 1}, set()),  # a bool is not a number
    ({"params__lr": True}, set()),
    ({"params__model__name": "mlp"}, {"r1"}),
    ({"params__model__name__startswith": "c"}, {"r2"}),
    ({"params__model__name__in": ["mlp", "cnn"]}, {"r1", "r2"}),
    ({"params__model__layers": 2}, {"r1"}),
    ({"params__model__layers__gt": 1}, {"r1"}),
    ({"params__model__isnull": True}, {"r3", "r4"}),
    ({"params__model__isnull": False}, {"r1", "r2"}),
    ({"params__tag__isnull": False}, {"r1"}),
    ({"params__isnull": True}, {"r4"}),
    ({"params__isnull": False}, {"r1", "r2", "r3"}),
    ({"params__missing": 1}, set()),
    ({"params__model__name__missing": "x"}, set()),  # a path through a string
    ({"params__lr": 0.01, "transform__key": "preprocess.py"}, {"r1"}),
]


@pytest.mark.parametrize(("lookups", "expected"), PARAM_LOOKUPS, ids=case_id)
def test_json_lookups(lab: Lab, lookups: dict[str, Any], expected: set[str]) -> None:
    assert lab.labels(ln.Run.filter(**lookups)) == expected


# --- relations, both directions ---------------------------------------------------------------

RUN_RELATIONS: list[tuple[dict[str, Any], set[str]]] = [
    ({"transform__key": "preprocess.py"}, {"r1"}),
    ({"transform__name": "train.ipynb"}, {"r2", "r3"}),
    ({"transform__key__endswith": ".ipynb"}, {"r2", "r3"}),
    ({"transform__kind__in": ["script", "function"]}, {"r1", "r4"}),
    ({"transform__created_by__handle": "bob"}, {"r2", "r3"}),
    ({"transform__created_by__name__icontains": "smith"}, {"r1"}),
    ({"created_by__handle": "testuser"}, ALL_RUNS),
    ({"created_by__handle": "alice"}, set()),
    ({"projects__name": "P2"}, {"r2"}),
    ({"project__name": "P1"}, {"r1", "r2"}),
    ({"project__name__in": ["P1", "P2"]}, {"r1", "r2"}),
    ({"projects__isnull": True}, {"r3", "r4"}),
    ({"projects__isnull": False}, {"r1", "r2"}),
    ({"initiated_by_run__isnull": False}, {"r3"}),
    ({"initiated_by_run__transform__key": "train.ipynb"}, {"r3"}),
    ({"initiated_by_run__params__lr": 0.1}, {"r3"}),
    ({"initiated_by_run": None}, {"r1", "r2", "r4"}),
]


@pytest.mark.parametrize(("lookups", "expected"), RUN_RELATIONS, ids=case_id)
def test_run_relations(lab: Lab, lookups: dict[str, Any], expected: set[str]) -> None:
    assert lab.labels(ln.Run.filter(**lookups)) == expected


TRANSFORM_RELATIONS: list[tuple[dict[str, Any], set[str]]] = [
    ({"runs__params__lr": 0.01}, {"preprocess.py"}),
    ({"runs__params__lr__gte": 0.01}, {"preprocess.py", "train.ipynb"}),
    ({"runs__params__model__name": "cnn"}, {"train.ipynb"}),
    ({"runs__projects__name": "P2"}, {"train.ipynb"}),
    ({"runs__isnull": True}, {"unused.py"}),
    ({"runs__isnull": False}, {"preprocess.py", "train.ipynb", "pkg.module.fn"}),
    ({"created_by__handle": "alice"}, {"preprocess.py"}),
    ({"created_by__handle__in": ["alice", "bob"]}, {"preprocess.py", "train.ipynb"}),
    ({"created_by__name__isnull": True}, {"pkg.module.fn", "unused.py"}),
]


@pytest.mark.parametrize(("lookups", "expected"), TRANSFORM_RELATIONS, ids=case_id)
def test_transform_relations(lab: Lab, lookups: dict[str, Any], expected: set[str]) -> None:
    assert lab.labels(ln.Transform.filter(**lookups)) == expected


def test_relations_by_object(lab: Lab) -> None:
    t = lab.transforms
    assert lab.labels(ln.Run.filter(transform=t["train.ipynb"])) == {"r2", "r3"}
    assert lab.labels(ln.Run.filter(transform__in=[t["preprocess.py"], t["pkg.module.fn"]])) == {
        "r1",
        "r4",
    }
    assert lab.labels(ln.Run.filter(project=lab.p1)) == {"r1", "r2"}  # alias of projects
    assert lab.labels(ln.Run.filter(projects=lab.p2)) == {"r2"}
    assert lab.labels(ln.Run.filter(projects__in=[lab.p2])) == {"r2"}
    assert lab.labels(ln.Run.filter(initiated_by_run=lab.runs["r2"])) == {"r3"}
    assert lab.labels(ln.Transform.filter(runs=lab.runs["r4"])) == {"pkg.module.fn"}
    assert lab.labels(ln.Transform.filter(created_by=lab.users["bob"])) == {"train.ipynb"}
    assert lab.labels(ln.Run.filter(transform_id=t["preprocess.py"].id)) == {"r1"}


def test_in_with_a_queryset(lab: Lab) -> None:
    notebooks = ln.Transform.filter(kind="notebook")
    assert lab.labels(ln.Run.filter(transform__in=notebooks)) == {"r2", "r3"}
    named = ln.User.filter(name__isnull=False)
    assert lab.labels(ln.Transform.filter(created_by__in=named)) == {"preprocess.py", "train.ipynb"}
    assert lab.labels(ln.User.filter(id__in=named)) == {"alice", "bob"}
    # a sliced QuerySet is a subquery with its limit
    first_two = ln.User.filter().order_by("handle")[:2]
    assert lab.labels(ln.User.filter(id__in=first_two)) == {"alice", "bob"}
    assert lab.labels(ln.User.exclude(id__in=named)) == {"carol", "testuser"}


def test_in_with_a_queryset_on_a_text_field_is_refused(lab: Lab) -> None:
    with pytest.raises(InvalidArgument, match="id__in"):
        ln.User.filter(handle__in=ln.User.filter(name="Bob Jones"))


# --- exclude: negation keeps rows whose compared value is NULL --------------------------------

EXCLUDES: list[tuple[type[Any], dict[str, Any], set[str]]] = [
    (ln.User, {"name": "Bob Jones"}, {"alice", "carol", "testuser"}),
    (ln.User, {"name__icontains": "o"}, {"alice", "carol", "testuser"}),
    (ln.User, {"name__isnull": True}, {"alice", "bob"}),
    (ln.User, {"handle": "alice", "name": "nobody"}, ALL_USERS),  # all lookups must match
    (ln.User, {"handle": "alice", "name": "Alice Smith"}, {"bob", "carol", "testuser"}),
    (ln.Transform, {"description__icontains": "model"}, ALL_TRANSFORMS - {"train.ipynb"}),
    (ln.Transform, {"runs__params__lr": 0.01}, ALL_TRANSFORMS - {"preprocess.py"}),
    (ln.Run, {"params__lr": 0.01}, {"r2", "r3", "r4"}),
    (ln.Run, {"params__lr__lt": 1}, {"r3", "r4"}),
    (ln.Run, {"params__downsample": True}, {"r2", "r3", "r4"}),
    (ln.Run, {"project__name": "P1"}, {"r3", "r4"}),
    (ln.Run, {"transform__key": "train.ipynb"}, {"r1", "r4"}),
    (ln.Run, {"initiated_by_run__isnull": True}, {"r3"}),
]


@pytest.mark.parametrize(("model", "lookups", "expected"), EXCLUDES, ids=case_id)
def test_exclude(lab: Lab, model: type[Any], lookups: dict[str, Any], expected: set[str]) -> None:
    assert lab.labels(model.exclude(**lookups)) == expected
    assert lab.labels(model.filter().exclude(**lookups)) == expected


def test_filter_and_exclude_chain(lab: Lab) -> None:
    qs = ln.Run.filter(params__lr__isnull=False).exclude(params__lr="fast").exclude(project=lab.p2)
    assert lab.labels(qs) == {"r1"}


# --- unknown names ----------------------------------------------------------------------------

BAD_LOOKUPS: list[tuple[type[Any], dict[str, Any], str]] = [
    (ln.Transform, {"kee": "x"}, "Did you mean 'key'?"),
    (ln.User, {"hndle": "x"}, "Did you mean 'handle'?"),
    (ln.Transform, {"key__startwith": "x"}, "Did you mean 'startswith'"),
    (ln.User, {"handle__icontain": "x"}, "Did you mean 'icontains'"),
    (ln.User, {"handle__exact__in": ["x"]}, "Unknown lookup"),
    (ln.Run, {"transform__kye": "x"}, "Did you mean 'key'?"),
    (ln.Run, {"projets": "x"}, "Did you mean 'projects'?"),
    (ln.Transform, {"runs__parms__lr": 1}, "Did you mean 'params'?"),
    (ln.User, {"handle__in": "alice"}, "list or a QuerySet"),
    (ln.User, {"handle__range": 3}, "pair"),
    (ln.User, {"handle__contains": 3}, "string"),
    (ln.Run, {"params": 1}, "params__learning_rate"),
    (ln.Run, {"params__lr": {"a": 1}}, "number, string or bool"),
    (ln.User, {"visibility": "bin"}, "visibility is 'default', 'trash' or 'hidden', not 'bin'"),
    (ln.Artifact, {"visibility__in": ["trash", None]}, "'trash' or 'hidden', not None"),
    (ln.Run, {"id__lt": 2**63}, "outside the 64-bit integer range"),
    (ln.User, {"name__isnull": "yes"}, "name__isnull takes True or False, not 'yes'"),
    (ln.Run, {"params__lr__isnull": 1}, "takes True or False"),
]


@pytest.mark.parametrize(("model", "lookups", "message"), BAD_LOOKUPS, ids=case_id)
def test_bad_lookups_raise(
    lab: Lab, model: type[Any], lookups: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidArgument) as info:
        model.filter(**lookups).to_list()
    assert message in str(info.value)
    assert isinstance(info.value, ValueError)


def test_unknown_field_message_lists_fields(lab: Lab) -> None:
    with pytest.raises(InvalidArgument, match=r"Fields: .*handle"):
        ln.User.filter(nmae="x")
    with pytest.raises(InvalidArgument, match="Did you mean 'name'"):
        ln.User.filter().order_by("-nme")


# --- reading a QuerySet -----------------------------------------------------------------------


def handles(rows: Any) -> list[str]:
    return [row.handle for row in rows]


def test_order_first_last(lab: Lab) -> None:
    by_handle = ln.User.filter().order_by("handle")
    assert handles(by_handle) == ["alice", "bob", "carol", "testuser"]
    assert handles(ln.User.filter().order_by("-handle")) == ["testuser", "carol", "bob", "alice"]
    assert by_handle.first().handle == "alice"
    assert by_handle.last().handle == "testuser"
    assert ln.User.filter().order_by("-handle").last().handle == "alice"
    assert ln.User.filter(handle="nobody").first() is None
    assert ln.User.filter(handle="nobody").last() is None
    # unordered: by id, i.e. creation order
    assert ln.User.filter(handle__in=["carol", "alice"]).first().handle == "alice"
    # several fields: name NULLs sort together, then by handle
    ordered = ln.User.filter(name__isnull=True).order_by("name", "-handle")
    assert handles(ordered) == ["testuser", "carol"]


def test_count_exists_len_bool(lab: Lab) -> None:
    assert ln.User.filter().count() == 4
    assert len(ln.User.filter(name__isnull=True)) == 2
    assert ln.User.filter(handle="bob").exists()
    assert not ln.User.filter(handle="nobody").exists()
    assert bool(ln.User.filter(handle="bob"))
    assert not ln.User.filter(handle="nobody")
    assert ln.Run.filter(project__name__in=["P1", "P2"]).count() == 2  # r2 counted once


def test_distinct(lab: Lab) -> None:
    qs = ln.Transform.filter(runs__params__isnull=False).distinct()
    assert sorted(t.key for t in qs) == ["preprocess.py", "train.ipynb"]
    assert qs.count() == 2


def test_slicing_and_indexing(lab: Lab) -> None:
    qs = ln.User.filter().order_by("handle")
    assert handles(qs[1:3]) == ["bob", "carol"]
    assert handles(qs[2:]) == ["carol", "testuser"]
    assert handles(qs[:2][1:]) == ["bob"]
    assert handles(qs[1:3][1:5]) == ["carol"]
    assert qs[1:3].count() == 2
    assert qs[0].handle == "alice"
    assert qs[3].handle == "testuser"
    with pytest.raises(IndexError):
        qs[4]
    with pytest.raises(InvalidArgument, match="last"):
        qs[-1]
    with pytest.raises(InvalidArgument, match="slice"):
        qs[::2]
    with pytest.raises(InvalidArgument, match="filter first"):
        qs[:2].filter(handle="bob")


def test_iteration_and_to_list(lab: Lab) -> None:
    qs = ln.User.filter(handle__startswith="a")
    assert [u.handle for u in qs] == ["alice"]
    rows = qs.to_list()
    assert isinstance(rows, list)
    assert isinstance(rows[0], ln.User)


def test_one_and_one_or_none(lab: Lab) -> None:
    assert ln.User.filter(handle="bob").one().name == "Bob Jones"
    assert ln.User.filter(handle="bob").one_or_none().handle == "bob"
    assert ln.User.filter(handle="nobody").one_or_none() is None
    with pytest.raises(ln.User.DoesNotExist, match="handle='nobody'"):
        ln.User.filter(handle="nobody").one()
    with pytest.raises(ln.User.MultipleResultsFound, match="name=None"):
        ln.User.filter(name=None).one()
    with pytest.raises(ln.errors.MultipleResultsFound):
        ln.User.filter(name=None).one_or_none()


def test_get(lab: Lab) -> None:
    alice = lab.users["alice"]
    assert ln.User.get(alice.uid).handle == "alice"
    assert ln.User.get(alice.uid[:5]).handle == "alice"  # a uid prefix
    assert ln.User.get(handle="alice").uid == alice.uid
    assert ln.User.get(alice.uid, handle="alice").id == alice.id
    assert ln.Transform.get(name="train.ipynb").key == "train.ipynb"
    assert ln.Run.filter(transform__key="train.ipynb").get(params__lr="fast").id == (
        lab.runs["r3"].id
    )
    with pytest.raises(ln.User.DoesNotExist, match="handle='zed'"):
        ln.User.get(handle="zed")
    with pytest.raises(ln.errors.ObjectDoesNotExist, match="uid='nope'"):
        ln.User.get("nope")
    with pytest.raises(ln.User.MultipleResultsFound, match=r"name__isnull=True.*narrow"):
        ln.User.get(name__isnull=True)
    with pytest.raises(InvalidArgument, match="needs a uid or lookups"):
        ln.User.get()


def test_get_by_prefix_shared_by_two_uids(instance: Any) -> None:
    a = ln.User(handle="a")
    a.uid = "abcd1234"
    b = ln.User(handle="b")
    b.uid = "abcd5678"
    ln.save([a, b])
    with pytest.raises(ln.User.MultipleResultsFound, match="uid='abcd'"):
        ln.User.get("abcd")
    assert ln.User.get("abcd5").handle == "b"


def test_to_dataframe_returns_every_row(instance: Any) -> None:
    ln.save([ln.User(handle=f"user{i:03d}", name=f"User {i}") for i in range(150)])
    df = ln.User.filter(handle__startswith="user").to_dataframe()
    assert len(df) == 150
    assert df.index.name == "id"
    assert {"uid", "handle", "name", "created_at"} <= set(df.columns)
    assert sorted(df["handle"]) == [f"user{i:03d}" for i in range(150)]
    assert str(df["created_at"].dt.tz) == "UTC"
    empty = ln.User.filter(handle="nobody").to_dataframe()
    assert len(empty) == 0
    assert "handle" in empty.columns


def test_to_dataframe_follows_order_and_slices(lab: Lab) -> None:
    df = ln.User.filter().order_by("-handle")[:2].to_dataframe()
    assert list(df["handle"]) == ["testuser", "carol"]


def test_queryset_delete(instance: Any) -> None:
    ln.save([ln.User(handle=h) for h in ["x1", "x2", "y1"]])
    assert ln.User.filter(handle__startswith="x").delete() == 2
    assert handles(ln.User.filter(handle__in=["x1", "x2", "y1"])) == ["y1"]
    trashed = ln.User.filter(visibility="trash")
    assert sorted(handles(trashed)) == ["x1", "x2"]
    assert trashed.delete(permanent=True) == 2
    assert ln.User.filter(visibility="trash").count() == 0
    assert ln.User.filter(handle__in=["x1", "x2"], visibility__in=["default", "trash"]).count() == 0


def test_queryset_repr(lab: Lab) -> None:
    text = repr(ln.User.filter(handle="alice"))
    assert text.startswith("<QuerySet [")
    assert "handle='alice'" in text
    assert repr(ln.User.filter(handle="nobody")) == "<QuerySet []>"


def test_queryset_binds_the_instance_it_was_made_in(lab: Lab, tmp_path: Path) -> None:
    qs = ln.User.filter(handle="alice")
    assert qs.count() == 1
    ln.setup.init(storage=tmp_path / "other")
    assert qs.count() == 1  # still reads the lab
    assert ln.User.filter(handle="alice").count() == 0


def test_wrong_value_types_raise_instead_of_matching_nothing(instance) -> None:
    transform = ln.Transform(key="t.py").save()
    ln.Run(transform=transform).save()
    with pytest.raises(ln.errors.InvalidArgument, match=r"created_by__handle='root'"):
        ln.Run.filter(created_by="root").count()
    with pytest.raises(ln.errors.InvalidArgument, match=r"projects__name='Screen'"):
        ln.Run.filter(projects="Screen").count()
    with pytest.raises(ln.errors.InvalidArgument, match="holds numbers"):
        ln.Run.filter(id__gt="big").count()
    assert ln.Run.filter(transform=transform.id).count() == 1  # an id is fine
    assert ln.Run.filter(created_by__handle="testuser").count() == 1


def test_to_dataframe_columns_hold_what_the_objects_hold(instance: Any, tmp_path: Any) -> None:
    """Rows are read raw and converted per column: the values equal the ORM's, as pandas types."""
    transform = ln.Transform(key="types.py").save()
    run = ln.Run(transform=transform, params={"lr": 0.1, "layers": [2, 3]}).save()
    idle = ln.Run(transform=transform).save()
    (tmp_path / "a.txt").write_text("a")
    artifact = ln.Artifact(tmp_path / "a.txt", key="a.txt", run=run).save()
    runs = ln.Run.filter().to_dataframe()
    assert str(runs["created_at"].dtype) == "datetime64[ns, UTC]"
    assert runs.loc[run.id, "created_at"] == run.created_at
    assert runs.loc[run.id, "params"] == {"lr": 0.1, "layers": [2, 3]}
    assert runs.loc[idle.id, "params"] is None
    artifacts = ln.Artifact.filter().to_dataframe()
    assert artifacts["is_latest"].dtype == bool and bool(artifacts.loc[artifact.id, "is_latest"])
    assert artifacts.loc[artifact.id, "run_id"] == run.id
    assert artifacts.loc[artifact.id, "created_at"] == artifact.created_at


def test_get_by_plain_fields_takes_the_prepared_path(instance: Any, tmp_path: Any) -> None:
    """get(field=value) runs a statement prepared per field set; results and errors are those
    of the general path."""
    from biolake.query.queryset import _GET_STATEMENTS

    ln.save([ln.User(handle="ann", name="Ann"), ln.User(handle="bob", name="Ann")])
    assert ln.User.get(handle="ann").name == "Ann"
    assert (ln.User, ("handle",)) in _GET_STATEMENTS
    with pytest.raises(ln.User.DoesNotExist, match="No User matches handle='nobody'"):
        ln.User.get(handle="nobody")
    with pytest.raises(ln.User.MultipleResultsFound, match="name='Ann'"):
        ln.User.get(name="Ann")
    with instance.db.engine.begin() as conn:  # another process renames Ann
        conn.exec_driver_sql("UPDATE users SET name = 'Anne' WHERE handle = 'ann'")
    assert ln.User.get(handle="ann").name == "Anne"  # what the database holds now
    (tmp_path / "a.txt").write_text("1")
    first = ln.Artifact(tmp_path / "a.txt", key="a.txt").save()
    (tmp_path / "a.txt").write_text("2")
    second = ln.Artifact(tmp_path / "a.txt", key="a.txt").save()
    assert ln.Artifact.get(key="a.txt") == second  # the latest version
    assert ln.Artifact.get(key="a.txt", version="1") == first
    second.delete()  # trashed: hidden, and the first version is latest again
    assert ln.Artifact.get(key="a.txt") == first


def test_get_that_matches_nothing_suggests_close_values(instance: Any, tmp_path: Path) -> None:
    """Registries with search: a failed get(<first search field>=...) says "Did you mean …?"
    with up to 3 values found by search, among the rows the QuerySet and other lookups allow."""
    sample = ln.Record(name="Sample", is_type=True).save()
    cell_line = ln.Record(name="CellLine", is_type=True).save()
    for name in ["P53mutant1", "WT-control"]:
        ln.Record(name=name, type=sample).save()
    ln.Record(name="P53mutant9", type=cell_line).save()
    with pytest.raises(ln.Record.DoesNotExist) as info:
        ln.Record.get(name="P53mutnt1")
    text = str(info.value)
    assert text.startswith("No Record matches name='P53mutnt1'. Did you mean 'P53mutant1'")
    assert "WT-control" not in text
    with pytest.raises(ln.Record.DoesNotExist) as info:
        ln.Record.filter(type=sample).get(name="P53mutnt9")  # the other type's is left out
    assert str(info.value) == ("No Record matches name='P53mutnt9'. Did you mean 'P53mutant1'?")
    with pytest.raises(ln.Record.DoesNotExist) as info:
        ln.Record.get(name="P53mutant1", type=cell_line)  # the same name is no suggestion
    assert str(info.value).endswith("Did you mean 'P53mutant9'?")
    ln.save([ln.Record(name=f"P53mutant{i}x", type=sample) for i in range(2, 7)])
    with pytest.raises(ln.Record.DoesNotExist) as info:
        ln.Record.get(name="P53mutant")
    assert str(info.value).count("'P53mutant") == 4  # the value and at most 3 suggestions

    path = tmp_path / "sample.fasta"
    for content in [">a\nAC\n", ">a\nACG\n"]:  # two versions: the key is suggested once
        path.write_text(content)
        ln.Artifact(path, key="genomes/sample.fasta").save()
    with pytest.raises(ln.Artifact.DoesNotExist) as info:
        ln.Artifact.get(key="Sample.fasta")
    assert str(info.value) == (
        "No Artifact matches key='Sample.fasta', is_latest=True. "
        "Did you mean 'genomes/sample.fasta'?"
    )
    ln.Feature(name="read_count", dtype=int).save()
    with pytest.raises(ln.Feature.DoesNotExist, match=r"Did you mean 'read_count'\?$"):
        ln.Feature.get(name="read_cont")
    ln.Project(name="Cancer Drug Screen 2025").save()
    with pytest.raises(ln.Project.DoesNotExist, match=r"Did you mean 'Cancer Drug Screen 2025'"):
        ln.Project.get(name="cancer")
    # Nothing close, a value search rejects, a registry without search: the plain message.
    for call, message in [
        (lambda: ln.Record.get(name="zzzz"), "No Record matches name='zzzz'."),
        (lambda: ln.Record.get(name="P" * 201), f"No Record matches name='{'P' * 201}'."),
        (lambda: ln.User.get(handle="testusr"), "No User matches handle='testusr'."),
        (lambda: ln.Record.get("P53mutant1"), "No Record matches uid='P53mutant1'."),
    ]:
        with pytest.raises(ln.errors.ObjectDoesNotExist) as info:
            call()
        assert str(info.value) == message


def test_get_searches_for_suggestions_only_when_the_error_is_shown(instance: Any) -> None:
    """A get-or-create loop catches DoesNotExist: it must not pay for a search per miss."""
    from sqlalchemy import event

    ln.Record(name="P53mutant1").save()
    statements: list[str] = []

    def record(conn: Any, cursor: Any, sql: str, *args: Any) -> None:
        statements.append(sql)

    engine = instance.db.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        with pytest.raises(ln.Record.DoesNotExist) as info:
            ln.Record.get(name="P53mutnt1")
        before = len(statements)
        assert before >= 1
        assert str(info.value).endswith("Did you mean 'P53mutant1'?")  # the search runs now
        assert len(statements) > before
        after = len(statements)
        assert str(info.value).endswith("Did you mean 'P53mutant1'?")  # once
        assert len(statements) == after
    finally:
        event.remove(engine, "before_cursor_execute", record)


def test_a_failing_suggestion_leaves_the_plain_message() -> None:
    def broken() -> str:
        raise RuntimeError("database gone")

    error = ln.errors.ObjectDoesNotExist("No Record matches name='x'.", hint=broken)
    assert str(error) == "No Record matches name='x'."
    assert error.args == ("No Record matches name='x'.",)


def test_a_get_miss_pickles_with_its_suggestion(instance: Any) -> None:
    """Ray, Dask and cloudpickle pickle the exception itself: the lazy hint (a query and its
    database) must not travel, the message with the suggestion must."""
    import pickle

    ln.Record(name="P53mutant1").save()
    with pytest.raises(ln.Record.DoesNotExist) as info:
        ln.Record.get(name="P53mutnt1")
    copy = pickle.loads(pickle.dumps(info.value))
    assert type(copy) is ln.Record.DoesNotExist
    assert str(copy) == "No Record matches name='P53mutnt1'. Did you mean 'P53mutant1'?"
    assert str(pickle.loads(pickle.dumps(copy))) == str(copy)
    assert ln.errors.ObjectDoesNotExist("a", "b").args == ("a", "b")


def test_default_filter_keeps_the_selective_index(instance: Any) -> None:
    """Every query carries visibility = 'default', which nearly every row has: no index may
    make SQLite (which has no statistics) prefer it to a selective index. An index of all
    visibilities did: 30 ms instead of 0.2 ms for a get by key at 200,000 artifacts."""
    if not instance.db.is_sqlite:
        pytest.skip("a SQLite planner rule; PostgreSQL plans from statistics")
    transform = ln.Transform(key="plan.py").save()
    queries = {
        "ix_artifacts_key_latest": ln.Artifact.filter(key="a/b.txt"),
        "ix_artifacts_hash": ln.Artifact.filter(hash="blake3:00"),
        "ix_artifacts_run_id": ln.Artifact.filter(run_id=1),
        "ix_runs_transform_id": ln.Run.filter(transform=transform),
    }
    for index, qs in queries.items():
        compiled = qs._statement().compile(
            instance.db.engine, compile_kwargs={"literal_binds": True}
        )
        with instance.db.engine.connect() as conn:
            plan = [row[3] for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}")]
        assert f"USING INDEX {index}" in plan[0], plan


def test_get_by_id(instance) -> None:
    alice = ln.User(handle="alice-by-id").save()
    assert ln.User.get(alice.id) == alice
    assert ln.User.filter(handle__startswith="alice").get(alice.id) == alice
    with pytest.raises(ln.User.DoesNotExist):
        ln.User.get(10**9)
    with pytest.raises(InvalidArgument, match=r"takes a uid \(str\) or an id \(int\)"):
        ln.User.get(1.5)


def test_long_in_lists_match_like_short_ones(instance) -> None:
    """Past LONG_IN_LIST values an IN list is one parameter; each value still matches what it
    would in a short list: no cut text, no rounded fraction, ints and floats mixed."""
    import biolake.core.db

    alice = ln.User(handle="a" * 64).save()
    transform = ln.Transform(key="long_in.py").save()
    run = ln.Run(transform=transform).save()
    filler = [f"u{i}" for i in range(200)]
    assert ln.User.filter(handle__in=["a" * 64 + "b", *filler]).count() == 0  # not cut to 64
    assert ln.User.filter(handle__in=["a" * 64, *filler]).one() == alice
    numbers = [10_000.5 + i for i in range(200)]
    assert ln.Run.filter(id__in=[run.id + 0.5, *numbers]).count() == 0  # not rounded
    assert ln.Run.filter(id__in=[float(run.id), *numbers]).one() == run
    assert ln.Run.filter(id__in=[run.id, 1.5, float("inf"), *numbers]).one() == run
    assert ln.Run.filter(id__in=(i for i in [run.id, *range(10**6, 10**6 + 200)])).one() == run
    with pytest.raises(InvalidArgument, match="`id__in` compares numbers: 'x' is not one"):
        ln.Run.filter(id__in=["x", *numbers]).count()
    ln.User(handle="123").save()
    assert ln.User.filter(handle__in=[123, *filler]).count() == 1  # compared as text
    visible = (v for v in ["default", "trash"])  # a generator is read once
    assert ln.Run.filter(visibility__in=visible).one() == run
    assert biolake.core.db.LONG_IN_LIST < 200


def test_json_paths_never_match_the_wrong_value(instance: Any) -> None:
    """Found by fuzzing: a key with '"' was spliced into SQLite's path, '²' was read as a list
    index, a non-ASCII key never matched on SQLite, and PostgreSQL compared JSON integers as
    floats (2**62 + 1 == 2**62)."""
    transform = ln.Transform(key="t.py").save()
    nested = ln.Run(transform=transform, params={"a": {"b": 1}}).save()
    squared = ln.Run(transform=transform, params={"x": {"²": 5}, "y": [7]}).save()
    big = ln.Run(transform=transform, params={"big": 2**62}).save()
    accented = ln.Run(transform=transform, params={"é": 1}).save()
    assert ln.Run.filter(params__é=1).one() == accented  # stored as UTF-8, not "\u00e9"
    with pytest.raises(InvalidArgument, match="keys containing '\"' cannot be queried"):
        ln.Run.filter(**{'params__a"."b': 1}).count()
    assert ln.Run.filter(params__a__b=1).one() == nested
    assert ln.Run.filter(**{"params__x__²": 5}).one() == squared
    assert ln.Run.filter(**{"params__y__²": 7}).count() == 0  # "²" is a key, not index 2
    assert ln.Run.filter(params__y__0=7).one() == squared
    assert ln.Run.filter(params__big=2**62).one() == big
    assert ln.Run.filter(params__big=2**62 + 1).count() == 0
    assert ln.Run.filter(params__big__gt=2**62).count() == 0
    assert ln.Run.filter(params__big__gte=2**62).one() == big
    assert ln.Run.filter(params__big__lt=2.0**63).one() == big  # floats still compare


@pytest.mark.parametrize(
    ("lookups", "message"),
    [
        ({"key": {"a": 1}}, r"Artifact\.key holds text: compare it with a str, not \{'a': 1\}"),
        ({"key__in": ["a.txt", {"x": 1}]}, r"Artifact\.key__in takes single values, not"),
        ({"size__in": [2**64]}, r"Artifact\.size: 18446744073709551616 is outside the 64-bit"),
        ({"created_at__gt": "zzz"}, r"Artifact\.created_at holds dates and times"),
        ({"is_latest": 1}, r"Artifact\.is_latest is True or False"),
    ],
)
def test_filter_values_of_the_wrong_type_say_so(instance: Any, lookups, message) -> None:
    """Found by fuzzing: each raised a raw driver or SQLAlchemy error (or matched nothing)."""
    with pytest.raises(InvalidArgument, match=message):
        ln.Artifact.filter(**lookups).count()


def test_booleans_have_no_order_in_json_filters(instance: Any) -> None:
    with pytest.raises(InvalidArgument, match="true and false have no order"):
        ln.Run.filter(params__lr__gte=False).count()
    assert ln.Artifact.filter(created_at__gt="2020-01-01").count() == 0  # ISO text is fine


def test_json_in_takes_sets_and_tuples(instance: Any) -> None:
    transform = ln.Transform(key="sets.py").save()
    run = ln.Run(transform=transform, params={"lr": 0.1}).save()
    for values in ({0.1, 0.2}, frozenset({0.1}), (0.1, 0.3), [0.1]):
        assert ln.Run.filter(params__lr__in=values).one() == run
