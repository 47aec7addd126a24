"""Reader for an in-memory ``pyarrow.Table`` or ``datasets.Dataset`` given to the Python API;
shards are zero-copy row slices shipped to the workers."""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa

from ..registry import register
from .base import Reader, ReadItem, Shard, batch_rows


def as_table(data) -> pa.Table:
    if isinstance(data, pa.Table):
        return data
    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data])
    table = getattr(data, "data", None)  # datasets.Dataset
    table = getattr(table, "table", table)
    if isinstance(table, pa.Table):
        indices = getattr(data, "_indices", None)
        if indices is not None:  # a shuffled/selected view: materialise its rows in order
            table = table.take(indices.column(0))
        return table
    raise TypeError(f"expected a pyarrow.Table or datasets.Dataset, got {type(data).__name__}")


@register("reader", "memory")
class MemoryReader(Reader):
    """Slices an in-memory table into shards; doc ids derive from ``name`` and the row.

    Example::

        MemoryReader().shards_for(table, name="table", rows_per_shard=50_000)
    """

    def shards_for(self, table: pa.Table, name: str, rows_per_shard: int) -> list[Shard]:
        from ..fingerprint import table_fingerprint

        digest = table_fingerprint(table)[:16]
        shards = []
        for start in range(0, max(table.num_rows, 1), rows_per_shard):
            part = table.slice(start, rows_per_shard)
            shards.append(Shard(reader="memory", path=f"memory:{digest}", rel_path=name,
                                part=(start, start + part.num_rows), first_row=start,
                                n_rows=part.num_rows, payload=part))
        return shards

    def schema(self, fs, shard: Shard) -> pa.Schema:
        return shard.payload.schema

    def read(self, shard: Shard, batch_size: int, columns=None, schema=None, rows=None) -> Iterator[ReadItem]:
        row = shard.first_row
        for batch in shard.payload.to_batches(max_chunksize=batch_size):
            yield ReadItem(batch=batch, rows=batch_rows(row, batch.num_rows))
            row += batch.num_rows
