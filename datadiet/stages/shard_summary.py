"""A shard's counts after selection: rows, tokens and bytes kept and dropped, by source and
by reason, for the manifest and for the output layout (which cuts files by bytes).

Read from the shard's narrow table and its final select state; a recipe without select
steps keeps every row, and its score tasks count their shards as they finish
(``summarize_narrow``), which spares the run a stage.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..rundir import RunDir, read_table
from .shard_ref import ShardRef


@dataclass
class SummaryTask:
    ref: ShardRef
    fp: str
    step: str | None


def shard_summary(task: SummaryTask) -> dict:
    """Counts for the manifest and byte totals for the layout, from the final state."""
    run = RunDir(task.ref.root)
    narrow = read_table(run.narrow_table(task.ref.ingest_fp, task.ref.key),
                        columns=["n_tokens", "n_bytes", "source"])
    return summarize_narrow(narrow, final_state(run, task.fp, task.step, task.ref.key))


def summarize_narrow(narrow: pa.Table, state: pa.Table | None = None) -> dict:
    """The counts of one shard's narrow table (n_tokens, n_bytes, source) under its final
    select ``state`` (keep, reason); without one, every row is kept."""
    keep = np.ones(narrow.num_rows, bool) if state is None else state.column("keep").to_numpy(zero_copy_only=False)
    tokens = narrow.column("n_tokens").to_numpy()
    nbytes = narrow.column("n_bytes").to_numpy()
    out = {
        "selected_rows": int(keep.sum()), "rejected_rows": int((~keep).sum()),
        "selected_tokens": int(tokens[keep].sum()), "rejected_tokens": int(tokens[~keep].sum()),
        "selected_bytes": int(nbytes[keep].sum()), "rejected_bytes": int(nbytes[~keep].sum()),
        "by_source": {}, "reasons": {},
    }
    codes = pc.dictionary_encode(narrow.column("source").combine_chunks())
    names, index = codes.dictionary.to_pylist(), codes.indices.to_numpy(zero_copy_only=False)
    n = len(names)
    selected = np.bincount(index[keep], minlength=n)
    rejected = np.bincount(index[~keep], minlength=n)
    kept_tokens = np.zeros(n, np.int64)
    np.add.at(kept_tokens, index[keep], tokens[keep])
    for i in sorted(range(n), key=names.__getitem__):
        out["by_source"][names[i]] = {"selected": int(selected[i]), "rejected": int(rejected[i]),
                                      "selected_tokens": int(kept_tokens[i])}
    if state is not None and not keep.all():
        counts = pc.value_counts(state.column("reason").filter(pa.array(~keep)))
        for r, c in zip(counts.field("values").to_pylist(), counts.field("counts").to_pylist()):
            out["reasons"][r] = c
    return out


def final_state(run: RunDir, fp: str, step: str | None, key: str) -> pa.Table | None:
    """The shard's state after the last select step (None: no steps, every row kept)."""
    return None if step is None else read_table(run.select_state(fp, step, key))


def final_keep(state: pa.Table | None, n: int) -> np.ndarray:
    return np.ones(n, dtype=bool) if state is None else state.column("keep").to_numpy(zero_copy_only=False)
