"""Write stage: selected rows → data/, rejected rows → rejected/ (with ``reason``).

Output files are laid out over the *global* sequence of rows (shards in input order, rows
in file order), cut every ``target_file_bytes`` of text, so the files and their bytes do
not depend on how the input was sharded or how many workers ran. One task per output
file reads the shards that file spans; every file is written under ``.staging`` and
renamed into place when the whole stage has succeeded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ..readers.base import ReadItem, Shard
from ..readers.source import Source
from ..registry import get
from ..rundir import RunDir, read_metadata, read_table
from . import text_cache
from .ingest import QUARANTINE_SCHEMA, Ingest
from .score import ScorerSpec, ingest_paths
from .shard_ref import ShardRef
from .shard_summary import final_keep, final_state


@dataclass
class FileTask:
    root: str
    kind: str  # "data" or "rejected"
    index: int
    lo: int  # global byte offsets [lo, hi) of this file's rows
    hi: int
    refs: list[ShardRef]
    shards: list[Shard]
    starts: list[int]  # global offset of each listed shard's first row of this kind
    source: Source
    schema: pa.Schema
    select_fp: str
    step: str | None
    extra: dict
    staged: str
    score_specs: list[ScorerSpec] = field(default_factory=list)
    include_scores: bool = False
    stats_specs: list[ScorerSpec] = field(default_factory=list)


def plan_files(summaries: list[dict], kind: str, target_bytes: int) -> list[tuple[int, int, list[int], list[int]]]:
    """(lo, hi, shard indices, their start offsets) for each output file of ``kind``."""
    sizes = [s[f"{'selected' if kind == 'data' else 'rejected'}_bytes"] for s in summaries]
    rows = [s[f"{'selected' if kind == 'data' else 'rejected'}_rows"] for s in summaries]
    starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    total = int(starts[-1])
    n_files = max(1, -(-total // target_bytes)) if total else (1 if kind == "data" else 0)
    plans = []
    for k in range(n_files):
        lo, hi = k * target_bytes, (k + 1) * target_bytes if k < n_files - 1 else max(total, 1) + 1
        idx = [i for i in range(len(sizes)) if rows[i] and starts[i] < hi and
               (starts[i] + sizes[i] > lo or (sizes[i] == 0 and starts[i] >= lo))]
        plans.append((lo, hi, idx, [int(starts[i]) for i in idx]))
    return plans


ROW_GROUP_ROWS = 2048


class _RowGroups:
    """Streams rows into a Parquet writer in row groups of exactly ``ROW_GROUP_ROWS`` rows,
    each one contiguous chunk per column (the writer cuts pages at chunk boundaries), so the
    bytes written do not depend on how the rows arrived (shards, batches, slices)."""

    def __init__(self, writer):
        self.writer = writer
        self.pending: list[pa.Table] = []
        self.count = 0
        self.rows = 0

    def add(self, table: pa.Table) -> None:
        self.pending.append(table)
        self.count += table.num_rows
        self.rows += table.num_rows
        while self.count >= ROW_GROUP_ROWS:
            merged = pa.concat_tables(self.pending)
            self.writer.write(merged.slice(0, ROW_GROUP_ROWS).combine_chunks())
            rest = merged.slice(ROW_GROUP_ROWS)
            self.pending, self.count = ([rest] if rest.num_rows else []), rest.num_rows

    def flush(self) -> None:
        if self.count:
            self.writer.write(pa.concat_tables(self.pending).combine_chunks())
        self.pending, self.count = [], 0


def write_file(task: FileTask) -> dict:
    """Writes one staged output file, streaming shard by shard; returns its row count and
    selection statistics."""
    run = RunDir(task.root)
    staged = Path(task.staged)
    if staged.exists():
        return {"rows": pq.read_metadata(staged).num_rows, **read_metadata(staged).get("datadiet", {})}
    want_kept = task.kind == "data"
    stats: dict = {}
    writer = run.writer(staged, _out_schema(task), row_group_size=ROW_GROUP_ROWS, plain_columns=plain_columns(task.source))
    groups = _RowGroups(writer)
    columns = ["row", "n_bytes"] + (["doc_id"] if _needs_doc_id(task) else [])
    try:
        for ref, shard, start in zip(task.refs, task.shards, task.starts):
            narrow = read_table(ingest_paths(run, ref.ingest_fp, ref.key)[0], columns=columns)
            state = final_state(run, task.select_fp, task.step, ref.key)
            keep = final_keep(state, narrow.num_rows)
            pos = np.flatnonzero(keep if want_kept else ~keep)
            nbytes = narrow.column("n_bytes").to_numpy()[pos]
            offsets = start + np.concatenate([[0], np.cumsum(nbytes)[:-1]]) if len(pos) else np.zeros(0, np.int64)
            pos = pos[(offsets >= task.lo) & (offsets < task.hi)]
            if not len(pos):
                continue
            extra_cols = _extra_columns(task, ref, narrow, state, pos)
            for piece in _read_rows(task, ref, shard, narrow.column("row").to_numpy()[pos], extra_cols, stats):
                groups.add(piece)
        groups.flush()
    except BaseException:
        writer.abort()
        raise
    summary = {"stats": {k: {n: v.tolist() for n, v in d.items()} for k, d in stats.items()}}
    if groups.rows or task.kind == "data":
        writer.close(metadata={"datadiet": summary})
    else:
        writer.abort()
    return {"rows": groups.rows, **summary}


def plain_columns(source: Source) -> list[str]:
    """Output columns written without dictionary encoding: the text and the ids."""
    return source.text_columns() + [c for c in (source.id_column, "doc_id") if c]


def _needs_doc_id(task: FileTask) -> bool:
    """Whether the rows written carry their doc ids (rejected rows, or with their scores)."""
    return task.kind == "rejected" or task.include_scores


def _out_schema(task: FileTask) -> pa.Schema:
    fields = list(task.schema)
    if _needs_doc_id(task):
        fields.append(pa.field("doc_id", pa.string()))
    if task.kind == "rejected":
        fields.append(pa.field("reason", pa.string()))
        fields += [pa.field(k, t) for k, t in task.extra.items()]
    if task.include_scores:
        for spec in task.score_specs:
            fields += [pa.field(c, t) for c, t in spec.columns().items()]
    return pa.schema(fields)


def _extra_columns(task: FileTask, ref: ShardRef, narrow: pa.Table, state, pos: np.ndarray) -> dict:
    idx = pa.array(pos)
    cols = {}
    if _needs_doc_id(task):
        cols["doc_id"] = narrow.column("doc_id").take(idx)
    if task.kind == "rejected":
        for name in ["reason"] + list(task.extra):
            cols[name] = state.column(name).take(idx) if state is not None and name in state.column_names \
                else pa.nulls(len(pos), pa.string())
    if task.include_scores:
        score_cols = [c for spec in task.score_specs for c in spec.columns()]
        scores = ref.narrow(score_cols)
        for c in score_cols:
            cols[c] = scores.column(c).take(idx)
    return cols


def _read_rows(task: FileTask, ref: ShardRef, shard: Shard, rows: np.ndarray, extra: dict, stats: dict):
    """Yields the wanted file rows (ascending) of one shard, every original column plus
    ``extra`` (row-aligned with ``rows``), batch by batch: from the batches the score pass
    kept in this process where it kept them, else read again."""
    lo, hi = int(rows[0]), int(rows[-1])
    done = 0
    schema = _out_schema(task)
    kept = text_cache.recall((ref.root, ref.ingest_fp, ref.key))
    items = (ReadItem(batch=b, rows=r) for b, r in kept) if kept is not None else \
        get("reader", shard.reader)().read(shard, task.source.batch_size, schema=task.schema, rows=(lo, hi))
    for item in items:
        if item.batch is None or item.rows[-1] < lo or item.rows[0] > hi:
            continue
        idx = _wanted(item.rows, rows)
        n = len(idx)
        if not n:
            continue
        table = _pick(pa.Table.from_batches([item.batch]), idx)
        if task.stats_specs:
            _selection_stats(task, table, extra.get("doc_id").slice(done, n) if "doc_id" in extra else None, stats)
        for name, column in extra.items():
            table = table.append_column(name, column.slice(done, n))
        done += n
        yield table if table.schema.equals(schema) else table.cast(schema)
    if done != len(rows):
        raise OSError(f"{shard.label} changed since it was scored: expected {len(rows)} rows, read {done}")


def _pick(table: pa.Table, idx: np.ndarray) -> pa.Table:
    """Rows ``idx`` (ascending) of ``table``: zero-copy slices when they form a few runs."""
    if len(idx) == table.num_rows:
        return table
    cuts = np.flatnonzero(np.diff(idx) != 1) + 1
    if len(cuts) > 16:
        return table.take(pa.array(idx))
    runs = np.split(idx, cuts)
    return pa.concat_tables([table.slice(int(r[0]), len(r)) for r in runs])


def _wanted(batch_rows: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Positions in a batch (file rows ``batch_rows``, ascending) of the wanted ``rows``."""
    a, b = int(np.searchsorted(rows, batch_rows[0])), int(np.searchsorted(rows, batch_rows[-1], side="right"))
    want = rows[a:b]
    if batch_rows[-1] - batch_rows[0] + 1 == len(batch_rows):  # consecutive rows: plain arithmetic
        return want - batch_rows[0]
    return np.flatnonzero(np.isin(batch_rows, want, assume_unique=True))


def _selection_stats(task: FileTask, table: pa.Table, doc_id, stats: dict) -> None:
    ingest = Ingest(task.source)
    done = 0
    for b in table.combine_chunks().to_batches():
        text = ingest.text(b)
        ids = doc_id.slice(done, len(text)).combine_chunks() if doc_id is not None else pa.nulls(len(text), pa.string())
        done += len(text)
        view = pa.RecordBatch.from_pydict({"doc_id": ids, "text": text, "n_tokens": ingest.count_tokens(text)})
        for spec in task.stats_specs:
            got = spec.ready().selection_stats(view)
            if got:
                acc = stats.setdefault(spec.name, {})
                for k, v in got.items():
                    acc[k] = acc[k] + np.asarray(v) if k in acc else np.asarray(v)


def stage_quarantine(run: RunDir, ingest_fp: str, shard_keys: list[str], staged: Path) -> list[Path]:
    """Gathers the shards' quarantined rows into one staged file (none when no row was)."""
    parts = [read_table(q) for key in shard_keys if (q := ingest_paths(run, ingest_fp, key)[1]).exists()]
    if not parts:
        return []
    run.write_table(pa.concat_tables(parts).cast(QUARANTINE_SCHEMA), staged)
    return [staged]
