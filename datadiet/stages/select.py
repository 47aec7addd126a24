"""Select stage: the filter and group engines and the per-shard decision state.

- consecutive RowFilters run in one task per shard;
- a GroupSelector hash-partitions surviving rows by its group column into buckets (one
  task per shard), decides each bucket (one task per bucket; a group is never split),
  and the decisions flow back to their shards;
- the Ranker engine (the budget) is in stages/rank.py, the Orderer engine (curricula) in
  stages/curriculum.py.

Per-shard state files (``RunDir.select_state``) hold ``keep``, ``reason`` and extra
decision columns, row-aligned with the shard's narrow table; a ranker adds ``order``
(global rank of kept rows), ``bytes_before`` (the writer's layout) and ``repeat``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..hashing import hash_strings
from ..rundir import RunDir, read_table
from ..select.base import Budget, GroupSelector, Orderer, RowFilter, Selector
from .engine import engine
from .score import ingest_paths
from .shard_ref import ShardRef

DIGIT_BITS = 16
GATHER_LIMIT = 1_000_000
STATE_BASE = [("keep", pa.bool_()), ("reason", pa.string())]


def state_schema(extra: dict[str, pa.DataType]) -> pa.Schema:
    return pa.schema(STATE_BASE + list(extra.items()))


def state_path(run: RunDir, fp: str, step: str, shard_key: str) -> Path:
    return run.select_state(fp, step, shard_key)


@dataclass
class StepTask:
    ref: ShardRef
    fp: str
    prev: str | None
    step: str
    selectors: list[Selector] = field(default_factory=list)
    seed: int = 0
    #: extra decision columns (name -> Arrow type), e.g. duplicate_of
    extra: dict = field(default_factory=dict)
    #: engine options: buckets, sizes, unit, boundary
    opts: dict = field(default_factory=dict)


def load_state(run: RunDir, task: StepTask, n: int, extra: dict) -> pa.Table:
    if task.prev is None:
        cols = {"keep": pa.array(np.ones(n, dtype=bool)), "reason": pa.nulls(n, pa.string())}
        cols.update({k: pa.nulls(n, t) for k, t in extra.items()})
        return pa.table(cols, schema=state_schema(extra))
    table = read_table(state_path(run, task.fp, task.prev, task.ref.key))
    for k, t in extra.items():
        if k not in table.column_names:
            table = table.append_column(k, pa.nulls(n, t))
    return table


def needed_columns(selectors: list[Selector]) -> list[str]:
    cols = []
    for sel in selectors:
        cols += sel.columns()
        if isinstance(sel, GroupSelector):
            cols.append(sel.group_by())
    return list(dict.fromkeys(cols))


def run_filters(task: StepTask) -> dict:
    """RowFilters on one shard: the first failing filter names the reason."""
    run = RunDir(task.ref.root)
    narrow = task.ref.narrow(needed_columns(task.selectors))
    state = load_state(run, task, narrow.num_rows, task.extra)
    keep = state.column("keep").to_numpy(zero_copy_only=False).copy()
    reasons = state.column("reason").to_pylist()
    for sel in task.selectors:
        alive = np.flatnonzero(keep)
        if not len(alive):
            break
        ok, why = sel.keep(narrow.take(pa.array(alive)))
        ok = np.asarray(ok, dtype=bool)
        for j in np.flatnonzero(~ok).tolist():
            reasons[alive[j]] = why[j] or f"{sel.registry_name}"
        keep[alive[~ok]] = False
    state = state.set_column(0, "keep", pa.array(keep)).set_column(1, "reason", pa.array(reasons, pa.string()))
    run.write_table(state, state_path(run, task.fp, task.step, task.ref.key))
    return {"alive": int(keep.sum())}


# -- group selectors ----------------------------------------------------------------------


def _bucket_of(values: pa.ChunkedArray, n_buckets: int) -> np.ndarray:
    as_text = values.cast(pa.string()) if not pa.types.is_string(values.type) else values
    return (hash_strings(as_text, seed=17) % np.uint64(n_buckets)).astype(np.int64)


def group_partition(task: StepTask) -> dict:
    """Writes this shard's surviving rows into ``n_buckets`` spill files by group hash."""
    run = RunDir(task.ref.root)
    sel: GroupSelector = task.selectors[0]
    group_col = sel.group_by()
    narrow = task.ref.narrow(needed_columns([sel]))
    state = load_state(run, task, narrow.num_rows, task.extra)
    alive = np.flatnonzero(state.column("keep").to_numpy(zero_copy_only=False))
    cols = ["doc_id", "n_tokens", "source"] + [c for c in needed_columns([sel]) if c not in ("doc_id", "n_tokens", "source")]
    rows = narrow.take(pa.array(alive)).select(cols)
    rows = rows.append_column("__shard", pa.array(np.full(len(alive), task.ref.index, np.int64)))
    rows = rows.append_column("__pos", pa.array(alive, pa.int64()))
    n_buckets = task.opts["buckets"]
    bucket = _bucket_of(rows.column(group_col), n_buckets)
    for b in range(n_buckets):
        part = rows.filter(pa.array(bucket == b))
        if part.num_rows:
            run.write_table(part, run.spill(task.fp, task.step, b, task.ref.key))
    return {"rows": int(rows.num_rows)}


@dataclass
class BucketTask:
    root: str
    fp: str
    step: str
    bucket: int
    selector: GroupSelector


def group_decide(task: BucketTask) -> int:
    """Decides every group of one bucket; writes (shard, pos, keep, reason, extras)."""
    run = RunDir(task.root)
    spill = run.spill(task.fp, task.step, task.bucket)
    files = sorted(spill.glob("*.parquet")) if spill.exists() else []
    if not files:
        return 0
    rows = pa.concat_tables([read_table(f) for f in files], promote_options="default")
    # canonical order, so a decision never depends on sharding or task order
    rows = rows.take(pc.sort_indices(rows, sort_keys=[("doc_id", "ascending")]))
    decided = task.selector.decide(rows.drop_columns(["__shard", "__pos"]))
    out = {"__shard": rows.column("__shard"), "__pos": rows.column("__pos"),
           "keep": pa.array(np.asarray(decided["keep"], dtype=bool)),
           "reason": pa.array(decided["reason"], pa.string())}
    for name, dtype in task.selector.extra_columns.items():
        out[name] = pa.array(decided.get(name, [None] * rows.num_rows), dtype)
    # sorted by shard in small row groups: each shard's apply reads only its own row groups
    table = pa.table(out)
    table = table.take(pc.sort_indices(table, sort_keys=[("__shard", "ascending"), ("__pos", "ascending")]))
    run.write_table(table, run.decided(task.fp, task.step, task.bucket), row_group_size=DECIDED_ROW_GROUP)
    return rows.num_rows


def group_apply(task: StepTask) -> dict:
    """Folds the bucket decisions for this shard into its state."""
    run = RunDir(task.ref.root)
    n = pq.read_metadata(ingest_paths(run, task.ref.ingest_fp, task.ref.key)[0]).num_rows
    state = load_state(run, task, n, task.extra)
    decided_dir = run.decided(task.fp, task.step)
    files = sorted(decided_dir.glob("*.parquet")) if decided_dir.exists() else []
    parts = [pq.read_table(f, filters=[("__shard", "=", task.ref.index)]) for f in files]
    parts = [p for p in parts if p.num_rows]
    keep = state.column("keep").to_numpy(zero_copy_only=False).copy()
    reasons = state.column("reason").to_pylist()
    extras = {k: state.column(k).to_pylist() for k in task.extra}
    for part in parts:
        pos = part.column("__pos").to_numpy()
        dropped = ~part.column("keep").to_numpy(zero_copy_only=False)
        keep[pos[dropped]] = False
        # only dropped rows (and set extras) need Python-level work; kept rows are most of them
        why = part.column("reason").filter(pa.array(dropped)).to_pylist()
        for p, reason in zip(pos[dropped].tolist(), why):
            reasons[p] = reason or task.selectors[0].registry_name
        for k in extras:
            if k in part.column_names:
                column = part.column(k)
                given = ~column.is_null().to_numpy(zero_copy_only=False)
                for p, value in zip(pos[given].tolist(), column.filter(pa.array(given)).to_pylist()):
                    extras[k][p] = value
    cols = {"keep": pa.array(keep), "reason": pa.array(reasons, pa.string())}
    cols.update({k: pa.array(v, task.extra[k]) for k, v in extras.items()})
    run.write_table(pa.table(cols), state_path(run, task.fp, task.step, task.ref.key))
    return {"alive": int(keep.sum())}


def validate_steps(steps: list[Selector], budget: Budget | None) -> None:
    """Filters and groups first, then at most one Ranker (it consumes the budget), then
    Orderers (curricula)."""
    from ..errors import ConfigError
    from .engine import engines

    ENGINES = engines()
    rankers = [i for i, sel in enumerate(steps) if sel.kind == "ranker"]
    for i, sel in enumerate(steps):
        if sel.kind not in ENGINES:
            raise ConfigError(f"select[{i}]: {type(sel).__name__} has kind {sel.kind!r}; "
                              f"known kinds: {', '.join(sorted(ENGINES))}")
        if rankers and i > rankers[0] and not isinstance(sel, Orderer):
            raise ConfigError(f"select[{i}] ({sel.registry_name}) comes after the ranking step "
                              f"select[{rankers[0]}] ({steps[rankers[0]].registry_name}); only a curriculum may follow it")
    if len(rankers) > 1:
        raise ConfigError(f"select[{rankers[1]}] ({steps[rankers[1]].registry_name}): only one ranking step may "
                          "consume the budget")
    if budget is not None and not rankers:
        raise ConfigError("a budget needs a ranking selector among the select steps "
                          "(top_k, random, dsir_resample, cluster_balanced, ...)")
    if rankers and budget is None:
        raise ConfigError(f"select step {steps[rankers[0]].registry_name!r} needs a budget "
                          "(documents, tokens, bytes, fraction or flops)")


# -- engines -------------------------------------------------------------------------------


@engine("filter")
def run_filter_engine(ctx, sel: RowFilter | list[RowFilter], step: str, prev: str | None) -> None:
    """Consecutive filters (a list) run as one task per shard."""
    chain = sel if isinstance(sel, list) else [sel]
    tasks = [StepTask(ref, ctx.fp, prev, step, chain, ctx.seed, ctx.extra) for ref in ctx.refs]
    ctx.executor.map(run_filters, tasks, desc="filter", labels=ctx.labels)


BUCKET_BYTES = 32 << 20
DECIDED_ROW_GROUP = 8192


def _row_bytes(dtype) -> int:
    """Rough in-memory bytes of one value, to size group buckets."""
    if pa.types.is_fixed_size_list(dtype):
        return dtype.list_size * max(1, dtype.value_type.bit_width // 8)
    if pa.types.is_string(dtype) or pa.types.is_binary(dtype) or pa.types.is_list(dtype):
        return 48
    return max(1, getattr(dtype, "bit_width", 64) // 8)


def group_buckets(selector, columns: dict, total_rows: int, n_shards: int) -> int:
    """Hash buckets for a group step: about BUCKET_BYTES of spilled rows each."""
    wanted = ["doc_id", "n_tokens", "source", selector.group_by(), *selector.columns()]
    per_row = 16 + sum(_row_bytes(columns[c]) for c in dict.fromkeys(wanted))
    return max(1, min(max(n_shards, 1) * 4, -(-total_rows * per_row // BUCKET_BYTES)))


@engine("group")
def run_group_engine(ctx, sel: GroupSelector, step: str, prev: str | None) -> None:
    n_buckets = group_buckets(sel, ctx.plan.columns, ctx.info.get("total_rows", 0), len(ctx.refs))
    opts = {"buckets": n_buckets}
    tasks = [StepTask(ref, ctx.fp, prev, step, [sel], ctx.seed, ctx.extra, opts) for ref in ctx.refs]
    ctx.executor.map(group_partition, tasks, desc=f"{sel.registry_name} partition", labels=ctx.labels)
    ctx.executor.map(group_decide, [BucketTask(str(ctx.run.root), ctx.fp, step, b, sel) for b in range(n_buckets)],
                     desc=f"{sel.registry_name} decide")
    ctx.executor.map(group_apply, tasks, desc=f"{sel.registry_name} apply", labels=ctx.labels)
