"""Duplicate ids: with ``source.id_column`` every id must be unique, since doc ids key the
sidecars, selections and tie-breaks. Checked after ingest, from the narrow tables, as
Dask tasks: each shard spreads its (id, shard, row) into hash buckets of ~32 MB, each
bucket finds its repeated ids, and the run stops with an InputError naming the id and
both files and rows. The driver never holds more than a few duplicates. Ids that fit one
bucket are checked by a single task that runs beside selection and the write; the runner
waits for it before publishing anything, and before reporting a failed selection.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import InputError
from ..hashing import hash_strings
from ..readers.base import Shard
from ..rundir import RunDir, read_table
from .shard_ref import ShardRef

BUCKET_BYTES = 32 << 20
ROW_BYTES = 48  # an id string of ~30 bytes plus shard and row
MAX_REPORTED = 5


@dataclass
class IdPartitionTask:
    ref: ShardRef
    n_buckets: int


@dataclass
class IdBucketTask:
    root: str
    ingest_fp: str
    n_buckets: int
    bucket: int


def _bucket_dir(run: RunDir, ingest_fp: str, n_buckets: int, bucket: int):
    return run.path(".staging", "ids", f"{ingest_fp[:16]}-{n_buckets}", f"bucket-{bucket:05d}")


def partition_ids(task: IdPartitionTask) -> int:
    """Writes this shard's (doc_id, shard, row) into its hash buckets; returns its rows."""
    run = RunDir(task.ref.root)
    table = _id_rows(task.ref)
    bucket = hash_strings(table.column("doc_id"), seed=17) % np.uint64(task.n_buckets)
    for b in np.unique(bucket).tolist():
        part = table.filter(pa.array(bucket == b))
        run.write_table(part, _bucket_dir(run, task.ref.ingest_fp, task.n_buckets, b) / f"{task.ref.key}.parquet")
    return table.num_rows


def _id_rows(ref: ShardRef) -> pa.Table:
    """(doc_id, shard, row) of one shard, from its narrow table."""
    narrow = read_table(RunDir(ref.root).narrow_table(ref.ingest_fp, ref.key), columns=["doc_id", "row"])
    return pa.table({"doc_id": narrow.column("doc_id"),
                     "shard": pa.array(np.full(narrow.num_rows, ref.index, np.int32)),
                     "row": narrow.column("row")})


def bucket_duplicates(task: IdBucketTask) -> list[dict]:
    """The first MAX_REPORTED ids of one bucket that occur more than once, each with every
    (shard, row) holding it, and how many duplicated ids the bucket has in all."""
    folder = _bucket_dir(RunDir(task.root), task.ingest_fp, task.n_buckets, task.bucket)
    files = sorted(folder.glob("*.parquet")) if folder.exists() else []
    if not files:
        return []
    return _duplicates(pa.concat_tables([read_table(f) for f in files]))


@dataclass
class AllIdsTask:
    refs: list[ShardRef]


def all_duplicates(task: AllIdsTask) -> list[dict]:
    """As :func:`bucket_duplicates`, for a corpus whose ids fit one bucket: read straight
    from the narrow tables, without the partition round."""
    return _duplicates(pa.concat_tables([_id_rows(ref) for ref in task.refs])) if task.refs else []


def _duplicates(rows: pa.Table) -> list[dict]:
    counts = pc.value_counts(rows.column("doc_id").combine_chunks())
    repeated = counts.filter(pc.greater(counts.field("counts"), 1)).field("values")
    if not len(repeated):
        return []
    ids = repeated.take(pc.sort_indices(repeated))
    out = []
    for doc_id in ids.slice(0, MAX_REPORTED).to_pylist():
        hits = rows.filter(pc.equal(rows.column("doc_id"), doc_id))
        places = sorted(zip(hits.column("shard").to_pylist(), hits.column("row").to_pylist()))
        out.append({"id": doc_id, "places": places, "total": len(ids)})
    return out


def start_unique_ids_check(executor, run: RunDir, refs: list[ShardRef], shards: list[Shard], total_rows: int,
                     id_column: str) -> Callable[[], None]:
    """Starts the check and returns what waits for it: a call that raises InputError naming
    the first duplicated id (in id order) and where it occurs. Ids that fit one bucket are
    checked by one task that runs beside the stages that follow; more take two rounds first.
    """
    n_buckets = max(1, min(max(len(refs), 1) * 4, -(-total_rows * ROW_BYTES // BUCKET_BYTES)))
    if not refs:
        return lambda: None
    if n_buckets == 1:
        pending = executor.submit(all_duplicates, AllIdsTask(refs), desc="ids check")
        return lambda: _raise_duplicates([pending.result()], shards, id_column)
    executor.map(partition_ids, [IdPartitionTask(ref, n_buckets) for ref in refs], desc="ids partition",
                 labels=[s.label for s in shards])
    found = executor.map(bucket_duplicates, [IdBucketTask(str(run.root), refs[0].ingest_fp, n_buckets, b)
                                             for b in range(n_buckets)], desc="ids check")
    return lambda: _raise_duplicates(found, shards, id_column)


def _raise_duplicates(found: list[list[dict]], shards: list[Shard], id_column: str) -> None:
    duplicates = sorted((d for bucket in found for d in bucket), key=lambda d: d["id"])
    if not duplicates:
        return
    first = duplicates[0]
    where = " and ".join(f"{shards[s].rel_path} row {r}" for s, r in first["places"][:3])
    more = len(first["places"]) - 3
    total = sum(bucket[0]["total"] for bucket in found if bucket)
    raise InputError(
        f"duplicate id {first['id']!r} in column {id_column!r}: {where}"
        f"{f' (and {more} more rows)' if more > 0 else ''}; {total} ids occur more than once. Ids must be "
        "unique: deduplicate the input, or drop source.id_column to derive ids from path and row")
