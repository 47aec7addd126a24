"""Arrow IPC reader (file or stream format), memory-mapped where the filesystem allows."""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa

from ..registry import register
from .base import Reader, ReadItem, Shard, batch_rows, file_stat, shard_fs
from .parquet import conform


def _open(fs, path):
    """(record-batch iterator factory, number of batches or None). Tries the IPC file
    format first, then the stream format (what ``datasets.save_to_disk`` writes)."""
    fh = fs.open(path, "rb")
    try:
        reader = pa.ipc.open_file(fh)
        return fh, reader.num_record_batches, reader.get_batch, reader.schema
    except pa.ArrowInvalid:
        fh.seek(0)
        stream = pa.ipc.open_stream(fh)
        return fh, None, iter(stream), stream.schema


@register("reader", "arrow")
class ArrowReader(Reader):
    """Reads Arrow IPC files (``.arrow``, ``.feather``, ``.ipc``); a random-access file with
    many record batches is split into shards of about ``rows_per_shard`` rows.

    Example::

        ArrowReader().discover(fs, "/data/x.arrow", "x.arrow", 100_000, {})
    """

    extensions = (".arrow", ".feather", ".ipc")

    def discover(self, fs, path, rel_path, rows_per_shard, storage_options):
        size, mtime = file_stat(fs, path)
        common = dict(reader="arrow", path=path, rel_path=rel_path, size=size, mtime=mtime,
                      storage_options=storage_options)
        try:
            fh, n_batches, get, _ = _open(fs, path)
        except Exception:
            return [Shard(**common)]
        with fh:
            if n_batches is None:
                return [Shard(**common)]
            shards, start, rows, first = [], 0, 0, 0
            for i in range(n_batches):
                rows += get(i).num_rows
                if rows >= rows_per_shard or i == n_batches - 1:
                    shards.append(Shard(part=(start, i + 1), first_row=first, n_rows=rows, **common))
                    first += rows
                    start, rows = i + 1, 0
        return shards or [Shard(part=(0, 0), n_rows=0, **common)]

    def schema(self, fs, shard: Shard) -> pa.Schema:
        fh, _, _, schema = _open(fs, shard.path)
        with fh:
            return schema

    def read(self, shard: Shard, batch_size: int, columns=None, schema=None, rows=None) -> Iterator[ReadItem]:
        fs, path = shard_fs(shard)
        try:
            fh, n_batches, get, _ = _open(fs, path)
        except Exception as exc:
            yield ReadItem(lost=(None, None, f"unreadable Arrow file {shard.rel_path}: {exc}"))
            return
        with fh:
            if n_batches is not None:
                start, stop = shard.part if shard.part else (0, n_batches)
                source = (get(i) for i in range(start, stop))
            else:
                source = get
            row = shard.first_row
            try:
                for big in source:
                    for offset in range(0, big.num_rows, batch_size):
                        batch = big.slice(offset, batch_size)
                        if schema is not None:
                            batch = conform(batch, schema)
                        yield ReadItem(batch=batch, rows=batch_rows(row, batch.num_rows))
                        row += batch.num_rows
            except Exception as exc:
                yield ReadItem(lost=(row, None, f"corrupt Arrow data in {shard.label} from row {row}: {exc}"))
