"""Read stored artifacts back: ``load()`` into memory and ``open_artifact()`` for streaming.

Both are table-driven: one dict maps a (lower-case) suffix to the function that reads it, so adding
a format is one line and an unknown suffix is one clear error. Nothing here touches the database;
callers pass a local path (``artifact.cache()``) and the artifact's suffix.

Heavy libraries (pandas, pyarrow, anndata, zarr, yaml) are imported inside the function that uses
them, so importing this module costs nothing.

    >>> df = load(Path("counts.csv.gz"))          # pandas DataFrame
    >>> with open_artifact(Path("big.h5ad"), ".h5ad") as adata:
    ...     adata.shape                             # backed AnnData, X stays on disk
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from biolake.artifacts.writers import (
    suffix_for_anndata,
    suffix_for_dataframe,
    write_anndata,
    write_dataframe,
)
from biolake.errors import InvalidArgument

__all__ = [
    "TEXT_SUFFIXES",
    "load",
    "loadable_suffixes",
    "open_artifact",
    "suffix_for_anndata",
    "suffix_for_dataframe",
    "suffix_of",
    "write_anndata",
    "write_dataframe",
]

# Compression suffixes that belong to the suffix before them: "reads.fastq.gz" is ".fastq.gz".
_COMPRESSION_SUFFIXES = frozenset({".gz", ".bz2", ".xz", ".zst"})
# A real format suffix is short and starts with a letter; this keeps "run.2024.gz" at ".gz".
_FORMAT_SUFFIX = re.compile(r"^\.[A-Za-z][A-Za-z0-9]{0,9}$")

# Plain-text formats load as ``str``; the sequence/alignment formats are text too, and a string is
# what a scientist would hand to a parser (e.g. io.StringIO into Bio.SeqIO).
TEXT_SUFFIXES = frozenset(
    {
        ".txt", ".text", ".md", ".rst", ".log",
        ".fasta", ".fa", ".fna", ".faa", ".fastq", ".fq",
        ".sam", ".bed", ".gtf", ".gff", ".gff3", ".vcf",
        ".py", ".r", ".sh", ".sql", ".ini", ".cfg",
    }
)  # fmt: skip


def suffix_of(path: Path | str) -> str:
    """Return the storage suffix of ``path``, keeping compression: ``"a.csv.gz"`` -> ``".csv.gz"``.

    Only a compression suffix (``.gz``, ``.bz2``, ``.xz``, ``.zst``) joins the one before it, so
    ``"sample.v1.csv"`` is ``".csv"``, not ``".v1.csv"``. Case is preserved (``".R"``); lookups
    lower-case it. A path without a suffix gives ``""``.
    """
    suffixes = _suffixes(os.fspath(path))
    if not suffixes:
        return ""
    last = suffixes[-1]
    if (
        len(suffixes) >= 2
        and last.lower() in _COMPRESSION_SUFFIXES
        and _FORMAT_SUFFIX.match(suffixes[-2])
    ):
        return suffixes[-2] + last
    return last


def _suffixes(path: str) -> list[str]:
    """``PurePath(path).suffixes`` without building a Path (this runs once per saved file)."""
    name = path.rstrip("/").rpartition("/")[2]
    if name.endswith("."):
        return []
    return ["." + s for s in name.lstrip(".").split(".")[1:]]


# --- load(): suffix -> in-memory object ---------------------------------------------------------


def _read_delimited(path: Path, *, sep: str, gzip: bool) -> Any:
    import pandas as pd

    # Compression is explicit rather than inferred from the file name: a cached copy may be
    # named after its uid, so the artifact's suffix is the only reliable signal.
    return pd.read_csv(path, sep=sep, compression="gzip" if gzip else None)


def _load_parquet(path: Path) -> Any:
    import pandas as pd

    # pyarrow restores the index (named, RangeIndex, MultiIndex) from the pandas metadata that
    # write_dataframe stored; a folder of Parquet parts loads as one frame.
    return pd.read_parquet(path, engine="pyarrow")


def _load_h5ad(path: Path) -> Any:
    import anndata

    return anndata.read_h5ad(path)


def _load_zarr(path: Path) -> Any:
    import anndata
    import zarr

    # read_zarr on a zarr store that AnnData did not write fails deep inside anndata; say what
    # the store is and what to do instead.
    encoding = zarr.open_group(path, mode="r").attrs.get("encoding-type")
    if encoding != "anndata":
        raise InvalidArgument(
            f"{path} is a zarr store but not an AnnData one (encoding-type={encoding!r}), "
            "so load() cannot read it: use artifact.open() to get the zarr group."
        )
    return anndata.read_zarr(path)


def _load_json(path: Path) -> Any:
    return json.loads(path.read_bytes())  # bytes: json detects UTF-8/16/32 itself


def _load_yaml(path: Path) -> Any:
    import yaml

    with path.open("rb") as f:
        return yaml.safe_load(f)  # safe_load: a stored file must never run code when loaded


def _load_text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


Loader = Callable[[Path], Any]

_LOADERS: dict[str, Loader] = {
    ".csv": lambda p: _read_delimited(p, sep=",", gzip=False),
    ".csv.gz": lambda p: _read_delimited(p, sep=",", gzip=True),
    ".tsv": lambda p: _read_delimited(p, sep="\t", gzip=False),
    ".tsv.gz": lambda p: _read_delimited(p, sep="\t", gzip=True),
    ".parquet": _load_parquet,
    ".h5ad": _load_h5ad,
    ".zarr": _load_zarr,
    ".json": _load_json,
    ".yaml": _load_yaml,
    ".yml": _load_yaml,
    **dict.fromkeys(TEXT_SUFFIXES, _load_text),
}


def loadable_suffixes() -> list[str]:
    """Return the suffixes ``load()`` understands, sorted (lower case)."""
    return sorted(_LOADERS)


def load(path: Path | str, suffix: str | None = None) -> Any:
    """Load the local file or folder at ``path`` into memory, chosen by its suffix.

    ``suffix`` defaults to :func:`suffix_of` ``(path)``; pass the artifact's suffix when the local
    name does not carry it. Tables (.csv, .tsv, .csv.gz, .tsv.gz, .parquet) give a pandas
    DataFrame, .h5ad and AnnData .zarr give AnnData, .json/.yaml/.yml give Python objects, text
    formats (.txt, .fasta, .fastq, .md, ...) give ``str``. Anything else raises InvalidArgument.

        >>> load(Path("samples.tsv")).columns.tolist()
        ['sample', 'condition']
    """
    path = Path(path)
    suffix = suffix_of(path) if suffix is None else suffix
    loader = _LOADERS.get(suffix.lower())
    if loader is None:
        if path.is_dir():
            raise InvalidArgument(
                f"load() cannot read a folder with suffix {suffix or '(none)'!r}: use "
                "artifact.cache() for its local path and read the files inside it."
            )
        raise _unsupported(suffix)
    return loader(path)


def _unsupported(suffix: str) -> InvalidArgument:
    # No "Did you mean": an artifact's suffix is a fact about its file, not a typo, and the
    # closest known suffix (".fastq" for ".fastq.gz", ".h5ad" for ".h5") would mislead.
    shown = repr(suffix) if suffix else "'' (no suffix)"
    return InvalidArgument(
        f"load() cannot read suffix {shown} (it reads the suffixes listed by "
        "biolake.artifacts.loaders.loadable_suffixes()). Use artifact.cache() for a local path "
        "to read it with your own tools, or artifact.open() to stream its bytes."
    )


# --- open_artifact(): suffix -> context manager for streaming ------------------------------------


@contextlib.contextmanager
def _open_bytes(path: Path) -> Iterator[Any]:
    if path.is_dir():
        raise InvalidArgument(
            f"{path} is a folder, which open() cannot stream as bytes: "
            "use artifact.cache() and read the files inside it."
        )
    # A buffered binary handle: read(n) pulls n bytes from disk, never the whole file.
    with path.open("rb") as f:
        yield f


@contextlib.contextmanager
def _open_h5ad(path: Path) -> Iterator[Any]:
    import anndata

    with path.open("rb") as raw:
        # backed="r": obs/var are in memory, X stays in the HDF5 file until sliced.
        adata = anndata.read_h5ad(path, backed="r")
        try:
            # The API contract streams an .h5ad artifact with ``f.read(1000)``: the backed
            # AnnData also reads the file's bytes (AnnData has no ``read`` of its own).
            adata.read = raw.read
            yield adata
        finally:
            adata.file.close()


@contextlib.contextmanager
def _open_zarr(path: Path) -> Iterator[Any]:
    import zarr

    # A local zarr group holds no open file handles, so there is nothing to close on exit.
    yield zarr.open_group(path, mode="r")


@contextlib.contextmanager
def _open_parquet(path: Path) -> Iterator[Any]:
    import pyarrow.parquet as pq

    # ParquetFile reads only the footer up front; row groups are read on demand.
    with pq.ParquetFile(path) as parquet_file:
        yield parquet_file


Opener = Callable[[Path], contextlib.AbstractContextManager[Any]]

_OPENERS: dict[str, Opener] = {
    ".h5ad": _open_h5ad,
    ".zarr": _open_zarr,
    ".parquet": _open_parquet,
}


def open_artifact(path: Path | str, suffix: str) -> contextlib.AbstractContextManager[Any]:
    """Open the local file at ``path`` for streaming; use it as a context manager.

    Yields a backed AnnData for .h5ad (closed on exit; its ``read(n)`` streams the file's
    bytes, as for any file), a read-only zarr group for .zarr, a
    ``pyarrow.parquet.ParquetFile`` for .parquet (closed on exit), and a binary file object for
    every other file, whose ``read(n)`` reads ``n`` bytes at a time.

        >>> with open_artifact(Path("reads.fastq.gz"), ".fastq.gz") as f:
        ...     header = f.read(2)
    """
    path = Path(path)
    opener = _OPENERS.get(suffix.lower(), _open_bytes)
    return opener(path)
