"""Records: types, (name, type) identity, parents/children without cycles; SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

import biolake as ln
from biolake.errors import InvalidArgument, ValidationError


@pytest.fixture
def sample_type(instance):
    return ln.Record(name="Sample", is_type=True).save()


def test_seed_records_snippets(instance) -> None:
    """The Records section of the API contract, unchanged."""
    sample_type = ln.Record(name="Sample", is_type=True).save()
    ln.Record(name="P53mutant1", type=sample_type).save()
    ln.Record(name="P53mutant2", type=sample_type).save()
    ln.Record(name="WT-control", type=sample_type).save()

    found = ln.Record.search("p53").to_dataframe()
    assert list(found["name"]) == ["P53mutant1", "P53mutant2"]
    typed = ln.Record.filter(type=sample_type).to_dataframe()
    assert sorted(typed["name"]) == ["P53mutant1", "P53mutant2", "WT-control"]
    record = ln.Record.get(name="P53mutant1")
    assert record.type_id == sample_type.id

    parent_record = ln.Record.get(name="P53mutant1")
    child_record = ln.Record(name="P53mutant1-replicate1", type=sample_type).save()
    child_record.parents.add(parent_record)
    assert list(parent_record.children.to_dataframe()["name"]) == ["P53mutant1-replicate1"]
    assert list(child_record.parents.to_dataframe()["name"]) == ["P53mutant1"]


def test_same_name_and_type_returns_the_stored_record(sample_type, caplog) -> None:
    first = ln.Record(name="S1", type=sample_type).save()
    again = ln.Record(name="S1", type=sample_type, description="other").save()
    assert again.id == first.id
    # Like artifacts: the stored record stands in, a new description is written to it, and
    # one line says so.
    assert ln.Record.get(name="S1").description == "other"
    assert "returning the existing record 'S1'; its description was updated" in caplog.text
    kept = ln.Record(name="S1", type=sample_type).save()  # no description: nothing changes
    assert kept.description == "other"
    assert ln.Record(name="Sample", is_type=True).save().id == sample_type.id
    assert ln.Record.filter(name="S1").count() == 1


def test_same_name_in_other_type_or_without_type_is_another_record(sample_type) -> None:
    cell_line = ln.Record(name="CellLine", is_type=True).save()
    a = ln.Record(name="X", type=sample_type).save()
    b = ln.Record(name="X", type=cell_line).save()
    c = ln.Record(name="X").save()
    assert len({a.id, b.id, c.id}) == 3
    assert ln.Record(name="X").save().id == c.id


def test_bulk_save_deduplicates(sample_type) -> None:
    saved = ln.save(
        [ln.Record(name="B1", type=sample_type), ln.Record(name="B1", type=sample_type)]
    )
    assert saved[0].id == saved[1].id
    assert ln.Record.filter(name="B1").count() == 1


def test_database_rejects_duplicate_name_type(instance, sample_type) -> None:
    """The unique index holds even for writers that bypass Record.save (NULL type included)."""
    from sqlalchemy import insert

    from biolake.errors import IntegrityError
    from biolake.registries.record import Record

    ln.Record(name="U1").save()
    with pytest.raises(IntegrityError), instance.db.write() as session:
        row = {"uid": "dupdupdup000", "name": "U1", "is_type": False, "created_by_id": 1}
        session.execute(insert(Record.__table__).values(visibility="default", **row))


def test_type_must_be_a_type_record(sample_type) -> None:
    plain = ln.Record(name="plain").save()
    with pytest.raises(ValidationError, match="is not a type"):
        ln.Record(name="x", type=plain)
    with pytest.raises(ValidationError, match="type= takes a Record type"):
        ln.Record(name="x", type="Sample")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="Save the type"):
        ln.Record(name="x", type=ln.Record(name="Unsaved", is_type=True))
    with pytest.raises(ValidationError, match="non-empty name"):
        ln.Record(name="  ")


def test_a_used_type_stays_a_type(sample_type) -> None:
    ln.Record(name="A", type=sample_type).save()
    sample_type.is_type = False
    with pytest.raises(ValidationError, match="must keep is_type=True"):
        sample_type.save()
    unused = ln.Record(name="Unused", is_type=True).save()
    unused.is_type = False
    assert unused.save().is_type is False


def test_instances_lists_a_types_members(sample_type) -> None:
    ln.Record(name="A", type=sample_type).save()
    ln.Record(name="B", type=sample_type).save()
    ln.Record(name="C").save()
    assert sorted(r.name for r in sample_type.instances) == ["A", "B"]
    assert sample_type.instances.count() == 2
    with pytest.raises(ValidationError, match="not a type"):
        _ = ln.Record.get(name="C").instances


def test_parents_and_children_read_like_querysets(sample_type) -> None:
    p1, p2, c = (ln.Record(name=n, type=sample_type).save() for n in ["p1", "p2", "c"])
    c.parents.add(p1, p2)
    c.parents.add([p1])  # linking again is a no-op
    assert c.parents.count() == 2
    assert [r.name for r in c.parents.to_list()] == ["p1", "p2"]
    assert c.parents.filter(name="p2").one().id == p2.id
    assert p1.children.to_list()[0].id == c.id
    assert ln.Record.filter(parents=p1).one().id == c.id
    assert ln.Record.filter(children=c).count() == 2
    c.parents.remove(p1)
    assert [r.name for r in c.parents] == ["p2"]
    assert p1.children.count() == 0
    p2.children.remove(c)
    assert not c.parents.exists()


def test_cycles_are_rejected(sample_type) -> None:
    a, b, c = (ln.Record(name=n, type=sample_type).save() for n in "abc")
    b.parents.add(a)
    c.parents.add(b)
    with pytest.raises(ValidationError, match="cycle"):
        a.parents.add(c)  # a <- b <- c <- a
    with pytest.raises(ValidationError, match="cycle"):
        a.children.add(a)
    with pytest.raises(ValidationError, match="cycle"):
        c.children.add(a)
    assert a.parents.count() == 0
    assert c.children.count() == 0
    # A diamond is not a cycle.
    d = ln.Record(name="d", type=sample_type).save()
    d.parents.add(b, c)
    assert d.parents.count() == 2


def test_a_failed_add_stores_nothing(sample_type) -> None:
    a, b, c = (ln.Record(name=n, type=sample_type).save() for n in "abc")
    b.parents.add(a)
    with pytest.raises(ValidationError, match="cycle"):
        a.parents.add(c, b)  # c is fine, b closes a cycle: neither is stored
    assert a.parents.count() == 0


def test_relatives_need_saved_records(sample_type) -> None:
    unsaved = ln.Record(name="u", type=sample_type)
    with pytest.raises(InvalidArgument, match="Save"):
        _ = unsaved.parents
    saved = ln.Record(name="s", type=sample_type).save()
    with pytest.raises(InvalidArgument, match="Save"):
        saved.parents.add(unsaved)
    with pytest.raises(InvalidArgument, match="Record objects"):
        saved.parents.add("s")  # type: ignore[arg-type]


def test_permanent_delete_removes_links(sample_type) -> None:
    parent = ln.Record(name="parent", type=sample_type).save()
    child = ln.Record(name="child", type=sample_type).save()
    child.parents.add(parent)
    parent.delete(permanent=True)
    assert child.parents.count() == 0


def test_trashed_record_is_not_silently_recreated(sample_type) -> None:
    r = ln.Record(name="T1", type=sample_type).save()
    r.delete()
    assert ln.Record.filter(name="T1").count() == 0
    with pytest.raises(ValidationError, match="trash"):
        ln.Record(name="T1", type=sample_type).save()
    r.restore()
    assert ln.Record(name="T1", type=sample_type).save().id == r.id


def test_rename_and_update(sample_type) -> None:
    r = ln.Record(name="old", type=sample_type).save()
    r.name = "new"
    r.save()
    assert ln.Record.get(name="new").id == r.id
    assert ln.Record.filter(name="old").count() == 0


def test_example_runs(instance, capsys: pytest.CaptureFixture[str]) -> None:
    """examples/records_features.py, the walkthrough of docs/records_features.md."""
    import runpy
    from pathlib import Path

    example = Path(__file__).resolve().parents[2] / "examples" / "records_features.py"
    runpy.run_path(str(example), run_name="__main__")
    out = capsys.readouterr().out
    assert "P53mutant1-replicate1" in out
    assert "children  P53mutant1-replicate1" in out  # parent.describe()
    assert "feature 'read_count' (int): expected int, got 'many' (str)" in out
    assert "'sample': 'P53mutant1'" in out


def test_describe_shows_parents_and_children(sample_type) -> None:
    parent = ln.Record(name="P", type=sample_type).save()
    children = [ln.Record(name=f"c{i:02}", type=sample_type).save() for i in range(12)]
    for child in reversed(children):  # shown in name order, not in link order
        child.parents.add(parent)
    parent.parents.add(ln.Record(name="Donor").save(), ln.Record(name="Batch").save())
    lines = [line.strip("│├└─ ") for line in parent.describe(return_str=True).splitlines()]
    section = lines.index("Parents and children")
    assert lines[section + 1 : section + 3] == [
        "parents   Batch, Donor",
        "children  c00, c01, c02, c03, c04, c05, c06, c07, c08, c09, … and 2 more",
    ]
    lines = [line.strip("│├└─ ") for line in children[0].describe(return_str=True).splitlines()]
    assert lines[-3:] == ["Parents and children", "parents   P", "children  -"]
    children[1].delete()  # trashed relatives are not shown
    assert "… and 1 more" in (parent.describe(return_str=True) or "")
    assert "Parents and children" not in (sample_type.describe(return_str=True) or "")
    unsaved = ln.Record(name="new", type=sample_type)
    assert "Parents and children" not in (unsaved.describe(return_str=True) or "")


def test_renaming_onto_an_existing_name_is_refused_cleanly(instance) -> None:
    """The rename is flushed when the next write starts: biolake's IntegrityError, the old
    name kept, and the session still usable."""
    from biolake.errors import IntegrityError

    cell_line = ln.Record(name="CellLine", is_type=True).save()
    ln.Record(name="HEK293", type=cell_line).save()
    hela = ln.Record(name="HeLa", type=cell_line).save()
    hela.name = "HEK293"
    with pytest.raises(IntegrityError, match="same unique value exists already"):
        hela.save()
    assert ln.Record.get(hela.id).name == "HeLa"
    assert ln.Record.filter(type=cell_line).count() == 2
    ln.Record(name="A549", type=cell_line).save()
    assert ln.Record.filter(type=cell_line).count() == 3


def test_edits_follow_the_rules_of_new_records(instance) -> None:
    """Checked when set: a bad edit never reaches the database, even through a later write."""
    cell_line = ln.Record(name="CellLine", is_type=True).save()
    hela = ln.Record(name="HeLa", type=cell_line).save()
    plain = ln.Record(name="plain").save()
    with pytest.raises(ValidationError, match="non-empty name"):
        hela.name = " "
    with pytest.raises(ValidationError, match="'plain' is not a type"):
        hela.type = plain
    with pytest.raises(ValidationError, match="own type"):
        cell_line.type = cell_line
    ln.Record(name="A549", type=cell_line).save()  # a later write flushes nothing bad
    stored = ln.Record.get(name="HeLa")
    assert (stored.name, stored.type) == ("HeLa", cell_line)
    hela.name = "HeLa S3"
    hela.save()
    assert ln.Record.get(name="HeLa S3", type=cell_line) == hela
