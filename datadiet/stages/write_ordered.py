"""Write stage in a selected order (rank or curriculum): a shuffle of the selected rows.

Each selected row has a global byte offset in the output order (``bytes_before`` from the
ranker; a repeated row's copy ``j`` sits at ``j * kept_bytes + bytes_before``, one pass
after another). Output file ``k`` holds the rows whose offset falls in
``[k * target_file_bytes, (k + 1) * target_file_bytes)``, so the files depend neither on
sharding nor on worker count.

- ``scatter_shard`` (one task per input shard) reads the shard's selected rows once and
  writes them, with their offset, into one piece per output file they fall in;
- ``gather_file`` (one task per output file) sorts its pieces by offset and writes the
  file in fixed-size row groups.

Memory per task is one shard's selected rows or one output file, never the corpus.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..readers.base import Shard
from ..rundir import RunDir, read_table
from .shard_ref import ShardRef
from .shard_summary import final_state
from .write import ROW_GROUP_ROWS, FileTask, _extra_columns, _out_schema, _read_rows, _RowGroups


@dataclass
class ScatterTask:
    file: FileTask  # the columns, source and selection this shard's rows are written with
    ref: ShardRef
    shard: Shard
    folder: str  # the scatter folder of this write
    target_bytes: int
    kept_bytes: int
    with_repeat: bool
    #: cumulative tokens where curriculum phases start (empty: no curriculum)
    phase_tokens: list[int] = field(default_factory=list)


def _piece_dir(folder: str, k: int) -> Path:
    return Path(folder) / f"file-{k:05d}"


def scatter_shard(task: ScatterTask) -> dict:
    run = RunDir(task.file.root)
    done = Path(task.folder) / "done" / f"{task.ref.key}.json"
    if done.exists():
        summary = json.loads(done.read_text())
        if all(Path(task.folder, piece).exists() for piece in summary["pieces"]):
            return summary
    pieces = []
    state = final_state(run, task.file.select_fp, task.file.step, task.ref.key)
    keep = state.column("keep").to_numpy(zero_copy_only=False)
    pos = np.flatnonzero(keep)
    stats: dict = {}
    if len(pos):
        narrow = read_table(run.narrow_table(task.ref.ingest_fp, task.ref.key), columns=["row", "n_bytes", "doc_id"])
        extra = _extra_columns(task.file, task.ref, narrow, state, pos)
        rows = narrow.column("row").to_numpy()[pos]
        table = pa.concat_tables(list(_read_rows(task.file, task.ref, task.shard, rows, extra, stats)))
        before = state.column("bytes_before").to_numpy()[pos]
        repeat = state.column("repeat").to_numpy()[pos] if "repeat" in state.column_names else np.ones(len(pos))
        for j in range(int(repeat.max())):
            mine = np.flatnonzero(repeat > j)
            copy = table if len(mine) == table.num_rows else table.take(pa.array(mine))
            offset = j * task.kept_bytes + before[mine]
            if task.with_repeat:
                copy = copy.append_column("repeat", pa.array(np.full(len(mine), j, np.int32)))
            copy = copy.append_column("__offset", pa.array(offset, pa.int64()))
            files = offset // task.target_bytes
            for k in np.unique(files).tolist():
                target = _piece_dir(task.folder, k) / f"{task.ref.key}-{j}.parquet"
                run.write_table(copy.filter(pa.array(files == k)), target)
                pieces.append(str(target.relative_to(task.folder)))
            if task.phase_tokens and j == 0:
                pieces += _scatter_phases(run, task, copy, state.column("tokens_before").to_numpy()[pos][mine], files)
    summary = {"pieces": pieces, "stats": {k: {n: np.asarray(v).tolist() for n, v in d.items()} for k, d in stats.items()}}
    run.write_json(summary, done)
    return summary


def phase_folder(folder: str, phase: int) -> Path:
    return Path(folder) / "curriculum" / f"phase={phase}"


def _scatter_phases(run: RunDir, task: ScatterTask, copy: pa.Table, tokens_before: np.ndarray,
                    files: np.ndarray) -> list[str]:
    """The same rows, also cut by curriculum phase (``curriculum/phase=k/``)."""
    phase = np.searchsorted(np.asarray(task.phase_tokens), tokens_before, side="right") - 1
    pieces = []
    for ph, k in sorted(set(zip(phase.tolist(), files.tolist()))):
        target = _piece_dir(str(phase_folder(task.folder, ph)), k) / f"{task.ref.key}.parquet"
        run.write_table(copy.filter(pa.array((phase == ph) & (files == k))), target)
        pieces.append(str(target.relative_to(task.folder)))
    return pieces


@dataclass
class GatherTask:
    root: str
    folder: str
    index: int
    staged: str
    schema: pa.Schema
    plain: list[str] = field(default_factory=list)  # columns without dictionary encoding


def gather_file(task: GatherTask) -> int:
    run = RunDir(task.root)
    staged = Path(task.staged)
    if staged.exists():
        return pq.read_metadata(staged).num_rows
    pieces = sorted(_piece_dir(task.folder, task.index).glob("*.parquet"))
    table = pa.concat_tables([read_table(p) for p in pieces]) if pieces else None
    writer = run.writer(staged, task.schema, row_group_size=ROW_GROUP_ROWS, plain_columns=task.plain)
    groups = _RowGroups(writer)
    try:
        if table is None:
            groups.add(task.schema.empty_table())
        else:  # taken in offset order a row group at a time: one copy of the file in memory, not two
            order = pc.sort_indices(table.column("__offset"))
            for lo in range(0, len(order), ROW_GROUP_ROWS):
                chunk = table.take(order.slice(lo, ROW_GROUP_ROWS)).drop_columns(["__offset"])
                groups.add(chunk.cast(task.schema))
        groups.flush()
    except BaseException:
        writer.abort()
        raise
    writer.close()
    return groups.rows


def ordered_schema(file_task: FileTask, with_repeat: bool) -> pa.Schema:
    schema = _out_schema(file_task)
    return schema.append(pa.field("repeat", pa.int32())) if with_repeat else schema


__all__ = ["ScatterTask", "GatherTask", "scatter_shard", "gather_file", "ordered_schema"]
