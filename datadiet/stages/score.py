"""Score stage: one task per shard reads the text once, ingests it and runs every scorer
whose sidecar is missing, writing one sidecar per (scorer, shard):

    scores/_ingest/<fingerprint>/<shard>.parquet   doc_id, row, n_tokens, n_bytes, source
    scores/<scorer>/<fingerprint>/<shard>.parquet  doc_id + that scorer's columns

A sidecar exists only once complete (atomic rename), so a rerun reuses it.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..readers.base import Shard
from ..readers.source import Source
from ..rundir import RunDir, read_metadata, read_table
from ..scorers.base import NULL_REASON, SCORE_KEY, Scorer
from . import text_cache
from .ingest import NARROW_SCHEMA, QUARANTINE_SCHEMA, Ingest
from .shard_summary import summarize_narrow

_READY: dict[str, Scorer] = {}


def column_name(instance: str, key: str) -> str:
    return instance if key == SCORE_KEY else f"{instance}.{key}"


@dataclass
class ScorerSpec:
    """A scorer instance in a recipe: its name (column prefix), object and fingerprint."""

    name: str
    scorer: Scorer
    fingerprint: str = ""

    def columns(self) -> dict[str, pa.DataType]:
        return {column_name(self.name, k): t for k, t in self.scorer.output_columns().items()}

    def sidecar_schema(self) -> pa.Schema:
        fields = [("doc_id", pa.string())] + list(self.columns().items())
        return pa.schema(fields + [(f"{self.name}.{NULL_REASON}", pa.string())])

    def sidecar(self, run: RunDir, shard_key: str) -> Path:
        return run.sidecar(self.name, self.fingerprint, shard_key)

    def ready(self) -> Scorer:
        """The scorer, set up once per worker process."""
        scorer = _READY.get(self.fingerprint)
        if scorer is None:
            scorer = self.scorer
            scorer.setup()
            _READY[self.fingerprint] = scorer
        return scorer


def ingest_paths(run: RunDir, ingest_fp: str, shard_key: str) -> tuple[Path, Path]:
    return run.narrow_table(ingest_fp, shard_key), run.shard_quarantine(ingest_fp, shard_key)


@dataclass
class ScoreTask:
    shard: Shard
    source: Source
    schema: pa.Schema | None
    root: str
    ingest_fp: str
    specs: list[ScorerSpec] = field(default_factory=list)
    #: score columns read from earlier sidecars: column -> sidecar path template (shard key added)
    inputs: dict[str, tuple[str, str]] = field(default_factory=dict)
    #: cascade: (select fingerprint, step) of the cheap filters; only rows they kept are scored
    alive: tuple[str, str] | None = None
    #: a recipe without select steps keeps every row: count the shard here (see shard_summary)
    summarize: bool = False
    #: keep the shard's batches in this process for the write (see text_cache)
    keep_text: bool = False


def run_score_task(task: ScoreTask) -> dict:
    """Runs one shard; returns its statistics (also kept in the sidecars' metadata)."""
    run = RunDir(task.root)
    key = task.shard.key
    narrow_path, quarantine_path = ingest_paths(run, task.ingest_fp, key)
    todo = [s for s in task.specs if not s.sidecar(run, key).exists()]
    started = time.perf_counter()
    reused = narrow_path.exists() and not todo
    kept = False
    if not narrow_path.exists() or any(s.scorer.view_columns for s in todo):
        kept = _pass_over_text(run, task, todo, narrow_path, quarantine_path)
    elif todo:
        _pass_over_sidecars(run, task, todo, narrow_path)
    out = _collect(run, task, narrow_path, reused=reused)
    if task.summarize:
        out["summary"] = summarize_narrow(read_table(narrow_path, columns=["n_tokens", "n_bytes", "source"]))
    if kept:
        out["text_kept_on"] = text_cache.worker_address() or "this process"
    if not reused:
        out["seconds"] = time.perf_counter() - started
    return out


def _pass_over_text(run: RunDir, task: ScoreTask, todo: list[ScorerSpec], narrow_path, quarantine_path) -> bool:
    """Reads the shard once: ingest, scorers; says whether its batches were kept."""
    ingest = Ingest(task.source, task.schema)
    write_ingest = not narrow_path.exists()
    writers = {s.name: run.writer(s.sidecar(run, task.shard.key), s.sidecar_schema(), plain_columns=["doc_id"])
               for s in todo}
    narrow_writer = run.writer(narrow_path, NARROW_SCHEMA, plain_columns=["doc_id"]) if write_ingest else None
    inputs = _InputColumns(run, task) if task.inputs else None
    alive = _Alive(run, task) if task.alive else None
    quarantine, stats = [], _Stats(todo)
    kept = [] if task.keep_text else None
    try:
        # columnar formats read only the columns scoring needs (all of them when the batches
        # are kept for the write); JSONL is parsed whole so that a line is accepted or
        # quarantined the same way here and in the write stage
        columns = None if task.shard.reader == "jsonl" or kept is not None else task.source.required_columns()
        for item in ingest.run(task.shard, columns=columns, kept=kept):
            quarantine += item.quarantine
            if item.view is None:
                continue
            view = inputs.attach(item.view) if inputs else item.view
            stats.rows += view.num_rows
            if narrow_writer is not None:
                narrow_writer.write(item.narrow)
                stats.tokens += int(pc.sum(item.narrow.column("n_tokens")).as_py() or 0)
            mask, why = alive.next(view.num_rows) if alive else (None, None)
            for spec in todo:
                batch = _score(spec, view, stats) if mask is None else _score_alive(spec, view, mask, why, stats)
                writers[spec.name].write(batch)
        for spec in todo:
            writers[spec.name].close(metadata={"null_reasons": dict(stats.null_reasons[spec.name]),
                                               "seconds": stats.seconds[spec.name],
                                               "rows_scored": stats.scored[spec.name],
                                               "tokens_skipped": stats.skipped_tokens[spec.name]})
        if narrow_writer is not None:
            if quarantine:
                run.write_table(pa.Table.from_pylist(quarantine, schema=QUARANTINE_SCHEMA), quarantine_path)
            narrow_writer.close(metadata={"rows": stats.rows, "tokens": stats.tokens,
                                          "quarantined_rows": sum((q["n_rows"] or 0) for q in quarantine),
                                          "unreadable": [q["error"] for q in quarantine if q["n_rows"] is None]})
    except BaseException:
        for w in list(writers.values()) + ([narrow_writer] if narrow_writer else []):
            w.abort()
        raise
    return kept is not None and text_cache.remember((task.root, task.ingest_fp, task.shard.key), kept)


def _pass_over_sidecars(run: RunDir, task: ScoreTask, todo: list[ScorerSpec], narrow_path):
    narrow = read_table(narrow_path, columns=["doc_id", "n_tokens"])
    view = pa.Table.from_pydict({"doc_id": narrow.column("doc_id"), "n_tokens": narrow.column("n_tokens")})
    view = _InputColumns(run, task).attach_table(view)
    stats = _Stats(todo)
    for spec in todo:
        writer = run.writer(spec.sidecar(run, task.shard.key), spec.sidecar_schema(), plain_columns=["doc_id"])
        try:
            for batch in view.to_batches(max_chunksize=task.source.batch_size):
                writer.write(_score(spec, batch, stats))
        except BaseException:
            writer.abort()
            raise
        writer.close(metadata={"null_reasons": dict(stats.null_reasons[spec.name]),
                               "seconds": stats.seconds[spec.name], "rows_scored": stats.scored[spec.name]})


class _Stats:
    def __init__(self, specs):
        self.rows = 0
        self.tokens = 0
        self.null_reasons = {s.name: Counter() for s in specs}
        self.seconds = {s.name: 0.0 for s in specs}
        self.scored = {s.name: 0 for s in specs}
        self.skipped_tokens = {s.name: 0 for s in specs}


class _Alive:
    """The cheap stage's decisions for this shard, consumed view by view (row-aligned)."""

    def __init__(self, run: RunDir, task: ScoreTask):
        state = read_table(run.select_state(task.alive[0], task.alive[1], task.shard.key),
                           columns=["keep", "reason"])
        self.keep = state.column("keep").to_numpy(zero_copy_only=False)
        self.reason = state.column("reason")
        self.offset = 0

    def next(self, n: int) -> tuple[np.ndarray, pa.Array]:
        a, self.offset = self.offset, self.offset + n
        return self.keep[a:a + n], self.reason.slice(a, n).combine_chunks()


def _score_alive(spec: ScorerSpec, view: pa.RecordBatch, mask: np.ndarray, why: pa.Array,
                 stats: _Stats) -> pa.RecordBatch:
    """Scores only the rows the cheap stage kept; the others get nulls with the reason."""
    tokens = view.column("n_tokens").to_numpy()
    stats.skipped_tokens[spec.name] += int(tokens[~mask].sum())
    scored = _score(spec, view.filter(pa.array(mask)), stats) if mask.any() else None
    idx = np.cumsum(mask) - 1
    take = pa.array(np.where(mask, idx, 0), mask=~mask)
    schema = spec.sidecar_schema()
    arrays = [view.column("doc_id")]
    for i, f in enumerate(schema):
        if i == 0:
            continue
        if f.name.endswith(f".{NULL_REASON}"):
            given = scored.column(i).take(take) if scored is not None else pa.nulls(len(mask), pa.string())
            dropped = pc.binary_join_element_wise("cascade: ", why.fill_null("filtered"), "")
            arrays.append(pc.if_else(pa.array(mask), given, dropped))
        else:
            arrays.append(scored.column(i).take(take) if scored is not None else pa.nulls(len(mask), f.type))
    out = pa.RecordBatch.from_arrays(arrays, schema=schema)
    stats.null_reasons[spec.name].update(f"cascade: {r or 'filtered'}" for r in why.filter(pa.array(~mask)).to_pylist())
    return out


def _score(spec: ScorerSpec, view: pa.RecordBatch, stats: _Stats) -> pa.RecordBatch:
    stats.scored[spec.name] += view.num_rows
    scorer = spec.ready()
    started = time.perf_counter()
    result = scorer.score_batch(view)
    stats.seconds[spec.name] += time.perf_counter() - started
    schema = spec.sidecar_schema()
    arrays = [view.column("doc_id")]
    for key, dtype in spec.scorer.output_columns().items():
        values = result.get(key)
        if values is None:
            raise ValueError(f"scorer {spec.name!r} returned no {key!r} column")
        if len(values) != view.num_rows:
            raise ValueError(f"scorer {spec.name!r} returned {len(values)} values for {key!r}, "
                             f"expected {view.num_rows}")
        values = pa.array(values) if not isinstance(values, (pa.Array, pa.ChunkedArray)) else values
        arrays.append(values.cast(dtype) if values.type != dtype else values)
    reasons = result.get(NULL_REASON)
    reasons = pa.nulls(view.num_rows, pa.string()) if reasons is None else pa.array(reasons, pa.string()) \
        if not isinstance(reasons, pa.Array) else reasons
    stats.null_reasons[spec.name].update(r for r in reasons.to_pylist() if r is not None)
    arrays.append(reasons)
    return pa.RecordBatch.from_arrays([a.combine_chunks() if isinstance(a, pa.ChunkedArray) else a
                                       for a in arrays], schema=schema)


class _InputColumns:
    """Score columns of earlier rounds, read from their sidecars for this shard and handed
    to scorers alongside the view, row-aligned."""

    def __init__(self, run: RunDir, task: ScoreTask):
        by_file: dict[str, list[str]] = {}
        for column, (scorer_name, fp) in task.inputs.items():
            path = str(run.sidecar(scorer_name, fp, task.shard.key))
            by_file.setdefault(path, []).append(column)
        tables = [read_table(path, columns=cols) for path, cols in sorted(by_file.items())]
        self.columns = {name: t.column(name) for t in tables for name in t.column_names}
        self.offset = 0

    def attach(self, view: pa.RecordBatch) -> pa.RecordBatch:
        n = view.num_rows
        arrays = list(view.columns) + [c.slice(self.offset, n).combine_chunks() for c in self.columns.values()]
        self.offset += n
        return pa.RecordBatch.from_arrays(arrays, names=view.schema.names + list(self.columns))

    def attach_table(self, table: pa.Table) -> pa.Table:
        for name, column in self.columns.items():
            table = table.append_column(name, column)
        return table


def _collect(run: RunDir, task: ScoreTask, narrow_path: Path, reused: bool) -> dict:
    meta = read_metadata(narrow_path)
    if "rows" in meta and "tokens" in meta:  # written by the pass itself; older tables are read
        rows, tokens = meta["rows"], meta["tokens"]
    else:
        n_tokens = read_table(narrow_path, columns=["n_tokens"]).column("n_tokens")
        rows, tokens = len(n_tokens), int(pc.sum(n_tokens).as_py() or 0)
    scorers = {}
    for spec in task.specs:
        smeta = read_metadata(spec.sidecar(run, task.shard.key))
        scorers[spec.name] = {"null_reasons": smeta.get("null_reasons", {}), "seconds": smeta.get("seconds", 0.0),
                              "rows_scored": smeta.get("rows_scored"), "tokens_skipped": smeta.get("tokens_skipped", 0)}
    return {
        "shard": task.shard.key,
        "rows": rows,
        "tokens": tokens,
        "quarantined_rows": meta.get("quarantined_rows", 0),
        "unreadable": meta.get("unreadable", []),
        "scorers": scorers,
        "reused": reused,
    }
