"""Select stage: applies the recipe's selector steps to the narrow score table, shard by
shard, never gathering the corpus on one process.

- consecutive RowFilters run in one task per shard;
- a GroupSelector hash-partitions surviving rows by its group column into buckets (one
  task per shard), decides each bucket (one task per bucket; a group is never split),
  and the decisions flow back to their shards;
- a final Ranker gives each surviving row a uint64 key; the budget's boundary key is
  found by a radix select over per-shard histograms (16 bits at a time) and the last
  candidates are gathered only once few enough remain; each shard then applies it.

Budget boundary (token or document budgets): rows are taken in rank order (key
descending, then doc_id ascending for equal keys) while the running total stays within
the budget; the first row that would exceed it and every row after it are rejected with
reason ``budget``. So a token budget is never exceeded, and the selection is a prefix of
the ranking (no smaller row is slipped in after a large one is refused).

Per-shard state files (``.staging/select/<fp>/<step>/<shard>.parquet``) hold ``keep``,
``reason`` and extra decision columns, row-aligned with the shard's narrow table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..hashing import hash_strings
from ..rundir import RunDir
from ..select.base import Budget, GroupSelector, Ranker, RowFilter, Selector
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
    table = pq.read_table(state_path(run, task.fp, task.prev, task.ref.key))
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
    """Writes this shard's surviving rows into ``n_buckets`` spill files by group hash and
    returns group sizes when the selector sets quotas."""
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
    out: dict = {}
    if task.opts.get("sizes"):
        counts = pc.value_counts(rows.column(group_col).combine_chunks())
        tokens = rows.group_by(group_col).aggregate([("n_tokens", "sum")])
        out["rows"] = dict(zip(counts.field("values").to_pylist(), counts.field("counts").to_pylist()))
        out["tokens"] = dict(zip(tokens.column(group_col).to_pylist(), tokens.column("n_tokens_sum").to_pylist()))
    return out


@dataclass
class BucketTask:
    root: str
    fp: str
    step: str
    bucket: int
    selector: GroupSelector
    quotas: dict | None


def group_decide(task: BucketTask) -> int:
    """Decides every group of one bucket; writes (shard, pos, keep, reason, extras)."""
    run = RunDir(task.root)
    spill = run.spill(task.fp, task.step, task.bucket)
    files = sorted(spill.glob("*.parquet")) if spill.exists() else []
    if not files:
        return 0
    rows = pa.concat_tables([pq.read_table(f) for f in files], promote_options="default")
    # canonical order, so a decision never depends on sharding or task order
    rows = rows.take(pc.sort_indices(rows, sort_keys=[("doc_id", "ascending")]))
    decided = task.selector.decide(rows.drop_columns(["__shard", "__pos"]), task.quotas)
    out = {"__shard": rows.column("__shard"), "__pos": rows.column("__pos"),
           "keep": pa.array(np.asarray(decided["keep"], dtype=bool)),
           "reason": pa.array(decided["reason"], pa.string())}
    for name, dtype in task.selector.extra_columns.items():
        out[name] = pa.array(decided.get(name, [None] * rows.num_rows), dtype)
    run.write_table(pa.table(out), run.decided(task.fp, task.step, task.bucket))
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


# -- ranker + budget ----------------------------------------------------------------------


def rank_keys(task: StepTask) -> dict:
    """Computes rank keys of surviving rows; invalid keys are rejected here."""
    run = RunDir(task.ref.root)
    sel: Ranker = task.selectors[0]
    narrow = task.ref.narrow(needed_columns([sel]))
    state = load_state(run, task, narrow.num_rows, task.extra)
    keep = state.column("keep").to_numpy(zero_copy_only=False).copy()
    reasons = state.column("reason").to_pylist()
    alive = np.flatnonzero(keep)
    keys, valid = sel.key(narrow.take(pa.array(alive)), task.seed)
    keys = np.asarray(keys, dtype=np.uint64)
    valid = np.asarray(valid, dtype=bool)
    for j in np.flatnonzero(~valid).tolist():
        keep[alive[j]] = False
        reasons[alive[j]] = f"{sel.registry_name}: no score"
    pos = alive[valid]
    weight = narrow.column("n_tokens").to_numpy()[pos] if task.opts["unit"] == "tokens" else np.ones(len(pos), np.int64)
    table = pa.table({"pos": pa.array(pos, pa.int64()), "key": pa.array(keys[valid], pa.uint64()),
                      "weight": pa.array(weight, pa.int64()),
                      "doc_id": narrow.column("doc_id").take(pa.array(pos))})
    run.write_table(table, run.rank_keys(task.fp, task.step, task.ref.key))
    state = state.set_column(0, "keep", pa.array(keep)).set_column(1, "reason", pa.array(reasons, pa.string()))
    run.write_table(state, state_path(run, task.fp, task.step + "-valid", task.ref.key))
    return {"rows": len(pos), "weight": int(weight.sum())}


@dataclass
class KeyQuery:
    path: str
    prefix: int
    prefix_bits: int
    with_ids: bool
    gather: bool = False


def key_query(q: KeyQuery):
    """Among keys sharing the prefix: a histogram of the next 16-bit digit (counts,
    weights), or with ``gather`` the matching (keys, weights), or with ``with_ids`` the
    matching (keys, weights, doc_ids)."""
    table = pq.read_table(q.path, columns=["key", "weight", "doc_id"] if q.with_ids else ["key", "weight"])
    keys = table.column("key").to_numpy()
    weight = table.column("weight").to_numpy()
    if q.prefix_bits:
        match = (keys >> np.uint64(64 - q.prefix_bits)) == np.uint64(q.prefix)
        keys, weight = keys[match], weight[match]
    else:
        match = None
    if q.with_ids:
        ids = table.column("doc_id")
        ids = ids.filter(pa.array(match)) if match is not None else ids
        return keys, weight, ids.to_pylist()
    if q.gather:
        return keys, weight
    digit = ((keys >> np.uint64(64 - q.prefix_bits - DIGIT_BITS)) & np.uint64((1 << DIGIT_BITS) - 1)).astype(np.int64)
    return (np.bincount(digit, minlength=1 << DIGIT_BITS),
            np.bincount(digit, weights=weight, minlength=1 << DIGIT_BITS).astype(np.int64))


@dataclass
class Boundary:
    """Keep a row iff key > key_b, or key == key_b and doc_id <= doc_b (doc_b None: strict).
    ``everything`` keeps all valid rows."""

    key: int = 0
    doc: str | None = None
    everything: bool = False


def find_boundary(executor, key_paths: list[str], total_rows: int, limit: int) -> Boundary:
    """Radix select of the budget boundary over per-shard key files.

    Invariant: every row whose key prefix is above ``prefix`` fits (their weight is
    ``above``) and the boundary lies among the ``candidates`` rows sharing ``prefix``."""
    prefix, bits, above, candidates = 0, 0, 0, total_rows
    while candidates > GATHER_LIMIT and bits < 64:
        hists = executor.map(key_query, [KeyQuery(p, prefix, bits, False) for p in key_paths], desc="budget")
        counts = np.sum([h[0] for h in hists], axis=0)
        cum = above + np.cumsum(np.sum([h[1] for h in hists], axis=0)[::-1])  # digits high to low
        over = np.flatnonzero(cum > limit)
        if not len(over):  # only possible at the top level: everything fits
            return Boundary(everything=True)
        j = int(over[0])
        digit = (1 << DIGIT_BITS) - 1 - j
        above = int(cum[j - 1]) if j > 0 else above
        prefix, bits = (prefix << DIGIT_BITS) | digit, bits + DIGIT_BITS
        candidates = int(counts[digit])

    parts = executor.map(key_query, [KeyQuery(p, prefix, bits, False, gather=True) for p in key_paths],
                         desc="budget")
    keys = np.concatenate([p[0] for p in parts] + [np.zeros(0, np.uint64)])
    weight = np.concatenate([p[1] for p in parts] + [np.zeros(0, np.int64)])
    if not len(keys):
        return Boundary(everything=True)
    unique = np.unique(keys)
    order = np.argsort(keys, kind="stable")
    per_key = np.add.reduceat(weight[order], np.searchsorted(keys[order], unique))
    unique, per_key = unique[::-1], per_key[::-1]  # key descending
    cum = above + np.cumsum(per_key)
    over = np.flatnonzero(cum > limit)
    if not len(over):
        return Boundary(everything=True) if bits == 0 else Boundary(key=int(unique[-1]) - 1, doc=None)
    j = int(over[0])
    key = int(unique[j])
    before = int(cum[j - 1]) if j > 0 else above
    # rows sharing the boundary key: take them in doc_id order while they fit
    tied = executor.map(key_query, [KeyQuery(p, key, 64, True) for p in key_paths], desc="budget")
    ids = [d for t in tied for d in t[2]]
    w = np.concatenate([t[1] for t in tied])
    by_id = sorted(range(len(ids)), key=ids.__getitem__)
    fits = int(np.searchsorted(before + np.cumsum(w[by_id]), limit, side="right"))
    return Boundary(key=key, doc=ids[by_id[fits - 1]] if fits else None)


def apply_boundary(task: StepTask) -> dict:
    run = RunDir(task.ref.root)
    state = pq.read_table(state_path(run, task.fp, task.step + "-valid", task.ref.key))
    keys = pq.read_table(run.rank_keys(task.fp, task.step, task.ref.key))
    boundary: Boundary = task.opts["boundary"]
    keep = state.column("keep").to_numpy(zero_copy_only=False).copy()
    reasons = state.column("reason").to_pylist()
    if not boundary.everything:
        k = keys.column("key").to_numpy()
        ok = k > np.uint64(boundary.key)
        if boundary.doc is not None:
            tie = np.flatnonzero(k == np.uint64(boundary.key))
            if len(tie):
                ids = keys.column("doc_id").take(pa.array(tie)).to_pylist()
                ok[tie] = [d <= boundary.doc for d in ids]
        pos = keys.column("pos").to_numpy()
        for p in pos[~ok].tolist():
            keep[p] = False
            reasons[p] = task.selectors[0].reject_reason
    state = state.set_column(0, "keep", pa.array(keep)).set_column(1, "reason", pa.array(reasons, pa.string()))
    run.write_table(state, state_path(run, task.fp, task.step, task.ref.key))
    return {"alive": int(keep.sum())}


def is_quota_selector(sel: Selector) -> bool:
    return isinstance(sel, GroupSelector) and type(sel).quotas is not GroupSelector.quotas


def validate_steps(steps: list[Selector], budget: Budget | None) -> None:
    from ..errors import ConfigError

    for i, sel in enumerate(steps):
        last = i == len(steps) - 1
        if (isinstance(sel, Ranker) or is_quota_selector(sel)) and not last:
            raise ConfigError(f"select[{i}] ({sel.registry_name}) ranks rows under the budget and must be the last step")
        if not isinstance(sel, (RowFilter, GroupSelector, Ranker)):
            raise ConfigError(f"select[{i}]: {type(sel).__name__} is not a RowFilter, GroupSelector or Ranker")
    consumes = bool(steps) and (isinstance(steps[-1], Ranker) or is_quota_selector(steps[-1]))
    if budget is not None and not consumes:
        raise ConfigError("a budget needs a ranking selector as the last select step "
                          "(top_k, random, dsir_resample, cluster_balanced, ...)")
    if consumes and budget is None:
        raise ConfigError(f"select step {steps[-1].registry_name!r} needs a budget "
                          "(documents, tokens, fraction or flops)")
