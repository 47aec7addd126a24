"""The pipeline's FitContext: target batches and deterministic pool samples, computed
with one task per shard (each keeps its bottom-n rows by seeded doc_id hash; the driver
merges), so a sample never depends on sharding and never needs the corpus in memory."""

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


def _bottom(table: pa.Table, n_rows: int, seed: int) -> pa.Table:
    h = hash_strings(table.column("doc_id"), seed=seed)
    order = np.lexsort((np.arange(len(h)), h))[:n_rows]
    return table.take(pa.array(order)).append_column("__h", pa.array(h[order], pa.uint64()))


def sample_shard(task: SampleTask) -> pa.Table:
    if task.columns is not None:
        table = task.ref.narrow(list(task.columns)).select(["doc_id", "n_tokens"] + list(task.columns))
        return _bottom(table, task.n_rows, task.seed)
    views = [pa.Table.from_batches([v]) for v, _ in Ingest(task.source, task.schema).views(task.shard)]
    if not views:
        return pa.table({"doc_id": pa.array([], pa.string())})
    return _bottom(pa.concat_tables(views), task.n_rows, task.seed)


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
        tasks = [SampleTask(ref, shard, self.source, self.schema, n_rows, self.seed, columns)
                 for ref, shard in zip(self.refs, self.shards)]
        parts = [p for p in self.executor.map(sample_shard, tasks, desc="sample") if p.num_rows]
        if not parts:
            return pa.table({"doc_id": pa.array([], pa.string())})
        table = pa.concat_tables(parts, promote_options="default")
        h = table.column("__h").to_numpy()
        ids = np.asarray(table.column("doc_id").to_pylist(), dtype=object)
        id_rank = np.empty(len(ids), np.int64)
        id_rank[np.argsort(ids, kind="stable")] = np.arange(len(ids))
        order = np.lexsort((id_rank, h))[:n_rows]
        return table.take(pa.array(order)).drop_columns(["__h"])

