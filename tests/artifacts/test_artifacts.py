"""Artifacts: create, save, dedup, versions, read, describe, trash — on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
import os
import stat
from pathlib import Path

import pytest

import biolake as ln
from biolake.errors import InvalidArgument, ValidationError


def write(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, str):
        path.write_text(content)
    else:
        path.write_bytes(content)
    return path


def stored_files(instance) -> list[Path]:
    objects = instance.root / ".biolake" / "objects"
    return sorted(p for p in objects.rglob("*") if p.is_file()) if objects.exists() else []


# --- creating & saving --------------------------------------------------------------------------


def test_save_file_sets_metadata(instance, tmp_path: Path) -> None:
    path = write(tmp_path / "sample.fasta", ">seq1\nACGT\n")
    artifact = ln.Artifact(path, key="sample.fasta", description="one sequence").save()
    import blake3

    assert artifact.id is not None
    assert artifact.key == "sample.fasta"
    assert artifact.description == "one sequence"
    assert artifact.suffix == ".fasta"
    assert artifact.size == path.stat().st_size
    assert artifact.hash == "blake3:" + blake3.blake3(path.read_bytes()).hexdigest()
    assert artifact.kind == "file"
    assert artifact.version == "1"
    assert artifact.is_latest is True
    assert len(artifact.uid) == 20
    assert artifact.created_at.tzinfo is not None
    assert artifact.created_at.utcoffset() == dt.timedelta(0)
    assert artifact.created_by.handle == "testuser"
    assert artifact.storage.root == str(instance.root)
    assert artifact.run is None and artifact.transform is None


def test_seed_snippets_run_unchanged(instance, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "sample.fasta", ">s\nAC\n")
    write(tmp_path / "data/analysis.h5ad", b"not really h5ad but bytes")
    ln.Artifact("sample.fasta", key="sample.fasta").save()
    artifact = ln.Artifact(
        "data/analysis.h5ad",
        key="experiments/scrna_batch1.h5ad",
        description="Single-cell RNA-seq batch 1",
    ).save()
    assert ln.Artifact.get(key="sample.fasta").suffix == ".fasta"
    assert ln.Artifact.filter(suffix=".h5ad").first() == artifact
    assert ln.Artifact.get(artifact.uid) == artifact


def test_missing_path_names_it(instance, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"nope\.csv"):
        ln.Artifact(tmp_path / "nope.csv", key="x.csv")


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("/abs/path.csv", "absolute"),
        ("a/../b.csv", "'..' segment"),
        ("a//b.csv", "empty segment"),
        ("a/b/", "empty segment"),
        ("./a.csv", "'.' segment"),
        ("a\x00b.csv", "control character"),
        ("a\nb.csv", "control character"),
        ("a\\b.csv", "backslash"),
        ("", "cannot be empty"),
        ("x" * 1025, "at most 1024"),
        ("a/ b.csv", "' b.csv' starts with ' '; use 'a/b.csv'"),
        ("a /b.csv", "'a ' ends with ' '; use 'a/b.csv'"),
        ("a/b.csv\xa0", "'b.csv\\\\xa0' ends with '\\\\xa0'; use 'a/b.csv'"),
        ("a/ /b.csv", "' ' is only whitespace; use 'a/b.csv'"),
        ("   ", "'   ' is only whitespace; pass a relative path"),
    ],
)
def test_bad_keys_are_rejected_before_storing(
    instance, tmp_path: Path, key: str, message: str
) -> None:
    path = write(tmp_path / "f.csv", "a\n1\n")
    with pytest.raises(ValidationError, match=message):
        ln.Artifact(path, key=key)
    assert stored_files(instance) == []
    assert ln.Artifact.filter().count() == 0


def test_whitespace_around_a_key_segment_is_named(instance, tmp_path: Path) -> None:
    path = write(tmp_path / "sample.fasta", ">a\nACGT\n")
    with pytest.raises(ValidationError) as info:
        ln.Artifact(path, key="genomes/ sample.fasta ")
    assert str(info.value) == (
        "Artifact key 'genomes/ sample.fasta ' has whitespace around a segment: "
        "' sample.fasta ' starts with ' ' and ends with ' '; use 'genomes/sample.fasta'."
    )
    assert ln.Artifact(path, key="my genomes/sample 1.fasta").save().key == (
        "my genomes/sample 1.fasta"  # spaces inside a segment are fine
    )


def test_folder_artifact(instance, tmp_path: Path) -> None:
    folder = tmp_path / "images.zarr"
    write(folder / "a.bin", b"a" * 10)
    write(folder / "sub" / "b.bin", b"b" * 20)
    artifact = ln.Artifact(folder, key="images.zarr").save()
    assert artifact.kind == "folder"
    assert artifact.n_files == 2
    assert artifact.size == 30
    assert artifact.suffix == ".zarr"
    cached = artifact.cache()
    assert (cached / "sub" / "b.bin").read_bytes() == b"b" * 20


def test_folder_hash_changes_on_rename(instance, tmp_path: Path) -> None:
    folder = tmp_path / "f"
    write(folder / "a.txt", "same")
    first = ln.Artifact(folder, key="folder").save()
    (folder / "a.txt").rename(folder / "b.txt")
    second = ln.Artifact(folder, key="folder").save()
    assert first.hash != second.hash
    assert second.version == "2"


# --- dedup & versions ---------------------------------------------------------------------------


def test_same_key_same_content_returns_existing(instance, tmp_path: Path, caplog) -> None:
    path = write(tmp_path / "data.csv", "a,b\n1,2\n")
    first = ln.Artifact(path, key="experiment/data.csv").save()
    again = ln.Artifact(path, key="experiment/data.csv").save()
    assert again.id == first.id
    assert ln.Artifact.filter(key="experiment/data.csv").count() == 1
    expected = f"returning the existing artifact {first.uid} (version 1): same key and same content"
    assert expected in caplog.text


def test_resave_with_new_description_updates_it(instance, tmp_path: Path) -> None:
    path = write(tmp_path / "data.csv", "a,b\n1,2\n")
    first = ln.Artifact(path, key="d.csv", description="old").save()
    again = ln.Artifact(path, key="d.csv", description="new").save()
    assert again.id == first.id
    assert ln.Artifact.get(key="d.csv").description == "new"
    assert ln.Artifact.filter(key="d.csv").count() == 1


def test_dedup_never_swaps_keys(instance, tmp_path: Path) -> None:
    path = write(tmp_path / "data.csv", "a,b\n1,2\n")
    first = ln.Artifact(path, key="one.csv").save()
    second = ln.Artifact(path, key="two.csv").save()
    assert second.id != first.id
    assert (first.key, second.key) == ("one.csv", "two.csv")
    assert first.hash == second.hash
    assert first.storage_key == second.storage_key  # bytes stored once
    assert len(stored_files(instance)) == 1


def test_new_content_makes_new_version(instance, tmp_path: Path) -> None:
    path = write(tmp_path / "data.csv", "a\n1\n")
    v1 = ln.Artifact(path, key="experiment/data.csv").save()
    write(path, "a\n2\n")
    v2 = ln.Artifact(path, key="experiment/data.csv").save()
    write(path, "a\n3\n")
    v3 = ln.Artifact(path, key="experiment/data.csv").save()
    assert [v1.version, v2.version, v3.version] == ["1", "2", "3"]
    assert v1.uid[:16] == v2.uid[:16] == v3.uid[:16]
    assert len({v1.uid, v2.uid, v3.uid}) == 3
    assert ln.Artifact.get(key="experiment/data.csv") == v3
    assert [a.is_latest for a in ln.Artifact.filter(key="experiment/data.csv").order_by("id")] == [
        False,
        False,
        True,
    ]
    artifact = ln.Artifact.get(key="experiment/data.csv")
    assert artifact.versions.count() == 3
    df = artifact.versions.to_dataframe()
    assert list(df["version"]) == ["1", "2", "3"]
    assert artifact.versions.filter(version="1").first() == v1
    assert v1.load()["a"].tolist() == [1]
    assert artifact.load()["a"].tolist() == [3]
    assert ln.Artifact.get(v1.uid) == v1  # full uid: that exact version
    assert ln.Artifact.get(v1.uid[:16]) == v3  # stem: the latest
    assert ln.Artifact.filter(key="experiment/data.csv", is_latest=True).to_list() == [v3]


def test_reverting_content_makes_a_new_version(instance, tmp_path: Path) -> None:
    path = write(tmp_path / "d.txt", "A")
    ln.Artifact(path, key="d.txt").save()
    write(path, "B")
    ln.Artifact(path, key="d.txt").save()
    write(path, "A")
    v3 = ln.Artifact(path, key="d.txt").save()
    assert v3.version == "3"
    assert v3.load() == "A"


def test_no_key_dedups_by_content(instance, tmp_path: Path) -> None:
    path = write(tmp_path / "x.txt", "hello")
    first = ln.Artifact(path).save()
    again = ln.Artifact(path).save()
    assert again.id == first.id
    assert first.key is None


def test_explicit_version_label(instance, tmp_path: Path) -> None:
    path = write(tmp_path / "x.txt", "hello")
    artifact = ln.Artifact(path, key="x.txt", version="2024-rc1").save()
    assert artifact.version == "2024-rc1"


def test_one_latest_enforced_by_database(instance, tmp_path: Path) -> None:
    from sqlalchemy import update

    path = write(tmp_path / "x.txt", "1")
    v1 = ln.Artifact(path, key="x.txt").save()
    write(path, "2")
    ln.Artifact(path, key="x.txt").save()
    import sqlalchemy.exc

    errors = (sqlalchemy.exc.IntegrityError, ln.errors.IntegrityError)
    with pytest.raises(errors), instance.db.write() as session:
        session.execute(update(ln.Artifact).where(ln.Artifact.id == v1.id).values(is_latest=True))
    assert ln.Artifact.filter(key="x.txt", is_latest=True).count() == 1


# --- reading ------------------------------------------------------------------------------------


def test_cache_is_the_stored_read_only_object(instance, tmp_path: Path) -> None:
    path = write(tmp_path / "x.txt", "hello")
    artifact = ln.Artifact(path, key="x.txt").save()
    cached = artifact.cache()
    assert cached.read_text() == "hello"
    assert cached.is_relative_to(instance.root)
    assert not cached.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)
    path.write_text("changed")  # the source changing never changes the artifact
    assert artifact.cache().read_text() == "hello"


def test_load_by_suffix(instance, tmp_path: Path) -> None:
    csv = ln.Artifact(write(tmp_path / "t.csv", "a,b\n1,2\n"), key="t.csv").save()
    assert csv.load().to_dict("list") == {"a": [1], "b": [2]}
    js = ln.Artifact(write(tmp_path / "t.json", json.dumps({"x": [1, 2]})), key="t.json").save()
    assert js.load() == {"x": [1, 2]}
    txt = ln.Artifact(write(tmp_path / "t.fasta", ">a\nAC\n"), key="t.fasta").save()
    assert txt.load() == ">a\nAC\n"
    other = ln.Artifact(write(tmp_path / "t.bam", b"\x00\x01"), key="t.bam").save()
    with pytest.raises(InvalidArgument, match=r"cache\(\)"):
        other.load()


def test_open_streams(instance, tmp_path: Path) -> None:
    artifact = ln.Artifact(write(tmp_path / "big.bin", os.urandom(100_000)), key="big.bin").save()
    with artifact.open() as f:
        chunk = f.read(1000)
        assert len(chunk) == 1000
        assert f.tell() < 100_000 or f.tell() == 1000


def test_from_dataframe_roundtrip(instance) -> None:
    import pandas as pd

    df = pd.DataFrame(
        {"x": [1.0, 2.0], "y": ["a", "b"]}, index=pd.Index(["s1", "s2"], name="sample")
    )
    artifact = ln.Artifact.from_dataframe(
        df, key="datasets/processed_data.parquet", description="Processed experimental data"
    ).save()
    assert artifact.kind == "dataframe"
    assert artifact.suffix == ".parquet"
    pd.testing.assert_frame_equal(artifact.load(), df)
    with artifact.open() as parquet:
        assert parquet.metadata.num_rows == 2
    staging = instance.root / ".biolake" / "staging"
    assert not staging.exists() or list(staging.iterdir()) == []


def test_from_anndata_h5ad_and_zarr(instance) -> None:
    import anndata as ad
    import numpy as np

    adata = ad.AnnData(np.arange(6, dtype="float32").reshape(3, 2))
    adata.obs_names = ["c1", "c2", "c3"]
    h5ad = ln.Artifact.from_anndata(adata, key="scrna/experiment1.h5ad").save()
    assert h5ad.suffix == ".h5ad" and h5ad.kind == "anndata"
    loaded = h5ad.load()
    assert loaded.shape == (3, 2)
    assert list(loaded.obs_names) == ["c1", "c2", "c3"]
    with h5ad.open() as backed:
        assert backed.shape == (3, 2)
    zarr_artifact = ln.Artifact.from_anndata(adata, key="scrna/experiment1.zarr").save()
    assert zarr_artifact.suffix == ".zarr"
    assert zarr_artifact.n_files and zarr_artifact.n_files > 1
    assert zarr_artifact.load().shape == (3, 2)


def test_from_anndata_takes_a_path(instance, tmp_path: Path) -> None:
    import anndata as ad
    import numpy as np

    adata = ad.AnnData(np.arange(6, dtype="float32").reshape(3, 2))
    from biolake.artifacts.writers import write_anndata  # zarr settings that raise no warnings

    write_anndata(adata, tmp_path / "data.h5ad")
    write_anndata(adata, tmp_path / "data.zarr")
    h5ad = ln.Artifact.from_anndata(str(tmp_path / "data.h5ad"), key="scrna/data.h5ad").save()
    assert (h5ad.kind, h5ad.suffix, h5ad.key) == ("anndata", ".h5ad", "scrna/data.h5ad")
    assert h5ad.size == (tmp_path / "data.h5ad").stat().st_size  # the file as it is
    assert h5ad.load().shape == (3, 2)
    zarr = ln.Artifact.from_anndata(tmp_path / "data.zarr", description="as zarr").save()
    assert (zarr.kind, zarr.suffix, zarr.key, zarr.description) == (
        "anndata", ".zarr", None, "as zarr"
    )  # fmt: skip
    assert zarr.n_files and zarr.n_files > 1 and zarr.load().shape == (3, 2)
    csv = write(tmp_path / "data.csv", "a\n1\n")
    with pytest.raises(InvalidArgument) as info:
        ln.Artifact.from_anndata(csv, key="data.csv")
    assert str(info.value) == (
        f"from_anndata takes an AnnData object or the path of an .h5ad file or a .zarr folder, "
        f"not {str(csv)!r}: register other files with ln.Artifact({str(csv)!r}, key=...)."
    )
    with pytest.raises(ValidationError, match=r"ends in '\.zarr'"):  # the key names the format
        ln.Artifact.from_anndata(tmp_path / "data.h5ad", key="data.zarr")


def test_from_dataframe_with_a_path_says_what_to_do(instance) -> None:
    with pytest.raises(InvalidArgument) as info:
        ln.Artifact.from_dataframe("data.csv", key="tables/data.csv")
    assert str(info.value) == (
        "from_dataframe takes a pandas DataFrame, not the path 'data.csv': register the file as "
        "it is with ln.Artifact('data.csv', key=...), or read it first, e.g. "
        "ln.Artifact.from_dataframe(pd.read_csv('data.csv'), key=...)."
    )
    with pytest.raises(InvalidArgument, match=r"not the path 'data\.parquet'"):
        ln.Artifact.from_dataframe(Path("data.parquet"))
    staging = instance.root / ".biolake" / "staging"
    assert not staging.exists() or list(staging.iterdir()) == []


# --- describe -----------------------------------------------------------------------------------


def test_describe(instance, tmp_path: Path, capsys) -> None:
    artifact = ln.Artifact(
        write(tmp_path / "x.txt", "a" * 2048), key="x.txt", description="d"
    ).save()
    text = artifact.describe(return_str=True)
    assert text is not None
    for expected in [
        "x.txt",
        artifact.uid,
        "2.0 KiB",
        "2,048 bytes",
        "blake3:",
        "testuser",
        "(latest)",
    ]:
        assert expected in text
    assert artifact.describe() is None
    assert "x.txt" in capsys.readouterr().out


# --- trash --------------------------------------------------------------------------------------


def test_trash_restore_and_latest(instance, tmp_path: Path) -> None:
    path = write(tmp_path / "x.txt", "1")
    v1 = ln.Artifact(path, key="x.txt").save()
    write(path, "2")
    v2 = ln.Artifact(path, key="x.txt").save()
    v2.delete()
    assert ln.Artifact.get(key="x.txt") == v1
    assert v1.is_latest
    assert ln.Artifact.filter(key="x.txt").to_list() == [v1]
    assert ln.Artifact.filter(key="x.txt", visibility="trash").to_list() == [v2]
    with pytest.raises(ln.Artifact.DoesNotExist):
        ln.Artifact.get(v2.uid)
    v2.restore()
    assert ln.Artifact.get(key="x.txt") == v2
    assert ln.Artifact.filter(key="x.txt", is_latest=True).to_list() == [v2]
    assert v2.cache().read_text() == "2"


def test_permanent_delete_keeps_shared_bytes(instance, tmp_path: Path) -> None:
    path = write(tmp_path / "x.txt", "shared")
    a = ln.Artifact(path, key="a.txt").save()
    b = ln.Artifact(path, key="b.txt").save()
    a.delete(permanent=True)
    assert ln.Artifact.filter(key="a.txt", visibility__in=["default", "trash"]).count() == 0
    assert b.cache().read_text() == "shared"
    b.delete(permanent=True)
    assert stored_files(instance) == []


def test_permanent_delete_of_latest_promotes_previous(instance, tmp_path: Path) -> None:
    path = write(tmp_path / "x.txt", "1")
    v1 = ln.Artifact(path, key="x.txt").save()
    write(path, "2")
    v2 = ln.Artifact(path, key="x.txt").save()
    v2.delete(permanent=True)
    assert ln.Artifact.get(key="x.txt") == v1
    write(path, "3")
    v3 = ln.Artifact(path, key="x.txt").save()
    assert v3.version == "2"  # numbers continue from the versions that exist


# --- failures leave nothing behind --------------------------------------------------------------


def test_failed_commit_leaves_no_row_and_no_object(instance, tmp_path: Path, monkeypatch) -> None:
    import biolake.artifacts.versioning as versioning

    def boom(*args, **kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(versioning, "_next_version", boom)
    path = write(tmp_path / "x.txt", "1")
    ln.Artifact(path, key="x.txt").save()
    write(path, "2")
    with pytest.raises(RuntimeError, match="went away"):
        ln.Artifact(path, key="x.txt").save()
    assert ln.Artifact.filter(key="x.txt").count() == 1
    assert len(stored_files(instance)) == 1
    assert ln.Artifact.get(key="x.txt").load() == "1"


def test_source_vanishing_mid_copy_leaves_nothing(instance, tmp_path: Path, monkeypatch) -> None:
    path = write(tmp_path / "x.bin", os.urandom(3_000_000))
    artifact = ln.Artifact(path, key="x.bin")
    import io

    real_open = io.open

    class Vanishing(io.FileIO):
        def readinto(self, buffer):
            super().readinto(buffer)
            raise OSError("source file disappeared")

    def fake_open(file, mode="r", *args, **kwargs):
        if Path(str(file)) == path and "r" in mode:
            return Vanishing(str(file), "r")
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr("builtins.open", fake_open)
    with pytest.raises(OSError, match="disappeared"):
        artifact.save()
    monkeypatch.undo()
    assert ln.Artifact.filter().count() == 0
    assert stored_files(instance) == []
    tmp = instance.root / ".biolake" / "tmp"
    assert not tmp.exists() or list(tmp.iterdir()) == []


# --- bulk ---------------------------------------------------------------------------------------


def test_bulk_save_many_files(instance, tmp_path: Path) -> None:
    paths = [write(tmp_path / "many" / f"f{i}.txt", f"content {i}") for i in range(50)]
    artifacts = [ln.Artifact(p, key=f"many/f{i}.txt") for i, p in enumerate(paths)]
    saved = ln.save(artifacts)
    assert len(saved) == 50
    assert ln.Artifact.filter(key__startswith="many/").count() == 50
    assert ln.Artifact.get(key="many/f7.txt").load() == "content 7"


def test_bulk_save_dedups_and_versions(instance, tmp_path: Path) -> None:
    a = write(tmp_path / "a.txt", "A")
    existing = ln.Artifact(a, key="a.txt").save()
    b = write(tmp_path / "b.txt", "B")
    saved = ln.save(
        [ln.Artifact(a, key="a.txt"), ln.Artifact(b, key="a.txt"), ln.Artifact(b, key="b.txt")]
    )
    assert saved[0].id == existing.id
    assert saved[1].version == "2" and saved[1].is_latest
    assert saved[2].key == "b.txt" and saved[2].version == "1"
    assert ln.Artifact.filter(key="a.txt", is_latest=True).count() == 1


def test_bulk_save_is_all_or_nothing(instance, tmp_path: Path) -> None:
    good = ln.Artifact(write(tmp_path / "g.txt", "good"), key="g.txt")
    bad = ln.Artifact(write(tmp_path / "b.txt", "bad"), key="b.txt")
    (tmp_path / "b.txt").unlink()
    with pytest.raises(FileNotFoundError):
        ln.save([good, bad])
    assert ln.Artifact.filter().count() == 0
    assert stored_files(instance) == []


def test_bulk_save_keeps_the_search_index_in_step(instance, tmp_path: Path) -> None:
    # 30 rows: SQLite indexes the batch in one statement instead of a trigger per row.
    paths = [write(tmp_path / f"s{i}.txt", f"s{i}") for i in range(30)]
    ln.save([ln.Artifact(p, key=f"screen/plate{i:02d}.txt") for i, p in enumerate(paths)])

    def keys(query: str) -> list[str]:
        return [a.key for a in ln.Artifact.search(query)]

    assert keys("plate17")[0] == "screen/plate17.txt"
    assert ln.Artifact.search("screen/plate").count() == 30
    # Renaming and deleting remove exactly what the batch indexed.
    renamed = ln.Artifact.get(key="screen/plate17.txt")
    renamed.key = "screen/well17.txt"
    renamed.save()
    ln.Artifact.get(key="screen/plate03.txt").delete(permanent=True)
    assert "screen/plate17.txt" not in keys("plate17")
    assert keys("well17")[0] == "screen/well17.txt"
    assert "screen/plate03.txt" not in keys("plate03")
    assert len([k for k in keys("screen/plate") if "plate" in k]) == 28
    if instance.db.is_sqlite:
        with instance.db.engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT count(*) FROM fts_paused").scalar() == 0


def test_failed_bulk_insert_leaves_the_search_index_as_it_was(instance, tmp_path: Path) -> None:
    refuse = "IF NEW.key = 'batch/b29.txt' THEN RAISE EXCEPTION 'refused by test'; END IF;"
    statements = {  # a real failure inside the INSERT, on the 30th row
        "sqlite": [
            "CREATE TRIGGER refuse BEFORE INSERT ON artifacts WHEN new.key = 'batch/b29.txt' "
            "BEGIN SELECT RAISE(ABORT, 'refused by test'); END"
        ],
        "postgresql": [
            f"CREATE FUNCTION refuse() RETURNS trigger AS $$ BEGIN {refuse} RETURN NEW; END $$ "
            "LANGUAGE plpgsql",
            "CREATE TRIGGER refuse BEFORE INSERT ON artifacts FOR EACH ROW "
            "EXECUTE FUNCTION refuse()",
        ],
    }[instance.db.dialect]
    with instance.db.engine.begin() as conn:
        for statement in statements:
            conn.exec_driver_sql(statement)
    paths = [write(tmp_path / f"b{i}.txt", f"b{i}") for i in range(30)]
    with pytest.raises(Exception, match="refused by test"):
        ln.save([ln.Artifact(p, key=f"batch/b{i}.txt") for i, p in enumerate(paths)])
    assert ln.Artifact.filter().count() == 0
    with instance.db.engine.begin() as conn:
        if instance.db.is_sqlite:  # the search trigger was paused for the batch: not any more
            assert conn.exec_driver_sql("SELECT count(*) FROM fts_paused").scalar() == 0
        conn.exec_driver_sql(
            "DROP TRIGGER refuse" + ("" if instance.db.is_sqlite else " ON artifacts")
        )
    assert ln.Artifact.search("batch/b1").count() == 0
    one = ln.Artifact(paths[1], key="batch/b1.txt").save()  # one row: indexed as it is inserted
    assert ln.Artifact.search("batch/b1").to_list() == [one]


def test_describe_shows_features_with_their_types(instance, tmp_path: Path) -> None:
    ln.Feature(name="read_count", dtype=int).save()
    ln.Feature(name="tissue", dtype=str).save()
    artifact = ln.Artifact(write(tmp_path / "x.txt", "x"), key="x.txt").save()
    artifact.features.add_values({"read_count": 42, "tissue": "[liver]"})
    text = artifact.describe(return_str=True)
    assert text is not None
    assert "Features" in text
    assert "read_count  42  [int]" in text
    assert "[liver]" in text  # values that look like markup are shown as they are


def test_any_suffix_is_accepted(instance, tmp_path: Path) -> None:
    spaced = ln.Artifact(write(tmp_path / "report.final version", "x"), key="spaced").save()
    assert spaced.suffix == ".final version"
    assert spaced.cache().name.endswith(".final version")
    long_suffix = "data." + "x" * 80  # too long to end a storage key: stored without a suffix
    odd = ln.Artifact(write(tmp_path / long_suffix, "y"), key="odd").save()
    assert odd.suffix == ""
    assert odd.cache().read_text() == "y"
    gz = ln.Artifact(write(tmp_path / "reads.fastq.gz", b"\x1f\x8b"), key="reads.fastq.gz").save()
    assert gz.suffix == ".fastq.gz"
    none = ln.Artifact(write(tmp_path / "README", "hi"), key="README").save()
    assert none.suffix == ""


def test_queries_return_what_other_processes_wrote(instance, tmp_path: Path) -> None:
    import subprocess
    import sys

    v1 = ln.Artifact(write(tmp_path / "x.txt", "1"), key="x.txt").save()
    assert v1.is_latest
    write(tmp_path / "x.txt", "2")
    code = "import biolake as ln, sys; ln.Artifact(sys.argv[1], key='x.txt').save()"
    env = {**os.environ, "BIOLAKE_INSTANCE": str(instance.root)}
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "x.txt")], env=env, check=True)
    assert ln.Artifact.get(key="x.txt").version == "2"
    again = ln.Artifact.filter(key="x.txt", version="1").one()
    assert again is v1 and v1.is_latest is False  # the object this process holds is refreshed


def test_helpful_errors_for_common_mistakes(instance, tmp_path: Path) -> None:
    ln.Artifact(write(tmp_path / "sample.fasta", ">a\n"), key="sample.fasta").save()
    with pytest.raises(InvalidArgument, match=r"ln\.Artifact\.get\(key='sample\.fasta'\)"):
        ln.Artifact.get("sample.fasta")
    folder = tmp_path / "plain"
    write(folder / "a.txt", "a")
    stored = ln.Artifact(folder, key="plain").save()
    with pytest.raises(InvalidArgument, match=r"cannot read a folder.*cache\(\)"):
        stored.load()
    with pytest.raises(ValidationError, match=r"ends in '\.csv' but 'sample\.fasta' is '\.fasta'"):
        ln.Artifact(tmp_path / "sample.fasta", key="x/sample.csv")


def test_duplicate_version_label_is_refused(instance, tmp_path: Path) -> None:
    path = write(tmp_path / "d.csv", "a\n1\n")
    ln.Artifact(path, key="d.csv").save()
    write(path, "a\n2\n")
    with pytest.raises(ValidationError, match=r"Version '1' of key 'd\.csv' exists already"):
        ln.Artifact(path, key="d.csv", version="1").save()
    assert ln.Artifact.filter(key="d.csv").count() == 1


def test_artifact_of_a_run_records_its_transform(instance, tmp_path: Path) -> None:
    transform = ln.Transform(key="preprocessing.py").save()
    run = ln.Run(transform=transform).save()
    artifact = ln.Artifact(write(tmp_path / "o.csv", "a\n1\n"), key="output.csv", run=run).save()
    assert artifact.run == run and artifact.transform == transform
    assert ln.Artifact.filter(transform=transform).to_list() == [artifact]
    assert ln.Artifact.filter(run__in=ln.Run.filter(transform=transform)).count() == 1
    unsaved = ln.Run(transform=transform)
    with pytest.raises(InvalidArgument, match=r"run\.save\(\) first"):
        ln.Artifact(write(tmp_path / "p.csv", "a\n2\n"), key="p.csv", run=unsaved).save()
    assert ln.Artifact.filter(key="p.csv").count() == 0
    for wrong in ["run-1", transform]:
        with pytest.raises(InvalidArgument, match=r"run= takes an ln\.Run"):
            ln.Artifact(tmp_path / "p.csv", key="p.csv", run=wrong)


def test_suffix_without_a_dot_raises_instead_of_matching_nothing(instance, tmp_path: Path) -> None:
    ln.Artifact(write(tmp_path / "a.h5ad", "x"), key="a.h5ad").save()
    ln.Artifact(write(tmp_path / "folder" / "f.txt", "y").parent, key="folder").save()
    with pytest.raises(InvalidArgument) as info:
        ln.Artifact.filter(suffix="h5ad")
    assert str(info.value) == "Suffixes start with a dot: did you mean '.h5ad' instead of 'h5ad'?"
    for call in [
        lambda: ln.Artifact.filter(suffix__in=[".csv", "h5ad"]),
        lambda: ln.Artifact.exclude(suffix="h5ad"),
        lambda: ln.Artifact.get(suffix="h5ad"),
        lambda: ln.Run.filter(input_artifacts__suffix="h5ad"),  # across a relation too
    ]:
        with pytest.raises(InvalidArgument, match=r"did you mean '\.h5ad' instead of 'h5ad'\?"):
            call()
    assert ln.Artifact.filter(suffix=".h5ad").one().key == "a.h5ad"
    assert ln.Artifact.filter(suffix__in=[".h5ad", ""]).count() == 2  # "" is "no suffix"
    assert ln.Artifact.get(suffix="").key == "folder"
    assert ln.Artifact.filter(suffix__endswith="h5ad").count() == 1  # other lookups: as given


def test_description_with_nul_is_refused_and_nothing_is_stored(
    instance, tmp_path: Path, monkeypatch
) -> None:
    import biolake.artifacts.versioning as versioning
    from biolake.errors import ValidationError

    path = write(tmp_path / "x.txt", "1")
    artifact = ln.Artifact(path, key="x.txt", description="bad\x00")
    store_all = versioning._store_all
    monkeypatch.setattr(versioning, "_store_all", lambda *a: pytest.fail("bytes copied"))
    with pytest.raises(ValidationError, match=r"Artifact.description must not contain NUL"):
        artifact.save()  # refused before any byte is copied
    monkeypatch.setattr(versioning, "_store_all", store_all)
    assert ln.Artifact.filter().count() == 0
    assert stored_files(instance) == []
    artifact.description = "good"  # fixed, the same object saves
    assert artifact.save().load() == "1"


def test_new_save_under_a_trashed_key_continues_its_versions(instance, tmp_path: Path) -> None:
    """All versions of a key in the trash: new content continues the stem (version 3, not a
    second "1"), and restoring an old version never makes two latest versions of one key."""
    path = write(tmp_path / "r.txt", "1")
    v1 = ln.Artifact(path, key="r.txt").save()
    write(path, "2")
    v2 = ln.Artifact(path, key="r.txt").save()
    v2.delete()
    v1.delete()
    write(path, "1")  # the same content as the trashed v1: still a new version
    v3 = ln.Artifact(path, key="r.txt").save()
    assert (v3.stem, v3.version, v3.is_latest) == (v1.stem, "3", True)
    v1.restore()
    v2.restore()
    assert ln.Artifact.get(key="r.txt") == v3
    assert ln.Artifact.filter(key="r.txt", is_latest=True).to_list() == [v3]
    assert sorted(a.version for a in v3.versions) == ["1", "2", "3"]


def test_delete_and_restore_say_when_nothing_can_happen(instance, tmp_path: Path) -> None:
    path = write(tmp_path / "x.txt", "x")
    unsaved = ln.Artifact(path, key="x.txt")
    with pytest.raises(InvalidArgument, match=r"Cannot delete an unsaved Artifact: call \.save"):
        unsaved.delete()
    artifact = unsaved.save()
    artifact.delete(permanent=True)
    with pytest.raises(ln.errors.ObjectDoesNotExist, match="deleted permanently"):
        artifact.restore()
    with pytest.raises(ln.errors.ObjectDoesNotExist, match="deleted permanently"):
        artifact.delete()
    record = ln.Record(name="gone").save()
    record.delete(permanent=True)
    with pytest.raises(ln.errors.ObjectDoesNotExist, match="Cannot restore Record"):
        record.restore()
    with pytest.raises(InvalidArgument, match="unsaved Record"):
        ln.Record(name="new").delete()


def test_saved_artifact_keeps_its_content_fields(instance, tmp_path: Path) -> None:
    """Refused when set, so nothing can flush them later; the description may change."""
    artifact = ln.Artifact(write(tmp_path / "x.txt", "x"), key="x.txt").save()
    for field, value in [("hash", "blake3:00"), ("size", 99), ("version", "9"), ("uid", "x" * 20)]:
        with pytest.raises(ValidationError, match=f"Artifact.{field} is set by biolake"):
            setattr(artifact, field, value)
    with pytest.raises(ValidationError, match=r"has a '\.\.' segment"):
        artifact.key = "../evil.txt"
    with pytest.raises(ValidationError, match=r"ends in '\.csv'"):
        artifact.key = "x.csv"
    with pytest.raises(ValidationError, match="cannot be removed"):
        artifact.key = None
    artifact.size = 1  # the same value: fine
    artifact.description = "edited"
    artifact.save()
    ln.Artifact(write(tmp_path / "y.txt", "y"), key="y.txt").save()
    stored = ln.Artifact.get(key="x.txt")
    assert (stored.description, stored.hash, stored.version) == ("edited", artifact.hash, "1")


def test_storage_key_cannot_be_pointed_at_other_bytes(instance, tmp_path: Path) -> None:
    """What permanent delete removes is never writable: neither another artifact's object nor
    the database file can be reached by editing a row."""
    victim = ln.Artifact(write(tmp_path / "v.txt", "victim"), key="v.txt").save()
    target = ln.Artifact(write(tmp_path / "t.txt", "target"), key="t.txt").save()
    for value in [victim.storage_key, ".biolake/biolake.db"]:
        with pytest.raises(ValidationError, match=r"Artifact\.storage_key is set by biolake"):
            target.storage_key = value
    with pytest.raises(ValidationError, match=r"Artifact\.storage_id is set by biolake"):
        target.storage_id = target.storage_id + 1
    target.delete(permanent=True)
    assert ln.Artifact.get(key="v.txt").load() == "victim"


def test_permanent_delete_removes_only_the_object_of_its_hash(instance, tmp_path: Path) -> None:
    """Even a row changed behind biolake's back (SQL) cannot make a delete remove other files."""
    from sqlalchemy import update

    victim = ln.Artifact(write(tmp_path / "v.txt", "victim"), key="v.txt").save()
    ln.Artifact(write(tmp_path / "t.txt", "target"), key="t.txt").save()
    for i, key in enumerate([victim.storage_key, ".biolake/biolake.db", "../outside.txt"]):
        doomed = ln.Artifact(write(tmp_path / f"d{i}.txt", f"d{i}"), key=f"d{i}.txt").save()
        own_object = instance.storage.local_path(doomed.storage_key)
        with instance.db.write() as session:
            table = ln.Artifact.__table__
            session.execute(update(table).where(table.c.id == doomed.id).values(storage_key=key))
        ln.Artifact.get(key=f"d{i}.txt").delete(permanent=True)
        assert own_object.exists()  # left for `check` to find: better a stray than a loss
    assert ln.Artifact.get(key="v.txt").load() == "victim"
    assert ln.Artifact.get(key="t.txt").load() == "target"
    if instance.db.is_sqlite:
        assert (instance.root / ".biolake" / "biolake.db").is_file()


def test_delete_inside_a_rolled_back_transaction_keeps_the_bytes(instance, tmp_path: Path) -> None:
    """Bytes go only once the enclosing transaction has ended, and only if no row (restored by
    the rollback) references them."""
    artifact = ln.Artifact(write(tmp_path / "x.txt", "kept"), key="x.txt").save()
    with pytest.raises(RuntimeError, match="changed my mind"), instance.db.write():
        artifact.delete(permanent=True)
        raise RuntimeError("changed my mind")
    assert ln.Artifact.get(key="x.txt").load() == "kept"
    with instance.db.write():
        ln.Artifact.get(key="x.txt").delete(permanent=True)
        assert instance.storage.exists(artifact.storage_key)  # not yet: the row may come back
    assert not instance.storage.exists(artifact.storage_key)


def test_rename_moves_every_version(instance, tmp_path: Path) -> None:
    path = write(tmp_path / "x.txt", "1")
    v1 = ln.Artifact(path, key="old/x.txt").save()
    v2 = ln.Artifact(write(path, "2"), key="old/x.txt").save()
    other = ln.Artifact(write(tmp_path / "o.txt", "o"), key="other.txt").save()
    v1.key = "new/x.txt"  # renaming any version renames the key of all
    v1.save()
    assert ln.Artifact.get(key="new/x.txt") == v2
    assert sorted(a.version for a in ln.Artifact.filter(key="new/x.txt")) == ["1", "2"]
    assert ln.Artifact.filter(key="old/x.txt").count() == 0
    assert v2.key == "new/x.txt"
    v2.key = "other.txt"  # another artifact's key: refused, nothing renamed
    with pytest.raises(
        ValidationError, match=f"Cannot rename to 'other.txt': artifact {other.uid}"
    ):
        v2.save()
    assert v2.key == "new/x.txt"
    ln.Artifact(write(tmp_path / "z.txt", "z"), key="z.txt").save()  # flushes nothing stale
    assert ln.Artifact.filter(key="new/x.txt").count() == 2
    assert ln.Artifact.filter(key="other.txt").to_list() == [other]


@pytest.mark.parametrize("kind", ["character device", "FIFO", "link to a device"])
def test_special_files_are_refused_before_any_byte_is_read(instance, tmp_path: Path, kind) -> None:
    """/dev/zero never ends and a FIFO blocks until a writer comes: neither is saved."""
    if kind == "FIFO":
        path = tmp_path / "pipe"
        os.mkfifo(path)
    elif kind == "link to a device":
        path = tmp_path / "zero.bin"
        path.symlink_to("/dev/zero")
    else:
        path = Path("/dev/zero")
    expected = r"a FIFO \(named pipe\)" if kind == "FIFO" else "a character device"
    with pytest.raises(ValidationError, match=f"is {expected}, not a file or folder"):
        ln.Artifact(path, key="z.bin")
    assert ln.Artifact.filter().count() == 0


def test_a_missing_stored_object_says_which_artifact_and_what_to_do(
    instance, tmp_path: Path
) -> None:
    source = write(tmp_path / "x.txt", "content")
    artifact = ln.Artifact(source, key="x.txt").save()
    stored = instance.storage.local_path(artifact.storage_key)
    os.chmod(stored.parent, 0o755)
    stored.unlink()
    for read in (artifact.cache, artifact.load):
        with pytest.raises(ln.errors.StorageError, match=r"\(key 'x.txt', version 1\)"):
            read()
    with (
        pytest.raises(ln.errors.StorageError, match="save the same content again"),
        artifact.open(),
    ):
        pass
    assert ln.Artifact(source, key="x.txt").save() == artifact  # puts the object back
    assert artifact.load() == "content"


def test_a_new_key_is_written_only_by_the_artifacts_own_save(instance, tmp_path: Path) -> None:
    """Another write used to flush it, renaming one version without the key locks or the check
    that the key is free: two latest versions under one key."""
    ln.Artifact(write(tmp_path / "a.txt", "a"), key="a.txt").save()
    b = ln.Artifact(write(tmp_path / "b.txt", "b"), key="b.txt").save()
    b.key = "a.txt"
    with pytest.raises(ValidationError, match=r"new key 'a\.txt' that is not saved"):
        ln.Record(name="unrelated").save()
    assert b.key == "b.txt"  # the refused write rolled back, and the edit with it
    b.key = "a.txt"
    with pytest.raises(ValidationError, match=r"Cannot rename to 'a\.txt'"):
        b.save()
    assert ln.Artifact.get(key="a.txt").load() == "a"
    assert ln.Artifact.get(key="b.txt").load() == "b"


def test_bytes_of_a_save_rolled_back_by_an_enclosing_write_are_removed(
    instance, tmp_path: Path
) -> None:
    with pytest.raises(ValidationError, match="NUL"):
        ln.save(
            [ln.Artifact(write(tmp_path / "o.csv", "x,y"), key="o.csv"), ln.Record(name="b\x00")]
        )
    assert ln.Artifact.filter().count() == 0
    assert stored_files(instance) == []
