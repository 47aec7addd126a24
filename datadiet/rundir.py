"""The run directory: every path a run writes is confined to it, every file is written
atomically (temporary name in the same folder, then rename)."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from .errors import ConfigError

PARQUET_OPTIONS = dict(compression="zstd", compression_level=3, write_statistics=True)


class RunDir:
    """Paths under ``OUT``: data/, rejected/, quarantine/, scores/, fits/, .staging/.

    Example::

        run = RunDir("out/demo")
        run.write_table(table, run.path("data", "part-00000.parquet"))
    """

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root).resolve()

    def path(self, *parts: str | os.PathLike) -> Path:
        """A path inside the run directory (relative parts, or an absolute path already
        inside it); anything escaping it is refused."""
        candidate = self.root.joinpath(*parts).resolve()
        if candidate != self.root and self.root not in candidate.parents:
            raise ConfigError(f"refusing to write outside the output directory {self.root}: {candidate}")
        return candidate

    # -- named artifacts: every path a run writes is built here -------------------------

    def sidecar(self, scorer: str, fp: str, shard_key: str) -> Path:
        """``scores/<scorer>/<fp>/<shard>.parquet``: doc_id + one scorer's columns."""
        return self.path("scores", scorer, fp[:16], f"{shard_key}.parquet")

    def narrow_table(self, ingest_fp: str, shard_key: str) -> Path:
        """The ingest sidecar: doc_id, row, n_tokens, n_bytes, source of one shard."""
        return self.path("scores", "_ingest", ingest_fp[:16], f"{shard_key}.parquet")

    def shard_quarantine(self, ingest_fp: str, shard_key: str) -> Path:
        return self.path("scores", "_ingest", ingest_fp[:16], f"{shard_key}.quarantine.parquet")

    def fit_state(self, scorer: str, fp: str) -> Path:
        return self.path("fits", scorer, fp[:16])

    def select_dir(self, fp: str, step: str) -> Path:
        return self.path(".staging", "select", fp[:16], step)

    def select_state(self, fp: str, step: str, shard_key: str) -> Path:
        """Per-shard decision state of one select step (keep, reason, extras, order)."""
        return self.path(".staging", "select", fp[:16], step, f"{shard_key}.parquet")

    def rank_keys(self, fp: str, step: str, shard_key: str) -> Path:
        return self.path(".staging", "select", fp[:16], step, "keys", f"{shard_key}.parquet")

    def spill(self, fp: str, step: str, bucket: int, shard_key: str | None = None) -> Path:
        """A group step's spill bucket folder, or one shard's file in it."""
        folder = self.path(".staging", "select", fp[:16], step, "spill", f"bucket-{bucket:05d}")
        return folder if shard_key is None else folder / f"{shard_key}.parquet"

    def decided(self, fp: str, step: str, bucket: int | None = None) -> Path:
        folder = self.path(".staging", "select", fp[:16], step, "decided")
        return folder if bucket is None else folder / f"bucket-{bucket:05d}.parquet"

    def select_part(self, fp: str, step: str, kind: str, part: int, name: str | None = None) -> Path:
        """A multi-round select step's folder ``<kind>/part-<part>`` (files for one shard or
        hash partition), or the file ``<name>.parquet`` in it."""
        folder = self.path(".staging", "select", fp[:16], step, kind, f"part-{part:05d}")
        return folder if name is None else folder / f"{name}.parquet"

    def staged_output(self, write_fp: str, kind: str, index: int) -> Path:
        return self.path(".staging", "write", write_fp[:16], kind, f"part-{index:05d}.parquet")

    def output_file(self, kind: str, index: int) -> Path:
        """``data/``, ``rejected/`` or ``quarantine/`` part ``index``."""
        return self.path(kind, f"part-{index:05d}.parquet")

    @property
    def manifest(self) -> Path:
        return self.path("manifest.json")

    @property
    def report(self) -> Path:
        return self.path("report.html")

    @staticmethod
    def _tmp(target: Path) -> Path:
        target.parent.mkdir(parents=True, exist_ok=True)
        return target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.tmp")

    def write_table(self, table: pa.Table, target: Path, row_group_size: int = 4096,
                    metadata: dict | None = None) -> Path:
        target = self.path(target)
        tmp = self._tmp(target)
        if metadata:
            meta = dict(table.schema.metadata or {})
            meta.update({k.encode(): json.dumps(v).encode() for k, v in metadata.items()})
            table = table.replace_schema_metadata(meta)
        pq.write_table(table, tmp, row_group_size=row_group_size, **PARQUET_OPTIONS)
        os.replace(tmp, target)
        return target

    def writer(self, target: Path, schema: pa.Schema, row_group_size: int = 4096,
               plain_columns: Sequence[str] = ()) -> AtomicParquetWriter:
        return AtomicParquetWriter(self, target, schema, row_group_size, plain_columns)

    def write_json(self, obj, target: Path) -> Path:
        target = self.path(target)
        tmp = self._tmp(target)
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")
        os.replace(tmp, target)
        return target

    def write_text(self, text: str, target: Path) -> Path:
        target = self.path(target)
        tmp = self._tmp(target)
        tmp.write_text(text)
        os.replace(tmp, target)
        return target


class AtomicParquetWriter:
    """Streams batches to a temporary Parquet file and renames it into place on close.
    ``plain_columns`` (document text, unique ids) skip dictionary encoding, which such
    columns would only try and abandon, at the cost of hashing every value."""

    def __init__(self, run: RunDir, target: Path, schema: pa.Schema, row_group_size: int = 4096,
                 plain_columns: Sequence[str] = ()):
        self.target = run.path(target)
        self.tmp = RunDir._tmp(self.target)
        self.schema = schema
        self.row_group_size = row_group_size
        plain = set(plain_columns)
        encoding = {"use_dictionary": [f.name for f in schema if f.name not in plain]} if plain else {}
        self._writer = pq.ParquetWriter(self.tmp, schema, **PARQUET_OPTIONS, **encoding)

    def write(self, batch: pa.RecordBatch | pa.Table) -> None:
        table = batch if isinstance(batch, pa.Table) else pa.Table.from_batches([batch])
        self._writer.write_table(table.cast(self.schema), row_group_size=self.row_group_size)

    def close(self, metadata: dict | None = None) -> Path:
        if metadata:
            self._writer.add_key_value_metadata({k: json.dumps(v) for k, v in metadata.items()})
        self._writer.close()
        os.replace(self.tmp, self.target)
        return self.target

    def abort(self) -> None:
        self._writer.close()
        self.tmp.unlink(missing_ok=True)


def read_table(path: str | os.PathLike, columns: Sequence[str] | None = None) -> pa.Table:
    """One of a run's own Parquet files (a sidecar, narrow table, select state, staged
    piece), read single-threaded with ``ParquetFile``: for these small files about twice as
    fast as ``pq.read_table``, which sets up a dataset scan for each call."""
    with pq.ParquetFile(path) as f:
        return f.read(columns=list(columns) if columns is not None else None, use_threads=False)


def read_metadata(path: Path) -> dict:
    meta = pq.read_metadata(path).metadata or {}
    return {k.decode(): json.loads(v) for k, v in meta.items() if not k.startswith(b"ARROW")}
