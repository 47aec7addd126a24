"""Reader family: discover shards of an input and stream them as record batches.

A *shard* is one Dask task's worth of input: a whole file, or a range of row groups
(Parquet) or record batches (Arrow IPC) of a large one. Readers stream with bounded
memory and report bad rows instead of failing the shard.

Example::

    reader = get("reader", "parquet")()
    for shard in reader.discover(fs, "/data/a.parquet", "a.parquet", rows_per_shard=100_000):
        for item in reader.read(shard, batch_size=4096):
            ...  # item.batch (with item.rows: file row indices) or item.errors
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from ..params import Component


@dataclass(frozen=True)
class Shard:
    """One unit of input work. ``part`` is a (start, stop) range of row groups or record
    batches, or None for the whole file; ``first_row`` is its first row's index in the file."""

    reader: str
    path: str
    rel_path: str
    part: tuple[int, int] | None = None
    first_row: int = 0
    n_rows: int | None = None
    size: int = 0
    mtime: float = 0.0
    storage_options: dict = field(default_factory=dict, compare=False, hash=False)
    #: (attempts, backoff seconds) for transient read errors; see readers/retry.py
    retries: tuple[int, float] = field(default=(4, 0.5), compare=False, hash=False)
    payload: Any = field(default=None, compare=False, hash=False, repr=False)
    #: the shard's decoded size where the format records it (Parquet), else 0
    data_bytes: int = field(default=0, compare=False, hash=False)

    @property
    def key(self) -> str:
        """Stable identity of the shard's bytes: path, range, size and mtime."""
        from ..fingerprint import fingerprint

        return fingerprint(self.reader, self.rel_path, self.path, self.part, self.size, self.mtime)[:16]

    @property
    def label(self) -> str:
        return self.rel_path + (f"[{self.part[0]}:{self.part[1]}]" if self.part else "")


@dataclass
class ReadItem:
    """A good batch (``batch`` + ``rows``, the file row index of each row), bad rows
    (``errors``: (file row index, message, raw text)), or a part of the file that could
    not be read at all (``lost``: (first row or None, number of rows or None, message);
    None for the whole file when even its row count is unknown)."""

    batch: pa.RecordBatch | None = None
    rows: np.ndarray | None = None
    errors: list[tuple[int, str, str]] = field(default_factory=list)
    lost: tuple[int | None, int | None, str] | None = None


class Reader(Component):
    """Base of every reader; ``extensions`` maps file names to this reader."""

    extensions: tuple[str, ...] = ()

    def discover(self, fs, path: str, rel_path: str, rows_per_shard: int, storage_options: dict) -> list[Shard]:
        raise NotImplementedError

    def schema(self, fs, shard: Shard) -> pa.Schema:
        raise NotImplementedError

    def read(self, shard: Shard, batch_size: int, columns: list[str] | None = None,
             schema: pa.Schema | None = None, rows: tuple[int, int] | None = None) -> Iterator[ReadItem]:
        """Stream the shard. ``rows`` (first, last file row, inclusive) is a hint that only
        those rows are wanted; a reader may skip data outside it (Parquet skips row groups)."""
        raise NotImplementedError


def file_stat(fs, path: str) -> tuple[int, float]:
    info = fs.info(path)
    mtime = info.get("mtime") or info.get("LastModified") or info.get("created") or 0
    if hasattr(mtime, "timestamp"):
        mtime = mtime.timestamp()
    return int(info.get("size") or 0), float(mtime)


def open_fs(path: str, storage_options: dict | None = None, retries: tuple[int, float] | None = None):
    """(filesystem, path) of a path or URL; with ``retries`` (attempts, backoff) the
    filesystem retries transient errors."""
    import fsspec

    from .retry import RetryingFS

    fs, stripped = fsspec.core.url_to_fs(path, **(storage_options or {}))
    return (RetryingFS(fs, *retries) if retries else fs), stripped


def shard_fs(shard: Shard):
    """(retrying filesystem, path) to read ``shard`` with."""
    return open_fs(shard.path, shard.storage_options, shard.retries)


def batch_rows(start: int, n: int) -> np.ndarray:
    return np.arange(start, start + n, dtype=np.int64)
