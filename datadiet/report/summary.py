"""One streaming pass over a run's decisions: exact totals per source, a bounded hash
sample of rows for plots, the extreme rows of every score and cluster coverage."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .data import RunDecisions, load_decisions, locate, sample_mask, sample_rate

MAX_SAMPLE_ROWS = 200_000
N_EXAMPLES = 3


@dataclass
class Extremes:
    """The ``n`` highest and lowest values of one score: (value, doc_id, shard, row, kept)."""

    n: int = N_EXAMPLES
    top: list[tuple] = field(default_factory=list)
    bottom: list[tuple] = field(default_factory=list)

    def add(self, table: pa.Table, column: str) -> None:
        values = table.column(column).to_numpy(zero_copy_only=False).astype(np.float64)
        ok = np.flatnonzero(~np.isnan(values))
        if not len(ok):
            return
        order = ok[np.argsort(values[ok], kind="stable")]
        for idx, target, reverse in ((order[::-1][: self.n], "top", True), (order[: self.n], "bottom", False)):
            rows = [(float(values[i]), table.column("doc_id")[i].as_py(), table.column("shard")[i].as_py(),
                     table.column("row")[i].as_py(), bool(table.column("kept")[i].as_py())) for i in idx]
            merged = sorted(getattr(self, target) + rows, key=lambda r: (r[0], r[1]), reverse=reverse)
            setattr(self, target, merged[: self.n])


@dataclass
class RunSummary:
    """What the report and the diagnostics need, gathered in one pass."""

    decisions: RunDecisions
    rate: float
    sample: pa.Table
    by_source: dict[str, dict[str, int]]
    extremes: dict[str, Extremes]
    #: cluster column -> (clusters with a row, clusters with a kept row)
    clusters: dict[str, tuple[int, int]]
    #: plots drawn from this summary, by name (see :func:`datadiet.report.html.draw_figures`)
    figures: dict = field(default_factory=dict)

    @property
    def score_columns(self) -> list[str]:
        return self.decisions.score_columns


def summarize(run_dir: str | Path, manifest: dict, max_sample_rows: int = MAX_SAMPLE_ROWS) -> RunSummary:
    found = locate(run_dir, manifest)
    rate = sample_rate(manifest, max_sample_rows)
    by_source: dict[str, dict[str, int]] = {}
    extremes = {c: Extremes() for c in found.score_columns}
    seen: dict[str, set] = {c: set() for c in found.cluster_columns}
    covered: dict[str, set] = {c: set() for c in found.cluster_columns}
    parts = []
    for table in load_decisions(run_dir, manifest, found):
        kept = table.column("kept").to_numpy(zero_copy_only=False)
        tokens = table.column("n_tokens").to_numpy(zero_copy_only=False)
        codes = pc.dictionary_encode(table.column("source").combine_chunks())
        index = codes.indices.to_numpy(zero_copy_only=False)
        for i, src in enumerate(codes.dictionary.to_pylist()):
            m = index == i
            d = by_source.setdefault(str(src), {"rows_in": 0, "rows_kept": 0, "tokens_in": 0, "tokens_kept": 0})
            d["rows_in"] += int(m.sum())
            d["rows_kept"] += int((m & kept).sum())
            d["tokens_in"] += int(tokens[m].sum())
            d["tokens_kept"] += int(tokens[m & kept].sum())
        for column, ext in extremes.items():
            ext.add(table, column)
        for column in found.cluster_columns:
            values = table.column(column)
            seen[column].update(pc.unique(values.drop_null()).to_pylist())
            covered[column].update(pc.unique(values.filter(pa.array(kept)).drop_null()).to_pylist())
        sampled = table if rate >= 1 else table.filter(pa.array(sample_mask(table.column("doc_id"), rate)))
        parts.append(sampled.drop_columns(["row"]))
    sample = pa.concat_tables(parts) if parts else pa.table({"doc_id": pa.array([], pa.string()),
                                                             "kept": pa.array([], pa.bool_())})
    clusters = {c: (len(seen[c]), len(covered[c])) for c in found.cluster_columns}
    return RunSummary(found, rate, sample, dict(sorted(by_source.items())), extremes, clusters)
