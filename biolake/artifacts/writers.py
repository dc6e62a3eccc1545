"""Serialize in-memory objects for ``Artifact.from_dataframe`` / ``Artifact.from_anndata``.

DataFrames are stored as Parquet (typed, compressed, keeps the index); AnnData as .h5ad, or as
.zarr when the key asks for it. The writers only write to the path they are given: making the
write atomic (temp name, fsync, rename) is the storage layer's job, so callers pass a fresh
staging path. :func:`biolake.artifacts.loaders.load` reads every format written here back unchanged.

Heavy libraries are imported inside the functions, so importing this module costs nothing.
"""

from __future__ import annotations

import contextlib
import warnings
from collections import Counter
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from biolake.errors import InvalidArgument

__all__ = ["suffix_for_anndata", "suffix_for_dataframe", "write_anndata", "write_dataframe"]


def suffix_for_dataframe() -> Literal[".parquet"]:
    """Return the suffix a DataFrame artifact is stored under: always ``".parquet"``."""
    return ".parquet"


def suffix_for_anndata(key: str | None = None) -> Literal[".h5ad", ".zarr"]:
    """Return ``".zarr"`` when ``key`` ends in ``.zarr`` (or ``.zarr/``), else ``".h5ad"``.

    The key's suffix is not validated here: ``from_anndata(adata, key="x")`` stores .h5ad.
    """
    if key is not None and PurePosixPath(key).suffix.lower() == ".zarr":
        return ".zarr"
    return ".h5ad"


def write_dataframe(df: Any, path: Path) -> None:
    """Write ``df`` to ``path`` as Parquet, keeping its index.

    A RangeIndex is stored as metadata, any other index (named or not, MultiIndex) as columns;
    ``load()`` restores both. Non-string column labels (ints, tuples of a MultiIndex) are written
    as strings in the file and restored from the pandas metadata on load, so other Parquet readers
    see strings. Labels that cannot round-trip raise InvalidArgument: duplicates, or labels of
    mixed types (``[1, "1"]``, ``[None, "a"]``), since pyarrow would silently stringify them.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    _check_column_labels(df)
    try:
        # preserve_index=None keeps a RangeIndex as metadata (cheap) and stores any other index.
        table = pa.Table.from_pandas(df, preserve_index=None)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as e:
        raise InvalidArgument(
            f"Cannot store this DataFrame as Parquet: {e}. Give each column a single type, "
            "e.g. df[column] = df[column].astype(str)."
        ) from e
    pq.write_table(table, path)


def _check_column_labels(df: Any) -> None:
    import pandas as pd

    if not isinstance(df, pd.DataFrame):
        raise InvalidArgument(f"Expected a pandas DataFrame, got {type(df).__name__}.")
    # Compared as strings: that is how Parquet stores them, so 1 and "1" would collide there.
    counts = Counter(str(label) for label in df.columns)
    duplicates = sorted(label for label, n in counts.items() if n > 1)
    if duplicates:
        raise InvalidArgument(
            f"DataFrame column labels must be unique, found duplicates {duplicates}: "
            "rename them before saving."
        )
    for level in range(df.columns.nlevels):
        values = df.columns.get_level_values(level)
        if "mixed" in pd.api.types.infer_dtype(values, skipna=False):
            raise InvalidArgument(
                f"DataFrame column labels mix types ({list(values)!r}), which Parquet cannot "
                "store faithfully: use df.columns = df.columns.astype(str)."
            )


def write_anndata(adata: Any, path: Path) -> None:
    """Write ``adata`` to ``path``: a zarr folder when ``path`` ends in ``.zarr``, else .h5ad."""
    import anndata

    if not isinstance(adata, anndata.AnnData):
        raise InvalidArgument(f"Expected an AnnData object, got {type(adata).__name__}.")
    if Path(path).suffix.lower() == ".zarr":
        with _zarr_v3_settings():
            adata.write_zarr(path)
    else:
        adata.write_h5ad(path)


@contextlib.contextmanager
def _zarr_v3_settings() -> Iterator[None]:
    """Write zarr format 3 with sharding: the defaults anndata announces for its next release.

    Choosing them explicitly silences anndata's "will be the default" warnings and keeps stores
    written now the same as those written after an upgrade. anndata always consolidates metadata,
    which zarr 3 flags as not yet in the v3 spec; it is stored with ``must_understand: false`` so
    other readers ignore it, hence that one warning is filtered here. Both the settings override
    and catch_warnings are process-global: concurrent threads writing zarr see the same values.
    """
    import anndata

    if int(version("zarr").split(".")[0]) < 3:  # zarr 2 can only write format 2
        yield
        return
    wanted = {"zarr_write_format": 3, "auto_shard_zarr_v3": True}
    # Older anndata releases lack some of these settings (and do not warn about them).
    settings = {name: value for name, value in wanted.items() if hasattr(anndata.settings, name)}
    with anndata.settings.override(**settings), warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message="Consolidated metadata is currently not part", category=UserWarning
        )
        yield
