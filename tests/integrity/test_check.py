"""ln.check() and `biolake check`: each kind of finding from real damage, on SQLite and
PostgreSQL, with what --repair changes with and without --yes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner
from damage import flip_a_byte, object_path, raw_sql

import biolake as ln
from biolake.cli import cli
from biolake.errors import InvalidArgument


def save(tmp_path: Path, name: str, text: str, key: str | None = None) -> ln.Artifact:
    path = tmp_path / "src" / name
    path.parent.mkdir(exist_ok=True)
    path.write_text(text)
    return ln.Artifact(path, key=key if key is not None else name).save()


def kinds(report: ln.CheckReport) -> dict[str, list[str]]:
    """kind -> the ``where`` of its findings, for the kinds that have any."""
    return {k: [f.where for f in fs] for k, fs in report.by_kind().items() if fs}


def label(artifact: ln.Artifact) -> str:
    return f"artifact {artifact.uid} (key {artifact.key!r}, version {artifact.version})"


def test_a_sound_instance_has_nothing_to_report(instance, tmp_path: Path) -> None:
    save(tmp_path, "a.csv", "x\n1\n")
    save(tmp_path, "a.csv", "x\n2\n")
    folder = tmp_path / "reads"
    (folder / "lane1").mkdir(parents=True)
    (folder / "lane1" / "r1.fastq").write_text("@r1\nACGT\n+\n!!!!\n")
    ln.Artifact(folder, key="reads").save()
    trashed = save(tmp_path, "old.csv", "old\n")
    trashed.delete()  # the trash keeps its bytes: they are referenced
    report = ln.check(rehash=True)
    assert report.ok and report.findings == []
    assert report.counts == {"artifacts": 4, "objects": 4, "rehashed": 4, "resumed": 0}
    assert report.summary().startswith("No problems in ")
    assert not (instance.root / ".biolake" / "check" / "rehash.jsonl").exists()


def test_a_missing_object_is_reported_with_how_to_recover(instance, tmp_path: Path) -> None:
    artifact = save(tmp_path, "counts.csv", "gene,n\nTP53,4\n")
    object_path(instance, artifact).unlink()
    report = ln.check(repair=True, yes=True)
    assert kinds(report) == {"missing_object": [label(artifact)]}
    (finding,) = report.findings
    assert finding.repair == "none" and not finding.repaired and not report.ok
    assert finding.details == {
        "uid": artifact.uid,
        "key": "counts.csv",
        "storage_key": artifact.storage_key,
    }
    assert "ln.Artifact(path, key='counts.csv').save()" in finding.fix
    save(tmp_path, "counts.csv", "gene,n\nTP53,4\n")  # the recovery it names
    assert ln.check().ok
    assert ln.Artifact.filter(key="counts.csv").count() == 1


def test_changed_bytes_are_found_by_rehash_only(instance, tmp_path: Path) -> None:
    artifact = save(tmp_path, "a.csv", "x\n1\n")
    save(tmp_path, "b.csv", "y\n1\n")
    flip_a_byte(object_path(instance, artifact))
    assert ln.check().ok  # without rehashing, the bytes are not read
    report = ln.check(rehash=True, workers=2)
    assert kinds(report) == {"hash_mismatch": [label(artifact)]}
    (finding,) = report.findings
    assert finding.details["expected"] == artifact.hash
    assert finding.details["actual"] == ln_hash(object_path(instance, artifact))
    assert finding.repair == "none"
    assert report.counts["rehashed"] == 2


def ln_hash(path: Path) -> str:
    from biolake.storage.hashing import hash_file

    return hash_file(path)


def test_unreferenced_objects_are_deleted_only_with_yes(instance, tmp_path: Path) -> None:
    kept = save(tmp_path, "kept.csv", "kept\n")
    orphan_src = tmp_path / "orphan.csv"
    orphan_src.write_bytes(b"bytes a killed save stored but never registered")
    orphan = instance.storage.put_file(orphan_src, ".csv")
    foreign = Path(instance.root) / ".biolake" / "objects" / "00" / "notes.txt"
    foreign.write_text("copied here by hand")
    report = ln.check()
    foreign_key = ".biolake/objects/00/notes.txt"
    assert kinds(report) == {"stray_object": sorted([orphan.key, foreign_key])}
    by_where = {f.where: f for f in report.findings}
    assert by_where[orphan.key].repair == "yes"
    assert by_where[orphan.key].details == {
        "storage_key": orphan.key,
        "size": orphan.size,
        "hash": orphan.hash,
    }
    assert by_where[foreign_key].repair == "none"  # no content hash: never deleted

    without_yes = ln.check(repair=True)
    assert not any(f.repaired for f in without_yes.findings)
    assert instance.storage.exists(orphan.key) and foreign.exists()

    with_yes = ln.check(repair=True, yes=True)
    assert {f.where: f.repaired for f in with_yes.findings} == {
        orphan.key: True,
        foreign_key: False,
    }
    assert not instance.storage.exists(orphan.key) and foreign.exists()
    assert instance.storage.exists(kept.storage_key)
    foreign.unlink()
    assert ln.check().ok


def test_yes_without_repair_is_refused(instance) -> None:
    with pytest.raises(InvalidArgument, match="pass repair=True too"):
        ln.check(yes=True)
    with pytest.raises(InvalidArgument, match="workers=0"):
        ln.check(rehash=True, workers=0)


def test_old_staging_files_are_temp_files(instance, tmp_path: Path) -> None:
    """A DataFrame save writes its Parquet file to .biolake/staging first; one left there for
    more than a day belongs to a process that died."""
    from biolake.storage.temp_owners import STALE_AFTER

    staging = Path(instance.root) / ".biolake" / "staging"
    old, young = staging / "tmpold", staging / "tmpyoung"
    for folder in (old, young):
        folder.mkdir(parents=True)
        (folder / "object.parquet").write_bytes(b"PAR1")
    long_ago = os.stat(old).st_mtime - STALE_AFTER - 60
    os.utime(old, (long_ago, long_ago))
    report = ln.check(repair=True)
    assert kinds(report) == {"temp_file": [".biolake/staging/tmpold"]}
    assert report.ok and report.findings[0].repaired
    assert sorted(os.listdir(staging)) == ["tmpyoung"]


# --- broken links -----------------------------------------------------------------------------


def _linked_instance(tmp_path: Path) -> dict[str, int | str]:
    """An artifact in a project, with a feature value and read by a run."""
    artifact = save(tmp_path, "a.csv", "x\n1\n")
    project = ln.Project(name="Screen").save()
    ln.Feature(name="read_count", dtype=int).save()
    artifact.features.add_values({"read_count": 5})
    transform = ln.Transform(key="pipeline.py").save()
    run = ln.Run(transform=transform).save()
    return {
        "artifact": artifact.id,
        "project": project.id,
        "feature": ln.Feature.get(name="read_count").id,
        "transform": transform.id,
        "run": run.id,
        "run_uid": run.uid,
    }


def test_broken_links_and_what_repair_does_with_and_without_yes(instance, tmp_path) -> None:
    ids = _linked_instance(tmp_path)
    a, run = ids["artifact"], ids["run"]
    raw_sql(
        instance,
        f"INSERT INTO artifact_projects (artifact_id, project_id) VALUES ({a}, {ids['project']})",
        f"INSERT INTO run_inputs (run_id, artifact_id) VALUES ({run}, {a})",
        f"DELETE FROM projects WHERE id = {ids['project']}",  # its link stays behind
        f"INSERT INTO run_inputs (run_id, artifact_id) VALUES ({run}, 999999)",
        f"DELETE FROM features WHERE id = {ids['feature']}",  # its value stays behind
        f"UPDATE artifacts SET run_id = 888888 WHERE id = {a}",
        f"UPDATE runs SET transform_id = 777777 WHERE id = {run}",
        'UPDATE runs SET result = \'{"value": [{"artifact": "goneGoneGoneGone0000"}, 1]}\' '
        f"WHERE id = {run}",
    )
    report = ln.check()
    found = {f.where: (f.repair, f.details.get("missing_ids")) for f in report.findings}
    assert kinds(report) == {"broken_link": sorted(found)}
    assert found == {
        "artifact_projects.project_id": ("safe", [ids["project"]]),
        "run_inputs.artifact_id": ("safe", [999999]),
        "artifact_feature_values.feature_id": ("yes", [ids["feature"]]),
        "artifacts.run_id": ("safe", [888888]),
        "runs.transform_id": ("none", [777777]),
        f"run {ids['run_uid']} (runs.result)": ("safe", None),
    }
    assert "1 row refer to projects that do not exist" in report.describe(return_str=True)

    repaired = ln.check(repair=True)
    assert sorted(f.where for f in repaired.remaining) == [
        "artifact_feature_values.feature_id",
        "runs.transform_id",
    ]
    assert _count(instance, "SELECT count(*) FROM artifact_projects") == 0
    assert _count(instance, "SELECT count(*) FROM run_inputs") == 1  # the sound one stays
    assert _count(instance, f"SELECT count(*) FROM artifacts WHERE id = {a} AND run_id IS NULL")
    assert _count(instance, "SELECT count(*) FROM runs WHERE result IS NULL") == 1
    assert _count(instance, "SELECT count(*) FROM artifact_feature_values") == 1

    with_yes = ln.check(repair=True, yes=True)
    assert [f.where for f in with_yes.remaining] == ["runs.transform_id"]
    assert _count(instance, "SELECT count(*) FROM artifact_feature_values") == 0
    assert [f.where for f in ln.check().findings] == ["runs.transform_id"]


def _count(instance, sql: str) -> int:
    from sqlalchemy import text

    with instance.db.engine.connect() as conn:
        return int(conn.execute(text(sql)).scalar_one())


# --- latest versions --------------------------------------------------------------------------


def test_keys_with_two_latest_versions_or_none_keep_the_newest(instance, tmp_path) -> None:
    a1, a2 = save(tmp_path, "a.csv", "1\n"), save(tmp_path, "a.csv", "2\n")
    b1, b2 = save(tmp_path, "b.csv", "1\n"), save(tmp_path, "b.csv", "2\n")
    raw_sql(
        instance,
        # Two stems under one key, each with its latest version.
        f"UPDATE artifacts SET stem = 'otherstem0000000', is_latest = TRUE WHERE id = {a1.id}",
        "UPDATE artifacts SET is_latest = FALSE WHERE key = 'b.csv'",
    )
    report = ln.check()
    assert kinds(report) == {
        "no_latest_version": ["key 'b.csv'"],
        "two_latest_versions": ["key 'a.csv'"],
    }
    two = report.by_kind()["two_latest_versions"][0]
    assert two.details == {"key": "a.csv", "latest": [a1.uid, a2.uid], "versions": 2}
    assert two.fix == f"makes the newest, version 2 ({a2.uid}), the only latest version"

    assert ln.check(repair=True).ok
    assert ln.Artifact.get(key="a.csv").uid == a2.uid
    assert ln.Artifact.get(key="b.csv").uid == b2.uid
    assert ln.Artifact.filter(key__in=["a.csv", "b.csv"], is_latest=True).count() == 2
    assert ln.check().ok and b1.uid != b2.uid


def test_a_newest_version_that_is_not_the_last_made_is_left_to_a_person(instance, tmp_path) -> None:
    first, second = save(tmp_path, "a.csv", "1\n"), save(tmp_path, "a.csv", "2\n")
    raw_sql(
        instance,
        f"UPDATE artifacts SET is_latest = FALSE WHERE id = {second.id}",
        f"UPDATE artifacts SET created_at = '2999-01-01 00:00:00' WHERE id = {first.id}",
    )
    report = ln.check(repair=True)
    (finding,) = report.findings
    assert (finding.kind, finding.repair, finding.repaired) == ("no_latest_version", "none", False)
    assert "disagree" in finding.fix


# --- the command line -------------------------------------------------------------------------


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout


def test_cli_exit_code_json_and_repair(instance, tmp_path: Path) -> None:
    artifact = save(tmp_path, "a.csv", "x\n1\n")
    orphan_src = tmp_path / "orphan.csv"
    orphan_src.write_text("orphan\n")
    orphan = instance.storage.put_file(orphan_src, ".csv")
    flip_a_byte(object_path(instance, artifact))
    root = str(instance.root)

    code, out = invoke("--instance", root, "check", "--rehash", "--json")
    data = json.loads(out)
    assert code == 1 and data["ok"] is False
    assert [(f["kind"], f["where"], f["repair"]) for f in data["findings"]] == [
        ("hash_mismatch", label(artifact), "none"),
        ("stray_object", orphan.key, "yes"),
    ]
    assert data["counts"] == {"artifacts": 1, "objects": 2, "rehashed": 1, "resumed": 0}

    code, out = invoke("--instance", root, "check", "--repair")
    assert code == 1
    assert "stored objects no row references (stray_object: 1)" in out
    assert "check --repair --yes deletes it" in out

    code, out = invoke("--instance", root, "check", "--repair", "--yes")
    assert code == 0 and "repaired (check --repair --yes deletes it" in out
    code, out = invoke("--instance", root, "check")
    assert code == 0 and out.startswith("No problems in ")
    code, out = invoke("--instance", root, "check", "--rehash")
    assert code == 1 and "objects whose bytes no longer match their hash" in out
