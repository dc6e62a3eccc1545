"""Tests for biolake.artifacts.loaders and biolake.artifacts.writers, on real files in tmp_path."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import pandas as hpd

from biolake.artifacts.loaders import load, loadable_suffixes, open_artifact, suffix_of
from biolake.artifacts.writers import (
    suffix_for_anndata,
    suffix_for_dataframe,
    write_anndata,
    write_dataframe,
)
from biolake.errors import BiolakeError, InvalidArgument

FRAME = pd.DataFrame({"sample": ["s1", "s2", "s3"], "reads": [10, 20, 30], "gc": [0.4, 0.5, 0.6]})


def small_adata() -> ad.AnnData:
    return ad.AnnData(
        X=np.arange(6, dtype=np.float32).reshape(3, 2),
        obs=pd.DataFrame({"cell_type": pd.Categorical(["T", "B", "T"])}, index=["c1", "c2", "c3"]),
        var=pd.DataFrame(index=["CD3E", "MS4A1"]),
        uns={"study": "batch1"},
    )


def assert_adata_equal(actual: Any, expected: ad.AnnData) -> None:
    assert isinstance(actual, ad.AnnData)
    np.testing.assert_array_equal(np.asarray(actual.X), expected.X)
    pd.testing.assert_frame_equal(actual.obs, expected.obs)
    pd.testing.assert_index_equal(actual.var_names, expected.var_names)
    assert actual.uns["study"] == expected.uns["study"]


# --- suffix_of -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "suffix"),
    [
        ("a.csv", ".csv"),
        ("a.csv.gz", ".csv.gz"),
        ("reads.fastq.gz", ".fastq.gz"),
        ("sample.v1.csv", ".csv"),  # only compression joins the suffix before it
        ("run.2024.gz", ".gz"),
        ("script.R", ".R"),  # case kept for storage; lookups lower-case it
        ("data.zarr", ".zarr"),
        ("README", ""),
    ],
)
def test_suffix_of(name: str, suffix: str) -> None:
    assert suffix_of(Path("some/dir") / name) == suffix


# --- load(): tables ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "sep", "compress"),
    [
        ("t.csv", ",", False),
        ("t.tsv", "\t", False),
        ("t.csv.gz", ",", True),
        ("t.tsv.gz", "\t", True),
    ],
)
def test_load_delimited(tmp_path: Path, name: str, sep: str, compress: bool) -> None:
    path = tmp_path / name
    text = FRAME.to_csv(sep=sep, index=False).encode()
    path.write_bytes(gzip.compress(text) if compress else text)
    pd.testing.assert_frame_equal(load(path), FRAME)


def test_load_uses_given_suffix_over_file_name(tmp_path: Path) -> None:
    # A cached copy may be named by uid; the artifact's suffix decides how to read it.
    path = tmp_path / "3fa2b9c"
    path.write_bytes(gzip.compress(FRAME.to_csv(sep="\t", index=False).encode()))
    pd.testing.assert_frame_equal(load(path, ".tsv.gz"), FRAME)


def test_load_suffix_is_case_insensitive(tmp_path: Path) -> None:
    path = tmp_path / "T.CSV"
    path.write_text(FRAME.to_csv(index=False))
    pd.testing.assert_frame_equal(load(path), FRAME)


@pytest.mark.parametrize(
    "index",
    [
        pd.RangeIndex(3),
        pd.RangeIndex(10, 16, 2, name="row"),
        pd.Index(["r1", "r2", "r3"]),
        pd.Index(["r1", "r2", "r3"], name="sample_id"),
        pd.MultiIndex.from_tuples([("a", 1), ("a", 2), ("b", 1)], names=["plate", "well"]),
        pd.DatetimeIndex(["2025-01-01", "2025-01-02", "2025-01-03"], name="day"),
    ],
    ids=["range", "named-range", "strings", "named", "multi", "dates"],
)
def test_parquet_round_trips_index(tmp_path: Path, index: pd.Index) -> None:
    df = FRAME.set_axis(index, axis=0)
    path = tmp_path / f"df{suffix_for_dataframe()}"
    write_dataframe(df, path)
    loaded = load(path)
    # check_index_type="equiv" is the default; be exact so a RangeIndex must stay a RangeIndex.
    pd.testing.assert_frame_equal(loaded, df, check_index_type=True)
    assert type(loaded.index) is type(df.index)
    assert loaded.index.names == df.index.names


def test_parquet_keeps_dtypes(tmp_path: Path) -> None:
    df = pd.DataFrame(
        {
            "cat": pd.Categorical(["x", "y", "x"]),
            "flag": [True, False, True],
            "n": pd.array([1, None, 3], dtype="Int64"),
            "when": pd.to_datetime(["2025-10-31", "2025-11-01", "2025-11-02"]),
        }
    )
    write_dataframe(df, tmp_path / "d.parquet")
    pd.testing.assert_frame_equal(load(tmp_path / "d.parquet"), df)


def test_parquet_non_string_column_labels_round_trip(tmp_path: Path) -> None:
    ints = pd.DataFrame(np.eye(2), columns=[0, 1])
    write_dataframe(ints, tmp_path / "ints.parquet")
    pd.testing.assert_frame_equal(load(tmp_path / "ints.parquet"), ints)

    multi = pd.DataFrame(
        [[1, 2]], columns=pd.MultiIndex.from_tuples([("counts", "a"), ("counts", "b")])
    )
    write_dataframe(multi, tmp_path / "multi.parquet")
    pd.testing.assert_frame_equal(load(tmp_path / "multi.parquet"), multi)


@pytest.mark.parametrize(
    ("columns", "message"),
    [
        ([1, "1"], "unique"),  # "1" twice once stored as strings
        (["a", "a"], "unique"),
        ([1, "b"], "mix types"),
        ([None, "b"], "mix types"),
    ],
)
def test_write_dataframe_rejects_labels_that_cannot_round_trip(
    tmp_path: Path, columns: list[Any], message: str
) -> None:
    df = pd.DataFrame([[1, 2]], columns=columns)
    with pytest.raises(InvalidArgument, match=message):
        write_dataframe(df, tmp_path / "bad.parquet")
    assert not (tmp_path / "bad.parquet").exists()


def test_write_dataframe_rejects_mixed_type_column_values(tmp_path: Path) -> None:
    df = pd.DataFrame({"m": [1, "x"]})
    with pytest.raises(InvalidArgument, match=r"column m.*astype\(str\)"):
        write_dataframe(df, tmp_path / "bad.parquet")


def test_write_dataframe_rejects_non_dataframe(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="Expected a pandas DataFrame, got dict"):
        write_dataframe({"a": [1]}, tmp_path / "bad.parquet")


@settings(max_examples=40, deadline=None)
@given(
    df=hpd.data_frames(
        columns=[
            hpd.column("i", dtype=np.int64),
            hpd.column("f", dtype=float),
            hpd.column("s", elements=st.text(max_size=8)),
            hpd.column("b", dtype=bool),
        ],
        index=hpd.indexes(
            elements=st.text(max_size=5), max_size=8, unique=True, name=st.just("key")
        ),
    )
)
def test_parquet_round_trip_property(tmp_path_factory: pytest.TempPathFactory, df: Any) -> None:
    path = tmp_path_factory.mktemp("prop") / "df.parquet"
    write_dataframe(df, path)
    pd.testing.assert_frame_equal(load(path), df)


# --- load(): AnnData -------------------------------------------------------------------------


def test_h5ad_round_trip(tmp_path: Path) -> None:
    adata = small_adata()
    path = tmp_path / f"a{suffix_for_anndata('scrna/a.h5ad')}"
    write_anndata(adata, path)
    assert_adata_equal(load(path), adata)


def test_zarr_round_trip(tmp_path: Path) -> None:
    adata = small_adata()
    path = tmp_path / f"a{suffix_for_anndata('scrna/a.zarr')}"
    write_anndata(adata, path)
    assert path.is_dir()
    assert_adata_equal(load(path), adata)


def test_zarr_that_is_not_anndata_is_refused(tmp_path: Path) -> None:
    import zarr

    zarr.open_group(tmp_path / "plain.zarr", mode="w").create_array("x", shape=(2,), dtype="i4")
    with pytest.raises(InvalidArgument, match=r"not an AnnData one.*artifact\.open\(\)"):
        load(tmp_path / "plain.zarr")


def test_write_anndata_rejects_non_anndata(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="Expected an AnnData object, got DataFrame"):
        write_anndata(FRAME, tmp_path / "x.h5ad")


@pytest.mark.parametrize(
    ("key", "suffix"),
    [
        (None, ".h5ad"),
        ("a.h5ad", ".h5ad"),
        ("dir/a.zarr", ".zarr"),
        ("a.ZARR", ".zarr"),
        ("x", ".h5ad"),
    ],
)
def test_suffix_for_anndata(key: str | None, suffix: str) -> None:
    assert suffix_for_anndata(key) == suffix


# --- load(): json, yaml, text -------------------------------------------------------------------

CONFIG = {"learning_rate": 0.01, "layers": [64, 32], "name": "Zellkern", "nested": {"ok": True}}


def test_load_json(tmp_path: Path) -> None:
    (tmp_path / "c.json").write_text(json.dumps(CONFIG))
    assert load(tmp_path / "c.json") == CONFIG


@pytest.mark.parametrize("suffix", [".yaml", ".yml"])
def test_load_yaml(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"c{suffix}"
    path.write_text(yaml.safe_dump(CONFIG))
    assert load(path) == CONFIG


def test_load_yaml_is_safe(tmp_path: Path) -> None:
    path = tmp_path / "evil.yaml"
    path.write_text("!!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(yaml.YAMLError):
        load(path)


TEXTS = {
    ".txt": "plain notes\nsecond line ä\n",
    ".fasta": ">seq1 test\nACGTACGT\n>seq2\nGGCC\n",
    ".fa": ">seq1\nACGT\n",
    ".fastq": "@read1\nACGT\n+\nIIII\n",
    ".fq": "@read1\nAC\n+\nII\n",
    ".md": "# Title\n\n- item\n",
    ".R": "x <- c(1, 2)\n",
    ".vcf": "##fileformat=VCFv4.2\n",
}


@pytest.mark.parametrize(("suffix", "text"), TEXTS.items())
def test_load_text(tmp_path: Path, suffix: str, text: str) -> None:
    path = tmp_path / f"f{suffix}"
    path.write_text(text, encoding="utf-8")
    assert load(path) == text


# --- load(): unsupported -----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["image.png", "reads.fastq.gz", "README"])
def test_load_unsupported_suffix(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(b"\x89PNG")
    with pytest.raises(InvalidArgument) as info:
        load(path)
    message = str(info.value)
    assert repr(suffix_of(path)) in message
    assert "artifact.cache()" in message
    assert "artifact.open()" in message
    # Part of the exception tree, and still catchable as the builtin it refines.
    assert isinstance(info.value, BiolakeError)
    assert isinstance(info.value, ValueError)


def test_load_unsupported_suffix_does_not_guess(tmp_path: Path) -> None:
    # ".h5" is close to ".h5ad" but is a different format: no misleading suggestion.
    with pytest.raises(InvalidArgument) as info:
        load(tmp_path / "x.h5")
    assert "Did you mean" not in str(info.value)
    assert "loadable_suffixes()" in str(info.value)


def test_loadable_suffixes_cover_the_documented_formats() -> None:
    documented = {".csv", ".tsv", ".csv.gz", ".tsv.gz", ".parquet", ".h5ad", ".zarr", ".json"}
    documented |= {".yaml", ".yml", ".txt", ".fasta", ".fastq", ".md", ".r", ".gtf", ".bed"}
    assert documented <= set(loadable_suffixes())


# --- open_artifact() -----------------------------------------------------------------------------


def test_open_plain_file_streams(tmp_path: Path) -> None:
    path = tmp_path / "reads.fastq"
    data = b"@read\nACGT\n+\nIIII\n" * 100_000  # ~1.9 MB
    path.write_bytes(data)
    with open_artifact(path, ".fastq") as f:
        assert f.read(10) == data[:10]
        # Only a buffer's worth has been pulled from disk, not the whole file.
        assert f.tell() == 10
        assert f.raw.tell() < len(data)
        assert f.read(5) == data[10:15]
    assert f.closed


def test_open_unknown_suffix_gives_bytes(tmp_path: Path) -> None:
    path = tmp_path / "image.png"
    path.write_bytes(b"\x89PNG\r\n")
    with open_artifact(path, ".png") as f:
        assert f.read() == b"\x89PNG\r\n"


def test_open_folder_is_refused(tmp_path: Path) -> None:
    with (
        pytest.raises(InvalidArgument, match=r"folder.*artifact\.cache\(\)"),
        open_artifact(tmp_path, ""),
    ):
        pass


def test_open_h5ad_is_backed(tmp_path: Path) -> None:
    adata = small_adata()
    write_anndata(adata, tmp_path / "a.h5ad")
    with open_artifact(tmp_path / "a.h5ad", ".h5ad") as backed:
        assert backed.isbacked
        assert backed.shape == (3, 2)
        pd.testing.assert_frame_equal(backed.obs, adata.obs)
        np.testing.assert_array_equal(backed.X[1:3], adata.X[1:3])
        # the seed streams whatever open() gives: f.read(n) reads the file's bytes
        assert backed.read(8) == b"\x89HDF\r\n\x1a\n"
        assert backed.read(4) == (tmp_path / "a.h5ad").read_bytes()[8:12]
    assert not backed.file.is_open


def test_open_zarr_gives_group(tmp_path: Path) -> None:
    write_anndata(small_adata(), tmp_path / "a.zarr")
    with open_artifact(tmp_path / "a.zarr", ".zarr") as group:
        assert {"X", "obs", "var", "uns"} <= set(group.keys())
        assert group["X"].shape == (3, 2)
        assert group.attrs["encoding-type"] == "anndata"


def test_open_parquet_gives_parquet_file(tmp_path: Path) -> None:
    path = tmp_path / "d.parquet"
    write_dataframe(FRAME, path)
    with open_artifact(path, ".parquet") as parquet_file:
        assert parquet_file.metadata.num_rows == 3
        assert parquet_file.schema_arrow.names[:3] == ["sample", "reads", "gc"]
        table = parquet_file.read_row_group(0, columns=["reads"])
        assert table.column("reads").to_pylist() == [10, 20, 30]


# --- import cost -------------------------------------------------------------------------------


def test_import_loads_no_heavy_library() -> None:
    code = (
        "import sys, biolake.artifacts.loaders, biolake.artifacts.writers\n"
        "heavy = {'pandas', 'pyarrow', 'anndata', 'zarr', 'h5py', 'yaml'} & set(sys.modules)\n"
        "print(sorted(heavy))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
