"""A bounded sample of a corpus for planning: rows spread over the first part of shards
spread evenly over the input, read through the real ingest (same doc ids, token counts and quarantine rules
as a run), and row counts from metadata where the format has them.

Example::

    sample = read_sample(source, shards, schema, n_rows=512)
    sample.view            # scoring view (doc_id, text, n_tokens, ...) of the sampled good rows
    sample.tokens_per_row, sample.good_fraction
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..readers.base import Shard, open_fs
from ..stages.ingest import Ingest

MAX_SHARDS = 16
JSONL_PROBE_BYTES = 1 << 20
SPAN = 4


@dataclass
class CorpusSample:
    """Sampled good rows (``view``) and what was read to get them."""

    view: pa.Table
    rows_read: int
    quarantined: int
    shards_read: int
    text_bytes: int

    @property
    def good_fraction(self) -> float:
        return (self.rows_read - self.quarantined) / self.rows_read if self.rows_read else 1.0

    @property
    def tokens_per_row(self) -> float:
        n = self.view.num_rows
        return float(np.sum(self.view.column("n_tokens").to_numpy())) / n if n else 0.0


def spread(shards: list[Shard], k: int) -> list[Shard]:
    """``k`` shards evenly spaced over the list (all when there are fewer)."""
    if len(shards) <= k:
        return list(shards)
    return [shards[int(i * len(shards) / k)] for i in range(k)]


def read_sample(source, shards: list[Shard], schema: pa.Schema | None, n_rows: int = 512,
                max_shards: int = MAX_SHARDS, span: int = SPAN) -> CorpusSample:
    """About ``n_rows`` rows from ``k`` spread shards: of each, ``n_rows / k`` rows evenly
    spaced over its first ``span`` times as many (files are often ordered by topic or length)."""
    chosen = spread(shards, max_shards)
    per_shard = max(1, math.ceil(n_rows / max(1, len(chosen))))
    ingest = Ingest(source, schema)
    columns = None if any(s.reader == "jsonl" for s in chosen) else source.required_columns()
    views, read, quarantined = [], 0, 0
    for shard in chosen:
        window = per_shard * span if shard.n_rows is None else min(shard.n_rows, per_shard * span)
        good, seen = [], 0
        for item in ingest.run(shard, columns=columns):
            bad = sum((q["n_rows"] or 0) for q in item.quarantine)
            quarantined += bad
            seen += bad
            if item.view is not None and seen < window:
                take = min(item.view.num_rows, window - seen)
                good.append(item.view.slice(0, take))
                seen += take
            if seen >= window:
                break
        read += seen
        if good:
            table = pa.Table.from_batches(good)
            step = max(1, table.num_rows // per_shard)
            views.append(table.take(pa.array(np.arange(0, table.num_rows, step)[:per_shard])))
    view = pa.concat_tables(views) if views else pa.table({"doc_id": pa.array([], pa.string()),
                                                           "text": pa.array([], pa.string()),
                                                           "n_tokens": pa.array([], pa.int64())})
    text_bytes = int(pc.sum(pc.binary_length(view.column("text"))).as_py() or 0) if len(view) else 0
    return CorpusSample(view, read, quarantined, len(chosen), text_bytes)


def jsonl_rows_estimate(shard: Shard) -> float:
    """Rows of a JSONL file from the line count of its first MiB, scaled by its size."""
    from ..readers.jsonl import _compression

    fs, path = open_fs(shard.path, shard.storage_options)
    with fs.open(path, "rb", compression=_compression(shard.path)) as fh:
        head = fh.read(JSONL_PROBE_BYTES)
    lines = head.count(b"\n") + (0 if head.endswith(b"\n") or not head else 1)
    if len(head) < JSONL_PROBE_BYTES:
        return float(lines)  # the whole file was read
    compressed = 4.0 if _compression(shard.path) else 1.0  # assume ~4x for gzip text
    return lines * shard.size * compressed / len(head)


def estimate_rows(shards: list[Shard], sample: CorpusSample) -> tuple[float, int]:
    """(rows of every shard, how many shards' counts are estimates): exact where the reader
    knows them (Parquet and Arrow metadata), else from a JSONL line count or sampled bytes."""
    total, estimated = 0.0, 0
    bytes_per_row = sample.text_bytes / sample.view.num_rows if sample.view.num_rows else 1000.0
    for shard in shards:
        if shard.n_rows is not None:
            total += shard.n_rows
            continue
        estimated += 1
        if shard.reader == "jsonl":
            total += jsonl_rows_estimate(shard)
        else:
            total += shard.size / max(1.0, bytes_per_row)
    return total, estimated
