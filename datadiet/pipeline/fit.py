"""The pipeline's FitContext: target batches and deterministic pool samples, computed
with one task per shard (each keeps its bottom-n rows by seeded doc_id hash; the driver
merges), so a sample never depends on sharding and never needs the corpus in memory.

The hashes are uniform, so with the corpus's row count known (Parquet shards know theirs)
each shard returns only rows whose hash lies below a bound that ~2n rows of the whole
corpus fall under: the driver holds about 2n rows, whatever the corpus size or shard count.
Should fewer than n come back (many quarantined rows), the sample is redone without the
bound; either way it is exactly the bottom n."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from ..hashing import hash_strings
from ..readers.base import Shard
from ..readers.source import Source
from ..scorers.base import pick_target
from ..stages.ingest import Ingest
from ..stages.shard_ref import ShardRef


@dataclass
class SampleTask:
    ref: ShardRef
    shard: Shard
    source: Source
    schema: pa.Schema | None
    n_rows: int
    seed: int
    columns: list[str] | None = field(default=None)
    #: only rows whose hash is <= this bound (None: no bound)
    max_hash: int | None = field(default=None)


def _bottom(table: pa.Table, n_rows: int, seed: int, max_hash: int | None = None) -> pa.Table:
    h = hash_strings(table.column("doc_id"), seed=seed)
    order = np.lexsort((np.arange(len(h)), h))[:n_rows]
    if max_hash is not None:
        order = order[h[order] <= np.uint64(max_hash)]
    return table.take(pa.array(order)).append_column("__h", pa.array(h[order], pa.uint64()))


def sample_shard(task: SampleTask) -> pa.Table:
    if task.columns is not None:
        table = task.ref.narrow(list(task.columns)).select(["doc_id", "n_tokens"] + list(task.columns))
        return _bottom(table, task.n_rows, task.seed, task.max_hash)
    views = [pa.Table.from_batches([v]) for v, _ in Ingest(task.source, task.schema).views(task.shard)]
    if not views:
        return pa.table({"doc_id": pa.array([], pa.string())})
    return _bottom(pa.concat_tables(views), task.n_rows, task.seed, task.max_hash)


def hash_bound(n_rows: int, corpus_rows: int | None) -> int | None:
    """A hash bound about 2n of ``corpus_rows`` uniform hashes fall under (None: no bound)."""
    if not corpus_rows or corpus_rows <= 0:
        return None
    expected = 2 * n_rows + 10 * int(np.sqrt(n_rows)) + 64
    if expected >= corpus_rows:
        return None
    return int(2**64 * (expected / corpus_rows))


class PipelineFitContext:
    """FitContext over a planned pipeline. ``sample(n)`` returns scoring-view rows (text
    included); ``sample(n, columns=[...])`` returns doc_id, n_tokens and those score
    columns only, read from sidecars without touching the text."""

    def __init__(self, executor, refs, shards, source, schema, targets: dict[str, Source], seed: int):
        self.executor = executor
        self.refs = refs
        self.shards = shards
        self.source = source
        self.schema = schema
        self.targets = targets
        self.seed = seed

    def target(self, name: str | None = None) -> Iterator[pa.RecordBatch]:
        source = pick_target(self.targets, name)
        ingest = Ingest(source)
        for shard in source.shards():
            for view, _ in ingest.views(shard):
                yield view

    def sample(self, n_rows: int, columns: list[str] | None = None) -> pa.Table:
        sizes = [getattr(shard, "n_rows", None) for shard in self.shards]
        bound = hash_bound(n_rows, sum(sizes) if all(s is not None for s in sizes) else None)
        parts = self._sample_parts(n_rows, columns, bound)
        if bound is not None and sum(p.num_rows for p in parts) < n_rows:
            parts = self._sample_parts(n_rows, columns, None)
        if not parts:
            return pa.table({"doc_id": pa.array([], pa.string())})
        table = pa.concat_tables(parts, promote_options="default")
        h = table.column("__h").to_numpy()
        ids = np.asarray(table.column("doc_id").to_pylist(), dtype=object)
        id_rank = np.empty(len(ids), np.int64)
        id_rank[np.argsort(ids, kind="stable")] = np.arange(len(ids))
        order = np.lexsort((id_rank, h))[:n_rows]
        return table.take(pa.array(order)).drop_columns(["__h"])


    def _sample_parts(self, n_rows: int, columns: list[str] | None, bound: int | None) -> list[pa.Table]:
        tasks = [SampleTask(ref, shard, self.source, self.schema, n_rows, self.seed, columns, bound)
                 for ref, shard in zip(self.refs, self.shards)]
        return [p for p in self.executor.map(sample_shard, tasks, desc="sample") if p.num_rows]
