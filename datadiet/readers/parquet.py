"""Parquet reader: one shard per group of row groups, streamed batch by batch.

Batches are decoded by Arrow's dataset scanner (a fragment of the shard's row groups),
which reads text columns about 1.6x as fast as ``ParquetFile.iter_batches``; its batches
stop at row-group ends, so they are joined back into batches of exactly ``batch_size``."""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from ..registry import register
from .base import Reader, ReadItem, Shard, batch_rows, file_stat, shard_fs


@register("reader", "parquet")
class ParquetReader(Reader):
    """Reads ``.parquet`` files; a file with many row groups is split into shards of about
    ``rows_per_shard`` rows. A file whose footer cannot be read becomes one unreadable
    shard, quarantined whole at read time.

    Example::

        ParquetReader().discover(fs, "/data/x.parquet", "x.parquet", 100_000, {})
    """

    extensions = (".parquet", ".pq")

    def discover(self, fs, path, rel_path, rows_per_shard, storage_options):
        size, mtime = file_stat(fs, path)
        common = dict(reader="parquet", path=path, rel_path=rel_path, size=size, mtime=mtime,
                      storage_options=storage_options)
        try:
            with fs.open(path, "rb") as fh:
                meta = pq.ParquetFile(fh).metadata
        except Exception:
            return [Shard(**common)]  # unreadable: read() reports it
        shards, start, rows, first, nbytes = [], 0, 0, 0, 0
        for i in range(meta.num_row_groups):
            rows += meta.row_group(i).num_rows
            nbytes += meta.row_group(i).total_byte_size
            if rows >= rows_per_shard or i == meta.num_row_groups - 1:
                shards.append(Shard(part=(start, i + 1), first_row=first, n_rows=rows, data_bytes=nbytes, **common))
                first += rows
                start, rows, nbytes = i + 1, 0, 0
        return shards or [Shard(part=(0, 0), n_rows=0, **common)]

    def schema(self, fs, shard: Shard) -> pa.Schema:
        with fs.open(shard.path, "rb") as fh:
            return pq.ParquetFile(fh).schema_arrow

    def read(self, shard: Shard, batch_size: int, columns=None, schema=None, rows=None) -> Iterator[ReadItem]:
        fs, path = shard_fs(shard)
        try:
            fh = fs.open(path, "rb")
            whole = ds.ParquetFileFormat().make_fragment(fh)
            whole.ensure_complete_metadata()
            meta, names = whole.metadata, whole.physical_schema.names
        except Exception as exc:
            yield ReadItem(lost=(None, None, f"unreadable Parquet file {shard.rel_path}: {exc}"))
            return
        with fh:
            groups = list(range(*shard.part)) if shard.part else list(range(meta.num_row_groups))
            row = shard.first_row
            if rows is not None:
                groups, row = _overlapping(meta, groups, row, rows)
            wanted = [c for c in columns if c in names] if columns else None
            if not groups:  # an empty file, or no row group holds the wanted rows
                return
            try:
                # make_fragment(row_groups=...) reads them in set order; subset() sorts them
                scanned = whole.subset(row_group_ids=groups).to_batches(batch_size=batch_size, columns=wanted,
                                                                        use_threads=False)
                for batch in exact_batches(scanned, batch_size):
                    if schema is not None:
                        batch = conform(batch, schema)
                    yield ReadItem(batch=batch, rows=batch_rows(row, batch.num_rows))
                    row += batch.num_rows
            except Exception as exc:
                left = shard.first_row + shard.n_rows - row if shard.n_rows is not None else None
                yield ReadItem(lost=(row, left, f"corrupt Parquet data in {shard.label} from row {row}: {exc}"))


def exact_batches(batches: Iterator[pa.RecordBatch], size: int) -> Iterator[pa.RecordBatch]:
    """``batches`` re-cut into batches of exactly ``size`` rows (the last one shorter);
    a batch is copied only where it is joined to the next."""
    pending: list[pa.RecordBatch] = []
    count = 0
    for batch in batches:
        if not pending and batch.num_rows == size or not batch.num_columns:
            yield batch
            continue
        pending.append(batch)
        count += batch.num_rows
        while count >= size:
            joined = pa.Table.from_batches(pending).combine_chunks()
            yield joined.slice(0, size).to_batches()[0]
            rest = joined.slice(size)
            pending, count = rest.to_batches(), rest.num_rows
    if count:
        yield pa.Table.from_batches(pending).combine_chunks().to_batches()[0]


def _overlapping(meta, groups: list[int], first_row: int, rows: tuple[int, int]) -> tuple[list[int], int]:
    """The row groups holding file rows ``rows[0]..rows[1]``, and the first one's first row."""
    keep, start, row = [], None, first_row
    for g in groups:
        n = meta.row_group(g).num_rows
        if row + n > rows[0] and row <= rows[1]:
            keep.append(g)
            start = row if start is None else start
        row += n
    return keep, (first_row if start is None else start)


def conform(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """Reorder/cast ``batch`` to ``schema``; missing columns become nulls."""
    if batch.schema.equals(schema):
        return batch
    arrays = []
    for f in schema:
        idx = batch.schema.get_field_index(f.name)
        if idx < 0:
            arrays.append(pa.nulls(batch.num_rows, f.type))
        else:
            col = batch.column(idx)
            arrays.append(col if col.type == f.type else col.cast(f.type))
    return pa.RecordBatch.from_arrays(arrays, schema=schema)
