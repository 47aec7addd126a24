"""The ranker engine: the one budget algorithm, for plain rankers and per-group quotas.

1. ``rank_keys`` (one task per shard): keys of the rows entering the step, sorted (key
   descending, then doc_id ascending), with a sample of keys for splitters.
2. ``rank_partition`` (one task per key range): the rows of one range of the global order,
   gathered from every shard's sorted key file (row groups outside the range are skipped)
   and sorted; returns its weight per source and per group.
3. ``rank_eligible`` / ``rank_decide`` (per range): with the weight of all earlier ranges
   as offsets, each row's running total within its source and group is known exactly, so
   floors, caps and quotas are prefix rules applied in parallel; the global budget is a
   prefix of the rows they leave. A row is kept iff its running total stays within the
   limit: the first row that would exceed it and every row after it are rejected, so a
   budget is never exceeded and the selection is a prefix of the ranking.
4. ``rank_apply`` (per shard): decisions flow back with the global rank, the bytes kept
   before each row (the writer's layout) and the repeat count (``epochs``).

The driver only ever holds per-range totals and a sample of keys, never the corpus.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..errors import BudgetError
from ..rundir import RunDir, read_table
from ..select.base import Ranker, unit_weights
from .engine import StepContext, engine
from .select import StepTask, load_state, needed_columns, state_path

#: rows per range of the global order (memory of one task: ~100 bytes a row)
PARTITION_ROWS = 2_000_000
SAMPLES_PER_SHARD = 512
KEY_ROW_GROUP = 65_536
DECISION_ROW_GROUP = 16_384
GAIN_BINS = 100


def _group_values(column) -> list:
    return [None if v is None else str(v) for v in column.to_pylist()]


def rank_keys(task: StepTask) -> dict:
    """Sorted keys of one shard's rows entering the step; invalid keys are rejected here."""
    run = RunDir(task.ref.root)
    sel: Ranker = task.selectors[0]
    narrow = task.ref.narrow(needed_columns([sel]))
    state = load_state(run, task, narrow.num_rows, task.extra)
    keep = state.column("keep").to_numpy(zero_copy_only=False).copy()
    reasons = state.column("reason").to_pylist()
    alive = np.flatnonzero(keep)
    rows = narrow.take(pa.array(alive))
    keys, valid = sel.key(rows, task.seed)
    keys, valid = np.asarray(keys, dtype=np.uint64), np.asarray(valid, dtype=bool)
    for j in np.flatnonzero(~valid).tolist():
        keep[alive[j]] = False
        reasons[alive[j]] = f"{sel.registry_name}: no score"
    unit = task.opts["unit"]
    entering = {"rows": len(alive), "tokens": int(rows.column("n_tokens").to_numpy().sum()),
                "bytes": int(rows.column("n_bytes").to_numpy().sum())}
    rows = rows.filter(pa.array(valid))
    cols = {
        "key": pa.array(keys[valid], pa.uint64()),
        "doc_id": rows.column("doc_id"),
        "weight": pa.array(unit_weights(rows, unit), pa.int64()),
        "n_tokens": rows.column("n_tokens"),
        "n_bytes": rows.column("n_bytes"),
        "pos": pa.array(alive[valid], pa.int64()),
        "shard": pa.array(np.full(rows.num_rows, task.ref.index, np.int32)),
        "source": rows.column("source"),
        "group": pa.array(_group_values(rows.column(sel.group_column())) if sel.group_column()
                          else [None] * rows.num_rows, pa.string()),
    }
    score_col = sel.score_column()
    cols["score"] = (rows.column(score_col).cast(pa.float64()) if score_col and score_col in rows.column_names
                     else pa.nulls(rows.num_rows, pa.float64()))
    table = pa.table(cols)
    table = table.take(pc.sort_indices(table, sort_keys=[("key", "descending"), ("doc_id", "ascending")]))
    run.write_table(table, run.rank_keys(task.fp, task.step, task.ref.key), row_group_size=KEY_ROW_GROUP)
    state = state.set_column(0, "keep", pa.array(keep)).set_column(1, "reason", pa.array(reasons, pa.string()))
    run.write_table(state, state_path(run, task.fp, task.step + "-valid", task.ref.key))
    n = table.num_rows
    picks = np.unique(np.linspace(0, n - 1, min(n, SAMPLES_PER_SHARD)).astype(np.int64)) if n else np.zeros(0, np.int64)
    sources = pc.unique(narrow.column("source").combine_chunks()).to_pylist()
    return {"valid": n, "entering": entering, "sample": table.column("key").to_numpy()[picks],
            "sample_rows": n / max(len(picks), 1), "sources": sources}


def count_entering(task: StepTask) -> dict:
    """Rows, tokens and bytes of one shard entering the step."""
    run = RunDir(task.ref.root)
    narrow = task.ref.narrow([])
    keep = load_state(run, task, narrow.num_rows, task.extra).column("keep").to_numpy(zero_copy_only=False)
    return {"rows": int(keep.sum()), "tokens": int(narrow.column("n_tokens").to_numpy()[keep].sum()),
            "bytes": int(narrow.column("n_bytes").to_numpy()[keep].sum())}


def splitters(counts: list[dict], total_rows: int) -> list[int]:
    """Ascending key splitters cutting the global order into ranges of ~PARTITION_ROWS."""
    n_parts = max(1, -(-total_rows // PARTITION_ROWS))
    if n_parts == 1:
        return []
    keys = np.concatenate([c["sample"] for c in counts])
    rows = np.concatenate([np.full(len(c["sample"]), c["sample_rows"]) for c in counts])
    order = np.argsort(keys, kind="stable")
    keys, cum = keys[order], np.cumsum(rows[order])
    cuts = [int(keys[min(np.searchsorted(cum, cum[-1] * i / n_parts), len(keys) - 1)]) for i in range(1, n_parts)]
    return sorted(set(cuts))


@dataclass
class RangeTask:
    root: str
    fp: str
    step: str
    index: int
    lo: int | None  # keys >= lo (None: no lower bound)
    hi: int | None  # keys < hi (None: no upper bound)
    key_paths: list[str]
    opts: dict = field(default_factory=dict)

    def ranked(self, run: RunDir):
        return run.select_dir(self.fp, self.step) / "ranked" / f"range-{self.index:05d}.parquet"

    def decisions(self, run: RunDir):
        return run.select_dir(self.fp, self.step) / "decided" / f"range-{self.index:05d}.parquet"


def _range_filter(lo, hi):
    parts = []
    if lo is not None:
        parts.append(("key", ">=", pa.scalar(lo, pa.uint64())))
    if hi is not None:
        parts.append(("key", "<", pa.scalar(hi, pa.uint64())))
    return parts or None


def _sums(labels, weight: np.ndarray) -> dict:
    """Total weight per label (an Arrow column, array or list)."""
    codes, uniq = label_codes(labels)
    totals = np.bincount(codes, weights=weight, minlength=len(uniq)) if len(codes) else np.zeros(len(uniq))
    return {u: int(t) for u, t in zip(uniq, totals.tolist())}


def rank_partition(task: RangeTask) -> dict:
    run = RunDir(task.root)
    flt = _range_filter(task.lo, task.hi)
    parts = [pq.read_table(p, filters=flt) for p in task.key_paths]
    table = pa.concat_tables([p for p in parts if p.num_rows] or parts[:1])
    table = table.take(pc.sort_indices(table, sort_keys=[("key", "descending"), ("doc_id", "ascending")]))
    run.write_table(table, task.ranked(run), row_group_size=KEY_ROW_GROUP)
    weight = table.column("weight").to_numpy()
    return {"rows": table.num_rows, "weight": int(weight.sum()), "tokens": int(table.column("n_tokens").to_numpy().sum()),
            "by_source": _sums(table.column("source"), weight),
            "by_group": _sums(table.column("group"), weight)}


def _running(codes: np.ndarray, uniq: list, weight: np.ndarray, offsets: dict) -> np.ndarray:
    """Each row's running total within its label (inclusive), continuing ``offsets``."""
    if not len(codes):
        return np.zeros(0, dtype=np.int64)
    order = np.argsort(codes, kind="stable")
    c, w = codes[order], weight[order].astype(np.int64)
    cum = np.cumsum(w)
    starts = np.r_[0, np.flatnonzero(np.diff(c)) + 1]
    base = np.repeat(cum[starts] - w[starts], np.diff(np.r_[starts, len(c)]))
    out = np.empty(len(c), dtype=np.int64)
    out[order] = cum - base + np.array([offsets.get(u, 0) for u in uniq], dtype=np.int64)[c]
    return out


def label_codes(labels) -> tuple[np.ndarray, list]:
    """(code per row, distinct labels); nulls are the label None."""
    if isinstance(labels, list):
        labels = pa.array(labels, pa.string())
    if isinstance(labels, pa.ChunkedArray):
        labels = labels.combine_chunks()
    encoded = labels.dictionary_encode(null_encoding="encode")
    return encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64), encoded.dictionary.to_pylist()


_NO_LIMIT = np.iinfo(np.int64).max


def _masks(table: pa.Table, opts: dict) -> dict:
    """floor / fill-candidate masks and why rows fail, from the range's offsets."""
    weight = table.column("weight").to_numpy()
    src, sources = label_codes(table.column("source"))
    src_cum = _running(src, sources, weight, opts["source_offsets"])
    floors, caps, quotas = opts["floors"], opts["caps"], opts["quotas"]
    n = table.num_rows
    grp_ok = np.ones(n, dtype=bool)
    if quotas is not None:
        grp, groups = label_codes(table.column("group"))
        grp_cum = _running(grp, groups, weight, opts["group_offsets"])
        grp_ok = grp_cum <= np.array([quotas.get(g, 0) for g in groups], dtype=np.int64)[grp]
    cap_ok = src_cum <= np.array([caps.get(s, _NO_LIMIT) for s in sources], dtype=np.int64)[src]
    floor_row = (src_cum <= np.array([floors.get(s, -1) for s in sources], dtype=np.int64)[src]) & grp_ok & cap_ok
    fill = ~floor_row & cap_ok & grp_ok
    return {"weight": weight, "floor": floor_row, "fill": fill, "grp_ok": grp_ok, "cap_ok": cap_ok}


def rank_eligible(task: RangeTask) -> dict:
    table = read_table(task.ranked(RunDir(task.root)), columns=["weight", "source", "group"])
    m = _masks(table, task.opts)
    return {"floor": int(m["weight"][m["floor"]].sum()), "fill": int(m["weight"][m["fill"]].sum())}


def rank_decide(task: RangeTask) -> dict:
    run = RunDir(task.root)
    table = read_table(task.ranked(run))
    m = _masks(table, task.opts)
    w = m["weight"]
    fill_cum = task.opts["fill_offset"] + np.cumsum(np.where(m["fill"], w, 0))
    keep = m["floor"] | (m["fill"] & (fill_cum <= task.opts["fill_limit"]))
    reason = np.where(keep, None, np.where(~m["grp_ok"], task.opts["quota_reason"],
                                           np.where(~m["cap_ok"], "source cap", task.opts["reject_reason"])))
    kept_tokens = np.where(keep, table.column("n_tokens").to_numpy(), 0)
    kept_bytes = np.where(keep, table.column("n_bytes").to_numpy(), 0)
    kept_weight = np.where(keep, w, 0)
    decisions = pa.table({
        "shard": table.column("shard"), "pos": table.column("pos"), "keep": pa.array(keep),
        "reason": pa.array(reason.tolist(), pa.string()),
        "rank": pa.array(np.cumsum(keep) - 1, pa.int64()),
        "bytes_before": pa.array(np.cumsum(kept_bytes) - kept_bytes, pa.int64()),
        "weight_before": pa.array(np.cumsum(kept_weight) - kept_weight, pa.int64()),
        "tokens_before": pa.array(np.cumsum(kept_tokens) - kept_tokens, pa.int64()),
        "weight": pa.array(w, pa.int64()),
    })
    decisions = decisions.take(pc.sort_indices(decisions, sort_keys=[("shard", "ascending"), ("pos", "ascending")]))
    run.write_table(decisions, task.decisions(run), row_group_size=DECISION_ROW_GROUP)
    out = {"kept": int(keep.sum()), "tokens": int(kept_tokens.sum()), "bytes": int(kept_bytes.sum()),
           "weight": int(kept_weight.sum())}
    if task.opts.get("ranking"):
        out["gain"] = _gain_bins(table, task.opts)
        _write_ranking_piece(run, task, table, keep)
    return out


def _gain_bins(table: pa.Table, opts: dict) -> list[list[float]]:
    """Score and tokens per bin of a fixed grid over the ranking's cumulative tokens."""
    tokens = table.column("n_tokens").to_numpy()
    cum = opts["token_offset"] + np.cumsum(tokens)
    total = max(opts["total_tokens"], 1)
    b = np.minimum((cum - tokens) * GAIN_BINS // total, GAIN_BINS - 1)
    score = table.column("score").to_numpy(zero_copy_only=False)
    score = np.nan_to_num(np.asarray(score, dtype=np.float64))
    return [np.bincount(b, weights=score, minlength=GAIN_BINS).tolist(),
            np.bincount(b, weights=tokens, minlength=GAIN_BINS).tolist()]


def _write_ranking_piece(run: RunDir, task: RangeTask, table: pa.Table, keep: np.ndarray) -> None:
    tokens = table.column("n_tokens").to_numpy()
    piece = pa.table({
        "doc_id": table.column("doc_id"),
        "rank": pa.array(task.opts["row_offset"] + np.arange(table.num_rows), pa.int64()),
        "cum_tokens": pa.array(task.opts["token_offset"] + np.cumsum(tokens), pa.int64()),
        "n_tokens": table.column("n_tokens"),
        "source": table.column("source"),
        "score": table.column("score"),
        "selected": pa.array(keep),
    })
    run.write_table(piece, run.select_dir(task.fp, task.step) / "ranking" / f"range-{task.index:05d}.parquet")


RANKING_ROWS = 1_000_000


@dataclass
class CutTask:
    """Ranking file covering ranks [lo, hi): fixed-size files, whatever the key ranges."""

    root: str
    pieces: list[tuple[str, int, int]]  # (path, first rank, rows)
    lo: int
    hi: int
    target: str


def cut_ranking(task: CutTask) -> int:
    run = RunDir(task.root)
    parts = []
    for path, first, rows in task.pieces:
        if rows and first < task.hi and first + rows > task.lo:
            a, b = max(task.lo, first) - first, min(task.hi, first + rows) - first
            parts.append(read_table(path).slice(a, b - a))
    table = pa.concat_tables(parts) if parts else read_table(task.pieces[0][0]).slice(0, 0)
    run.write_table(table, run.path(task.target), row_group_size=KEY_ROW_GROUP)
    return table.num_rows


def rank_apply(task: StepTask) -> dict:
    run = RunDir(task.ref.root)
    state = read_table(state_path(run, task.fp, task.step + "-valid", task.ref.key))
    n = state.num_rows
    keep = state.column("keep").to_numpy(zero_copy_only=False).copy()
    reasons = state.column("reason").to_pylist()
    order = np.full(n, -1, dtype=np.int64)
    bytes_before = np.zeros(n, dtype=np.int64)
    tokens_before = np.zeros(n, dtype=np.int64)
    prior = state.column("repeat").to_numpy() if "repeat" in state.column_names else None
    state = state.drop_columns([c for c in ("order", "bytes_before", "tokens_before", "repeat") if c in state.column_names])
    repeat = np.zeros(n, dtype=np.int32)
    offsets = task.opts["range_offsets"]
    epochs = task.opts["epochs"]
    repeat_weight = 0
    for r, path in enumerate(task.opts["decision_paths"]):
        part = pq.read_table(path, filters=[("shard", "=", task.ref.index)])
        if not part.num_rows:
            continue
        pos = part.column("pos").to_numpy()
        kept = part.column("keep").to_numpy(zero_copy_only=False)
        dropped = pos[~kept]
        keep[dropped] = False
        for p, why in zip(dropped.tolist(), part.column("reason").filter(pa.array(~kept)).to_pylist()):
            reasons[p] = why
        kpos = pos[kept]
        order[kpos] = offsets[r]["rank"] + part.column("rank").to_numpy()[kept]
        bytes_before[kpos] = offsets[r]["bytes"] + part.column("bytes_before").to_numpy()[kept]
        tokens_before[kpos] = offsets[r]["tokens"] + part.column("tokens_before").to_numpy()[kept]
        weight_before = offsets[r]["weight"] + part.column("weight_before").to_numpy()[kept]
        repeat[kpos] = 1 + epochs["full"]
        weights = part.column("weight").to_numpy()[kept]
        if epochs["partial"] > 0:
            repeat[kpos] += (weight_before + weights <= epochs["partial"]).astype(np.int32)
        repeat_weight += int(((repeat[kpos] - 1) * weights).sum())
    state = state.set_column(0, "keep", pa.array(keep)).set_column(1, "reason", pa.array(reasons, pa.string()))
    state = state.append_column("order", pa.array(np.where(keep, order, -1), pa.int64()))
    state = state.append_column("bytes_before", pa.array(bytes_before, pa.int64()))
    state = state.append_column("tokens_before", pa.array(tokens_before, pa.int64()))
    if prior is not None and task.opts.get("keep_repeat"):  # an ordering after the budget keeps its repeats
        repeat = prior.astype(np.int32)
    state = state.append_column("repeat", pa.array(np.where(keep, repeat, 0), pa.int32()))
    run.write_table(state, state_path(run, task.fp, task.step, task.ref.key))
    return {"alive": int(keep.sum()), "repeat_weight": repeat_weight}


def _amounts(budget, values: dict | None, limit: int, known: set, key: str) -> dict:
    out = {}
    for src, v in (values or {}).items():
        if src not in known:
            raise BudgetError(f"budget.{key}: source {src!r} does not exist; sources are: "
                              f"{', '.join(sorted(map(str, known)))}")
        out[src] = budget.amount(v, limit)
    return out


@engine("ranker")
def run_ranker(ctx: StepContext, sel: Ranker, step: str, prev: str | None) -> None:
    budget = ctx.budget
    unit = budget.unit if budget is not None else "documents"
    base = dict(unit=unit)
    if budget is not None and callable(getattr(sel, "configure", None)):
        # a regime-aware ranker chooses its order from the budget's share of the pool first
        pool = ctx.executor.map(count_entering, [StepTask(ref, ctx.fp, prev, step, [sel], ctx.seed, ctx.extra, base)
                                                 for ref in ctx.refs], desc="count", labels=ctx.labels)
        totals = {k: sum(c[k] for c in pool) for k in ("rows", "tokens", "bytes")}
        limit = budget.limit(totals["rows"], totals["tokens"], totals["bytes"])
        ctx.info["regime"] = sel.configure(limit, totals[{"documents": "rows"}.get(unit, unit)])
    tasks = [StepTask(ref, ctx.fp, prev, step, [sel], ctx.seed, ctx.extra, base) for ref in ctx.refs]
    counts = ctx.executor.map(rank_keys, tasks, desc=f"{sel.registry_name} keys", labels=ctx.labels)
    entering = {k: sum(c["entering"][k] for c in counts) for k in ("rows", "tokens", "bytes")}
    valid_rows = sum(c["valid"] for c in counts)
    sources = {s for c in counts for s in c["sources"]}
    limit = budget.limit(entering["rows"], entering["tokens"], entering["bytes"]) if budget is not None \
        else np.iinfo(np.int64).max // 4
    cuts = splitters(counts, valid_rows)
    bounds = [None, *cuts, None]
    key_paths = [str(ctx.run.rank_keys(ctx.fp, step, r.key)) for r in ctx.refs]
    ranges = [RangeTask(str(ctx.run.root), ctx.fp, step, i, bounds[len(bounds) - 2 - i], bounds[len(bounds) - 1 - i],
                        key_paths) for i in range(len(bounds) - 1)]
    parts = ctx.executor.map(rank_partition, ranges, desc=f"{sel.registry_name} ranges")
    available = {}
    for p in parts:
        for g, w in p["by_group"].items():
            available[g] = available.get(g, 0) + w
    quotas = sel.group_quotas(available, limit) if sel.group_column() and budget is not None else None
    floors = _amounts(budget, budget.floors, limit, sources, "floors") if budget is not None else {}
    caps = _amounts(budget, budget.caps, limit, sources, "caps") if budget is not None else {}
    if sum(floors.values()) > limit:
        raise BudgetError(f"budget.floors add up to {sum(floors.values()):,} {unit}, more than the budget ({limit:,})")
    src_off, grp_off, row_off, tok_off = {}, {}, 0, 0
    total_tokens = sum(p["tokens"] for p in parts)
    for task, p in zip(ranges, parts):
        task.opts = {"source_offsets": dict(src_off), "group_offsets": dict(grp_off), "floors": floors,
                     "caps": caps, "quotas": quotas, "row_offset": row_off, "token_offset": tok_off,
                     "total_tokens": total_tokens, "quota_reason": sel.quota_reason,
                     "reject_reason": sel.reject_reason, "ranking": bool(ctx.info.get("want_ranking"))}
        for s, w in p["by_source"].items():
            src_off[s] = src_off.get(s, 0) + w
        for g, w in p["by_group"].items():
            grp_off[g] = grp_off.get(g, 0) + w
        row_off += p["rows"]
        tok_off += p["tokens"]
    eligible = ctx.executor.map(rank_eligible, ranges, desc=f"{sel.registry_name} constraints")
    floor_total = sum(e["floor"] for e in eligible)
    fill_off = 0
    for task, e in zip(ranges, eligible):
        task.opts.update(fill_offset=fill_off, fill_limit=limit - floor_total)
        fill_off += e["fill"]
    decided = ctx.executor.map(rank_decide, ranges, desc=f"{sel.registry_name} decide")
    kept_weight = sum(d["weight"] for d in decided)
    epochs = _epochs(budget, limit, kept_weight, fill_off + floor_total)
    offsets, r_off, b_off, w_off, t_off = [], 0, 0, 0, 0
    for d in decided:
        offsets.append({"rank": r_off, "bytes": b_off, "weight": w_off, "tokens": t_off})
        r_off, b_off, w_off, t_off = r_off + d["kept"], b_off + d["bytes"], w_off + d["weight"], t_off + d["tokens"]
    opts = {**base, "range_offsets": offsets, "decision_paths": [str(t.decisions(ctx.run)) for t in ranges],
            "epochs": epochs, "keep_repeat": budget is None}
    tasks = [StepTask(ref, ctx.fp, prev, step, [sel], ctx.seed, ctx.extra, opts) for ref in ctx.refs]
    applied = ctx.executor.map(rank_apply, tasks, desc=f"{sel.registry_name} apply", labels=ctx.labels)
    ctx.info["ordered"] = "rank"
    ctx.info["kept_bytes"] = b_off
    ctx.info["kept_tokens"] = t_off
    if budget is not None:
        used = kept_weight + sum(a["repeat_weight"] for a in applied)
        ctx.info["budget"] = _budget_info(budget, limit, entering, valid_rows, used, fill_off + floor_total,
                                          floors, caps, quotas, epochs)
        if "regime" in ctx.info:  # what a regime-aware ranker chose, and why
            ctx.info["budget"]["regime"] = ctx.info["regime"]
    if ctx.info.get("want_ranking"):
        pieces = [(str(ctx.run.select_dir(ctx.fp, step) / "ranking" / f"range-{t.index:05d}.parquet"), t.opts["row_offset"],
                   p["rows"]) for t, p in zip(ranges, parts)]
        cuts = [CutTask(str(ctx.run.root), pieces, lo, min(lo + RANKING_ROWS, valid_rows),
                        str(ctx.run.select_dir(ctx.fp, step) / "ranking" / f"part-{k:05d}.parquet"))
                for k, lo in enumerate(range(0, max(valid_rows, 1), RANKING_ROWS))]
        ctx.executor.map(cut_ranking, cuts, desc="ranking")
        ctx.info["ranking_pieces"] = [c.target for c in cuts]
        ctx.info["marginal_gain"] = _gain_curve(decided, total_tokens, ctx.info.get("gain_threshold"))


def _epochs(budget, limit: int, kept: int, eligible: int) -> dict:
    """Repeats when the budget allows ``epochs`` passes and the eligible rows don't fill it."""
    k = getattr(budget, "epochs", 1) if budget is not None else 1
    if k <= 1 or kept == 0 or kept < eligible:
        return {"full": 0, "partial": 0, "passes": 1.0}
    extra = limit - kept
    full = min(k - 1, extra // kept)
    partial = extra - full * kept if full < k - 1 else 0
    return {"full": int(full), "partial": int(partial), "passes": 1 + full + partial / kept}


def _budget_info(budget, limit, entering, valid_rows, used, eligible_weight, floors, caps, quotas, epochs):
    unit = budget.unit
    info = {"unit": unit, "limit": int(limit), "requested": budget.to_config(),
            "entering": entering, "available": int(eligible_weight), "valid_rows": int(valid_rows)}
    if budget.fraction is not None:
        info["fraction_of"] = (f"{budget.fraction:g} of the {entering[{'documents': 'rows'}.get(unit, unit)]:,} "
                               f"{unit} entering the budget step")
    if floors:
        info["floors"] = floors
    if caps:
        info["caps"] = caps
    if quotas is not None:
        info["quotas"] = {str(k): v for k, v in quotas.items()}
    if epochs["passes"] > 1:
        info["epochs"] = epochs
    info["used"] = int(used)
    info["slack"] = int(limit - used)
    if eligible_weight <= limit and epochs["passes"] <= 1:
        info["bound_by"] = "available rows (everything eligible was kept)"
    elif quotas is not None:
        info["bound_by"] = "group quotas"
    else:
        info["bound_by"] = "budget limit"
    return info


def _gain_curve(decided: list[dict], total_tokens: int, threshold: float | None) -> dict:
    score = np.sum([d["gain"][0] for d in decided], axis=0)
    tokens = np.sum([d["gain"][1] for d in decided], axis=0)
    gain = np.where(tokens > 0, score / np.maximum(tokens, 1), np.nan)
    edges = (np.arange(1, GAIN_BINS + 1) * total_tokens // GAIN_BINS).tolist()
    finite = gain[np.isfinite(gain)]
    thr = float(threshold) if threshold is not None else (float(0.5 * finite[0]) if len(finite) else 0.0)
    below = np.flatnonzero(np.isfinite(gain) & (gain < thr))
    return {"tokens": edges, "gain_per_token": [None if not np.isfinite(g) else float(g) for g in gain],
            "threshold": thr, "stop_at_tokens": int(edges[below[0]]) if len(below) else None}


def select_in_memory(sel: Ranker, table: pa.Table, budget, seed: int = 0) -> np.ndarray:
    """The same decision as the engine, in one process (for tests and small tables)."""
    keys, valid = sel.key(table, seed)
    keys, valid = np.asarray(keys, np.uint64), np.asarray(valid, bool)
    idx = np.flatnonzero(valid)
    ids = np.asarray(table.column("doc_id").to_pylist(), dtype=object)[idx]
    order = idx[np.lexsort((ids, ~keys[idx]))]
    w = unit_weights(table, budget.unit)[order]
    entering = {"rows": table.num_rows, "tokens": int(table.column("n_tokens").to_numpy().sum()),
                "bytes": int(table.column("n_bytes").to_numpy().sum()) if "n_bytes" in table.column_names else 0}
    limit = budget.limit(entering["rows"], entering["tokens"], entering["bytes"])
    sources = [str(s) for s in table.column("source").to_pylist()] if "source" in table.column_names \
        else [""] * table.num_rows
    sources = [sources[i] for i in order]
    ranked = pa.table({"weight": pa.array(w, pa.int64()), "source": pa.array(sources, pa.string()),
                       "group": pa.array(_group_values(table.column(sel.group_column()).take(pa.array(order)))
                                         if sel.group_column() else [None] * len(order), pa.string())})
    available = _sums(ranked.column("group"), w)
    quotas = sel.group_quotas(available, limit) if sel.group_column() else None
    known = set(sources)
    floors = _amounts(budget, budget.floors, limit, known, "floors")
    caps = _amounts(budget, budget.caps, limit, known, "caps")
    m = _masks(ranked, {"source_offsets": {}, "group_offsets": {}, "floors": floors, "caps": caps, "quotas": quotas})
    fill_cum = np.cumsum(np.where(m["fill"], w, 0))
    kept = m["floor"] | (m["fill"] & (fill_cum <= limit - int(w[m["floor"]].sum())))
    keep = np.zeros(table.num_rows, dtype=bool)
    keep[order[kept]] = True
    return keep
