"""The ``components`` select engine: near-duplicate clusters as connected components,
computed as Dask tasks over files, never gathering the corpus.

1. bands (per shard): each surviving row's band keys go to spill buckets by key hash, as
   (key, doc hash, node) with node = shard index << 32 | row position;
2. candidates (per bucket): rows sharing a key, in seeded doc-hash order, pair with their
   WINDOW predecessors and with the first of them (all pairs of up to WINDOW + 1 rows, at
   most WINDOW + 1 pairs per row), sent to the first row's shard;
3. verify (per shard, twice): each shard sends its pairs to the second row's shard with
   the payload (shingle set, or signature) of their distinct first rows, once per
   destination; there pairs whose Jaccard similarity (exact from the sets, or estimated)
   is >= threshold become edges, sent both ways to edge partitions by node hash; pairs are
   compared in chunks of PAIR_VALUES set values, one sending shard at a time (sets are
   written without a dictionary, in small row groups: bounded writer buffers);
4. propagate (per partition, rounds): every node starts with its own id as label and
   sends it to its neighbours; a node whose label drops sends the new one; rounds stop
   when nothing is sent (each node then holds its component's smallest node id);
5. decide: labels go back to their shards, which add doc_id, tokens and score and send
   each row to the partition of its label; each partition picks every component's kept
   row; each dropped row's similarity to its kept row is computed by the join of step 3;
   the decisions fold into the shards' state.

Every task reads and writes files of bounded size: a shard, one bucket or one partition.
Results depend only on doc ids and the minhash columns, not on sharding, partition counts or
worker count.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..hashing import hash_strings
from ..rundir import RunDir, read_table
from .engine import StepContext, engine
from .select import StepTask, load_state, state_path

SHIFT = np.int64(32)
WINDOW = 4
PAIR_VALUES = 1 << 17  # set values compared at a time (1 MB of uint64)


@dataclass
class PartTask:
    """One bucket or partition of a components step."""

    root: str
    fp: str
    step: str
    part: int
    selector: object
    n_parts: int
    n_shards: int
    round: int = 0
    opts: dict = field(default_factory=dict)


def _read_folder(folder: Path, columns: list[str] | None = None) -> pa.Table | None:
    files = sorted(folder.glob("*.parquet")) if folder.exists() else []
    tables = [read_table(f, columns=columns) for f in files]
    tables = [t for t in tables if t.num_rows]
    return pa.concat_tables(tables) if tables else None


def _matrix(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """A fixed-size-list column as a (rows, width) numpy matrix (null rows hold zeros)."""
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    width = array.type.list_size
    values = array.values.slice(array.offset * width, len(array) * width)
    return values.to_numpy(zero_copy_only=False).reshape(len(array), width)


def _part_of(nodes: np.ndarray, n_parts: int) -> np.ndarray:
    """Hash partition of node ids (Fibonacci hashing: the high bits of node * 2**64 / phi)."""
    spread = nodes.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
    return ((spread >> np.uint64(32)) % np.uint64(n_parts)).astype(np.int64)


def _scatter(run: RunDir, table: pa.Table, dest: np.ndarray, n_dest: int, where, name: str) -> None:
    """Writes the rows of ``table`` to ``where(d, name)`` for every destination d in ``dest``."""
    order = np.argsort(dest, kind="stable")
    dest = dest[order]
    table = table.take(pa.array(order))
    bounds = np.searchsorted(dest, np.arange(n_dest + 1))
    for d in np.flatnonzero(np.diff(bounds)).tolist():
        run.write_table(table.slice(bounds[d], bounds[d + 1] - bounds[d]), where(d, name))


def _alive(task: StepTask, columns: list[str]) -> tuple[pa.Table, np.ndarray, pa.Table]:
    """(narrow table, positions of rows alive and with a signature, previous state)."""
    run = RunDir(task.ref.root)
    sel = task.selectors[0]
    narrow = task.ref.narrow(columns)
    state = load_state(run, task, narrow.num_rows, task.extra)
    ok = state.column("keep").to_numpy(zero_copy_only=False)
    ok = ok & ~np.asarray(narrow.column(sel.bands).is_null().to_numpy(zero_copy_only=False), dtype=bool)
    return narrow, np.flatnonzero(ok), state


def _nodes(task: StepTask, pos: np.ndarray) -> np.ndarray:
    return (np.int64(task.ref.index) << SHIFT) | pos.astype(np.int64)


# -- 1. band keys to spill buckets --------------------------------------------------------


def nd_bands(task: StepTask) -> dict:
    run = RunDir(task.ref.root)
    sel = task.selectors[0]
    narrow, pos, _ = _alive(task, [sel.bands])
    keys = _matrix(narrow.column(sel.bands).take(pa.array(pos)))
    width = keys.shape[1]
    doc = hash_strings(narrow.column("doc_id").take(pa.array(pos)), seed=task.seed)
    table = pa.table({"key": pa.array(keys.ravel(), pa.uint64()), "doc": np.repeat(doc, width),
                      "node": np.repeat(_nodes(task, pos), width)})
    n_parts = task.opts["parts"]
    bucket = (keys.ravel() % np.uint64(n_parts)).astype(np.int64)
    _scatter(run, table, bucket, n_parts, lambda b, name: run.spill(task.fp, task.step, b, name), task.ref.key)
    return {"rows": int(narrow.num_rows), "alive": int(len(pos))}


# -- 2. candidate pairs per bucket --------------------------------------------------------


def nd_candidates(task: PartTask) -> int:
    run = RunDir(task.root)
    rows = _read_folder(run.spill(task.fp, task.step, task.part))
    if rows is None:
        return 0
    key, doc, node = (rows.column(c).to_numpy() for c in ("key", "doc", "node"))
    order = np.lexsort((node, doc, key))
    key, node = key[order], node[order]
    new = np.ones(len(key), dtype=bool)
    new[1:] = key[1:] != key[:-1]
    start = np.flatnonzero(new)
    size = np.diff(np.append(start, len(key)))
    first = np.repeat(start, size)
    at = np.arange(len(key))
    # each row pairs with its WINDOW predecessors and with the first row of its key
    u = [node[d:][at[d:] - d >= first[d:]] for d in range(1, WINDOW + 1)]
    v = [node[:-d][at[d:] - d >= first[d:]] for d in range(1, WINDOW + 1)]
    far = at - first > WINDOW
    u, v = np.concatenate(u + [node[far]]), np.concatenate(v + [node[first[far]]])
    if not len(u):
        return 0
    u, v = np.minimum(u, v), np.maximum(u, v)
    pairs = np.unique(np.stack([u, v], axis=1), axis=0)
    table = pa.table({"u": pairs[:, 0], "v": pairs[:, 1]})
    _scatter(run, table, pairs[:, 0] >> SHIFT, task.n_shards,
             lambda s, name: run.select_part(task.fp, task.step, "pairs", s, name), f"bucket-{task.part:05d}")
    return len(pairs)


# -- 3. verification ----------------------------------------------------------------------


def _payload(task: StepTask, pos: np.ndarray | None = None) -> pa.Array:
    """The verification column (shingle sets or signatures) of this shard, or of rows ``pos``."""
    column = task.ref.narrow([task.selectors[0].payload()]).column(task.selectors[0].payload())
    column = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    return column if pos is None else column.take(pa.array(pos))


def _write_sets(run: RunDir, table: pa.Table, target: Path) -> None:
    """Writes shingle sets or signatures: without a dictionary (the hashes hardly repeat)
    and in small row groups, so the Parquet writer's buffers stay a few MB."""
    target = run.path(target)
    tmp = run._tmp(target)
    pq.write_table(table, tmp, row_group_size=256, use_dictionary=False, compression="zstd", compression_level=1)
    os.replace(tmp, target)


def nd_attach(task: StepTask) -> int:
    """Pairs whose first node is in this shard go to the second's shard, with the payload
    of their distinct first nodes once per destination shard."""
    run = RunDir(task.ref.root)
    src, dst = task.opts["join"]
    pairs = _read_folder(run.select_part(task.fp, task.step, src, task.ref.index))
    if pairs is None:
        return 0
    uv = np.unique(np.stack([pairs.column("u").to_numpy(), pairs.column("v").to_numpy()], axis=1), axis=0)
    dest = uv[:, 1] >> SHIFT
    order = np.argsort(dest, kind="stable")
    uv, dest = uv[order], dest[order]
    payload = _payload(task)
    bounds = np.searchsorted(dest, np.arange(task.opts["shards"] + 1))
    name = f"from-{task.ref.index:05d}"
    for d in np.flatnonzero(np.diff(bounds)).tolist():
        part = uv[bounds[d] : bounds[d + 1]]
        nodes = np.unique(part[:, 0])
        run.write_table(pa.table({"u": part[:, 0], "v": part[:, 1]}), run.select_part(task.fp, task.step, dst, d, name))
        _write_sets(run, pa.table({"node": nodes, "payload": payload.take(pa.array(nodes & np.int64(0xFFFFFFFF)))}),
                    run.select_part(task.fp, task.step, f"{dst}-payload", d, name))
    return len(uv)


def _received(task: StepTask, name: str):
    """(u, v, intersection, union) of the pairs sent to this shard, one sending shard at a time."""
    run = RunDir(task.ref.root)
    folder = run.select_part(task.fp, task.step, name, task.ref.index)
    files = sorted(folder.glob("*.parquet")) if folder.exists() else []
    local = _payload(task) if files else None
    local_sizes = _lengths(local) if files else None
    for path in files:
        pairs = read_table(path)
        sent = read_table(run.select_part(task.fp, task.step, f"{name}-payload", task.ref.index, path.stem))
        u, v = pairs.column("u").to_numpy(), pairs.column("v").to_numpy()
        at = np.searchsorted(sent.column("node").to_numpy(), u)
        theirs = sent.column("payload").combine_chunks()
        pos = v & np.int64(0xFFFFFFFF)
        sizes = _lengths(theirs)[at] + local_sizes[pos]
        for lo, hi in _chunks(sizes, PAIR_VALUES):
            a, b = theirs.take(pa.array(at[lo:hi])), local.take(pa.array(pos[lo:hi]))
            yield (u[lo:hi], v[lo:hi], *task.selectors[0].overlaps(a, b))


def _lengths(array: pa.Array) -> np.ndarray:
    return pc.list_value_length(array).to_numpy(zero_copy_only=False).astype(np.int64)


def _chunks(sizes: np.ndarray, limit: int):
    """(lo, hi) runs of consecutive items whose sizes add up to at most ``limit`` (or one item)."""
    ends = np.cumsum(sizes)
    lo = 0
    while lo < len(sizes):
        base = ends[lo - 1] if lo else 0
        hi = max(lo + 1, int(np.searchsorted(ends, base + limit, side="right")))
        yield lo, hi
        lo = hi


def nd_verify(task: StepTask) -> int:
    """Pairs whose second node is in this shard: verified ones become edges, both ways."""
    run = RunDir(task.ref.root)
    n_parts, edges = task.opts["parts"], 0
    for k, (u, v, inter, union) in enumerate(_received(task, "joined")):
        ok = task.selectors[0].is_edge(inter, union)
        src, dst = np.concatenate([u[ok], v[ok]]), np.concatenate([v[ok], u[ok]])
        _scatter(run, pa.table({"src": src, "dst": dst}), _part_of(src, n_parts), n_parts,
                 lambda q, name: run.select_part(task.fp, task.step, "edges", q, name),
                 f"from-{task.ref.index:05d}-{k:05d}")
        edges += int(ok.sum())
    return edges


# -- 4. min-label propagation -------------------------------------------------------------


def _labels_path(run: RunDir, task: PartTask, round_: int) -> Path:
    return run.select_part(task.fp, task.step, "labels", task.part, f"round-{round_:04d}")


def nd_propagate(task: PartTask) -> int:
    """One round on one partition; returns how many label messages it sent."""
    run = RunDir(task.root)
    adj_path = run.select_part(task.fp, task.step, "adjacency", task.part, "edges")
    if task.round == 0:
        edges = _read_folder(run.select_part(task.fp, task.step, "edges", task.part))
        if edges is None:
            return 0
        src, dst = edges.column("src").to_numpy(), edges.column("dst").to_numpy()
        order = np.lexsort((dst, src))
        src, dst = src[order], dst[order]
        run.write_table(pa.table({"src": src, "dst": dst}), adj_path)
        nodes = np.unique(src)
        labels = nodes.copy()
        sending = np.ones(len(src), dtype=bool)
    else:
        if not adj_path.exists():
            return 0
        adj = read_table(adj_path)
        src, dst = adj.column("src").to_numpy(), adj.column("dst").to_numpy()
        previous = read_table(_labels_path(run, task, task.round - 1))
        nodes, labels = previous.column("node").to_numpy(), previous.column("label").to_numpy().copy()
        inbox = _read_folder(run.select_part(task.fp, task.step, f"messages-{task.round:04d}", task.part))
        changed = np.zeros(len(nodes), dtype=bool)
        if inbox is not None:
            to, label = inbox.column("dst").to_numpy(), inbox.column("label").to_numpy()
            order = np.lexsort((label, to))
            to, label = to[order], label[order]
            first = np.ones(len(to), dtype=bool)
            first[1:] = to[1:] != to[:-1]
            at = np.searchsorted(nodes, to[first])
            better = label[first] < labels[at]
            labels[at[better]] = label[first][better]
            changed[at[better]] = True
        sending = changed[np.searchsorted(nodes, src)]
    run.write_table(pa.table({"node": nodes, "label": labels}), _labels_path(run, task, task.round))
    if not sending.any():
        return 0
    to = dst[sending]
    message = pa.table({"dst": to, "label": labels[np.searchsorted(nodes, src[sending])]})
    _scatter(run, message, _part_of(to, task.n_parts), task.n_parts,
             lambda q, name: run.select_part(task.fp, task.step, f"messages-{task.round + 1:04d}", q, name),
             f"from-{task.part:05d}")
    return int(sending.sum())


# -- 5. decisions -------------------------------------------------------------------------


def nd_labels_home(task: PartTask) -> int:
    """Final labels of this partition's nodes go to the nodes' shards."""
    run = RunDir(task.root)
    path = _labels_path(run, task, task.round)
    if not path.exists():
        return 0
    labels = read_table(path)
    _scatter(run, labels, labels.column("node").to_numpy() >> SHIFT, task.n_shards,
             lambda s, name: run.select_part(task.fp, task.step, "labelled", s, name), f"from-{task.part:05d}")
    return labels.num_rows


def nd_members(task: StepTask) -> int:
    """This shard's clustered rows, with what the keep rule needs, to their label's partition."""
    run = RunDir(task.ref.root)
    sel = task.selectors[0]
    labelled = _read_folder(run.select_part(task.fp, task.step, "labelled", task.ref.index))
    if labelled is None:
        return 0
    pos = pa.array(labelled.column("node").to_numpy() & np.int64(0xFFFFFFFF))
    narrow = task.ref.narrow([sel.score] if sel.keep == "best" else [])
    table = labelled.append_column("doc_id", narrow.column("doc_id").take(pos))
    table = table.append_column("n_tokens", narrow.column("n_tokens").take(pos))
    if sel.keep == "best":
        table = table.append_column("score", narrow.column(sel.score).take(pos).cast(pa.float64()))
    n_parts = task.opts["parts"]
    _scatter(run, table, _part_of(labelled.column("label").to_numpy(), n_parts), n_parts,
             lambda q, name: run.select_part(task.fp, task.step, "members", q, name), f"from-{task.ref.index:05d}")
    return table.num_rows


def nd_decide(task: PartTask) -> int:
    """Picks each component's kept row; the others get duplicate_of (to their shard) and a
    (kept row, row) pair (to the kept row's shard) for their similarity."""
    run = RunDir(task.root)
    members = _read_folder(run.select_part(task.fp, task.step, "members", task.part))
    if members is None:
        return 0
    members = members.take(pa.array(task.selector.keeper_order(members)))
    label = members.column("label").to_numpy()
    first = np.ones(len(label), dtype=bool)
    first[1:] = label[1:] != label[:-1]
    leader = np.maximum.accumulate(np.where(first, np.arange(len(label)), 0))
    dropped = np.flatnonzero(~first)
    nodes = members.column("node").to_numpy()
    node, kept = nodes[dropped], nodes[leader[dropped]]
    table = pa.table({"pos": node & np.int64(0xFFFFFFFF),
                      "duplicate_of": members.column("doc_id").take(pa.array(leader[dropped]))})
    name = f"from-{task.part:05d}"
    _scatter(run, table, node >> SHIFT, task.n_shards,
             lambda s, name: run.select_part(task.fp, task.step, "decided", s, name), name)
    _scatter(run, pa.table({"u": kept, "v": node}), kept >> SHIFT, task.n_shards,
             lambda s, name: run.select_part(task.fp, task.step, "kept-pairs", s, name), name)
    return len(dropped)


def nd_similarity(task: StepTask) -> int:
    """Similarity of this shard's dropped rows to their kept rows."""
    run = RunDir(task.ref.root)
    n = 0
    for k, (_, v, inter, union) in enumerate(_received(task, "kept-joined")):
        sim = (inter / np.maximum(union, 1)).astype(np.float32)
        run.write_table(pa.table({"pos": v & np.int64(0xFFFFFFFF), "similarity": sim}),
                        run.select_part(task.fp, task.step, "similar", task.ref.index, f"{k:05d}"))
        n += len(v)
    return n


def _by_pos(table: pa.Table) -> pa.Table:
    return table.take(pa.array(np.argsort(table.column("pos").to_numpy(), kind="stable")))


def nd_apply(task: StepTask) -> dict:
    run = RunDir(task.ref.root)
    n = pq.read_metadata(run.narrow_table(task.ref.ingest_fp, task.ref.key)).num_rows
    state = load_state(run, task, n, task.extra)
    decided = _read_folder(run.select_part(task.fp, task.step, "decided", task.ref.index))
    if decided is not None:
        decided = _by_pos(decided)
        similar = _by_pos(_read_folder(run.select_part(task.fp, task.step, "similar", task.ref.index)))
        assert similar.column("pos").equals(decided.column("pos")), "every dropped row has one similarity"
        mask = np.zeros(n, dtype=bool)
        mask[decided.column("pos").to_numpy()] = True
        given = {"keep": pa.array(np.zeros(decided.num_rows, dtype=bool)),
                 "reason": pa.array([task.selectors[0].reject_reason] * decided.num_rows, pa.string()),
                 "duplicate_of": decided.column("duplicate_of").combine_chunks(),
                 "similarity": similar.column("similarity").combine_chunks()}
        for name, values in given.items():
            i = state.schema.get_field_index(name)
            column = state.column(name).combine_chunks()
            state = state.set_column(i, name, pc.replace_with_mask(column, pa.array(mask), values.cast(column.type)))
    run.write_table(state, state_path(run, task.fp, task.step, task.ref.key))
    return {"alive": int(state.column("keep").to_numpy(zero_copy_only=False).sum())}


def partitions(n_shards: int) -> int:
    """Buckets and edge partitions: one per shard, as shards are sized to fit a task."""
    return max(1, n_shards)


@engine("components")
def run_components(ctx: StepContext, selector, step: str, prev: str | None) -> None:
    shutil.rmtree(ctx.run.select_dir(ctx.fp, step), ignore_errors=True)
    n_shards = len(ctx.refs)
    n_parts = partitions(n_shards)
    extra = {**ctx.extra, **selector.extra_columns}
    opts = {"parts": n_parts, "shards": n_shards}
    tasks = [StepTask(ref, ctx.fp, prev, step, [selector], ctx.seed, extra, opts) for ref in ctx.refs]
    name = selector.registry_name

    def parts(round_: int = 0) -> list[PartTask]:
        return [PartTask(str(ctx.run.root), ctx.fp, step, q, selector, n_parts, n_shards, round_)
                for q in range(n_parts)]

    def joining(src: str, dst: str) -> list[StepTask]:
        return [replace(t, opts={**opts, "join": (src, dst)}) for t in tasks]

    counted = ctx.executor.map(nd_bands, tasks, desc=f"{name} bands", labels=ctx.labels)
    candidates = sum(ctx.executor.map(nd_candidates, parts(), desc=f"{name} candidates"))
    ctx.executor.map(nd_attach, joining("pairs", "joined"), desc=f"{name} join", labels=ctx.labels)
    edges = sum(ctx.executor.map(nd_verify, tasks, desc=f"{name} verify", labels=ctx.labels))
    round_ = 0
    while sum(ctx.executor.map(nd_propagate, parts(round_), desc=f"{name} components")):
        round_ += 1
    ctx.executor.map(nd_labels_home, parts(round_), desc=f"{name} labels")
    ctx.executor.map(nd_members, tasks, desc=f"{name} members", labels=ctx.labels)
    dropped = sum(ctx.executor.map(nd_decide, parts(), desc=f"{name} decide"))
    ctx.executor.map(nd_attach, joining("kept-pairs", "kept-joined"), desc=f"{name} join kept", labels=ctx.labels)
    ctx.executor.map(nd_similarity, tasks, desc=f"{name} similarity", labels=ctx.labels)
    ctx.executor.map(nd_apply, tasks, desc=f"{name} apply", labels=ctx.labels)
    ctx.info.setdefault("components", {})[step] = {
        "selector": name, "rows": sum(c["alive"] for c in counted), "candidate_pairs": candidates,
        "verified_pairs": edges, "rounds": round_ + 1, "near_duplicates": dropped}
