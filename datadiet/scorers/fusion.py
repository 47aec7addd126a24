"""Score fusion: several scores combined into one by global rank or z-normalisation.

The normalisation must not depend on sharding, so it is fitted once on the fit context's
seeded pool sample (per-score sorted values for ranks, mean and std for z-scores); every
shard is then scored with the same statistics. Rank the result with ``top_k``.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np
import pyarrow as pa

from ..errors import ConfigError
from ..params import Interval
from ..registry import register
from .base import NULL_REASON, FitContext, Scorer
from .percentile import column_values, mid_percentile, sorted_sample


def _check_scores(scores) -> str | None:
    if not isinstance(scores, dict) or not scores:
        return "must map score columns to a weight or {weight: W, keep: high|low}"
    total = 0.0
    for column, spec in scores.items():
        spec = {"weight": spec} if isinstance(spec, (int, float)) and not isinstance(spec, bool) else spec
        if not isinstance(spec, dict) or set(spec) - {"weight", "keep"}:
            return f"must map each column to a weight or {{weight: W, keep: high|low}} (column {column!r})"
        weight = spec.get("weight", 1.0)
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or weight < 0:
            return f"needs a weight >= 0 (column {column!r})"
        if spec.get("keep", "high") not in ("high", "low"):
            return f"needs keep: high or low (column {column!r})"
        total += weight
    return None if total > 0 else "needs a positive weight for at least one column"


@register("scorer", "fusion")
class Fusion(Scorer):
    """One score from several: the weighted mean of each score's global percentile
    (``method="rank"``: mid-rank among a seeded sample of ``sample_rows`` pool rows) or of
    its z-score (``method="zscore"``: the sample's mean and std), each turned so that
    higher is better (``keep: low`` flips it). A row with any input null gets null.
    Select with ``top_k`` on the fused column, ``keep: high``.

    Example::

        Fusion(scores={"loss": {"weight": 1, "keep": "low"},
                       "compression.ratio": {"weight": 0.5, "keep": "high"}}, method="rank")
    """

    requires_fit: ClassVar[bool] = True
    view_columns: ClassVar[tuple[str, ...]] = ()
    _constraints = {"scores": _check_scores, "sample_rows": Interval(int, 2, None)}

    def __init__(self, scores: dict, method: Literal["rank", "zscore"] = "rank", sample_rows: int = 100_000):
        self.scores = scores
        self.method = method
        self.sample_rows = sample_rows

    def _specs(self) -> list[tuple[str, float, float]]:
        """(column, weight, +1 for keep high / -1 for keep low) per score."""
        out = []
        for column, spec in self.scores.items():
            spec = spec if isinstance(spec, dict) else {"weight": spec}
            out.append((column, float(spec.get("weight", 1.0)), 1.0 if spec.get("keep", "high") == "high" else -1.0))
        return out

    def required_inputs(self) -> tuple[str, ...]:
        return tuple(self.scores)

    def output_columns(self) -> dict[str, pa.DataType]:
        return {"score": pa.float32()}

    def flops_per_token(self) -> float:
        return 1.0

    def fit(self, context: FitContext) -> Fusion:
        self.validate_params()
        columns = list(self.scores)
        sample = context.sample(self.sample_rows, columns=columns)
        refs = [sorted_sample(sample, c, "fusion") for c in columns]
        if self.method == "rank":
            width = max(len(r) for r in refs)
            self.sorted_ = np.full((len(refs), width), np.nan)
            for i, r in enumerate(refs):
                self.sorted_[i, :len(r)] = r
            self.counts_ = np.array([len(r) for r in refs], dtype=np.int64)
        else:
            self.mean_ = np.array([r.mean() for r in refs])
            std = np.array([r.std() for r in refs])
            self.std_ = np.where(std > 0, std, 1.0)
        return self

    def score_batch(self, batch: pa.RecordBatch) -> dict[str, pa.Array]:
        if not self.fitted_attributes():
            raise ConfigError("fusion: the scorer is not fitted; call fit() or load_state() first")
        n = batch.num_rows
        total, weights = np.zeros(n), 0.0
        ok = np.ones(n, dtype=bool)
        for i, (column, weight, sign) in enumerate(self._specs()):
            x, valid = column_values(batch.column(column))
            ok &= valid
            if self.method == "rank":
                p = mid_percentile(self.sorted_[i, :int(self.counts_[i])], x)
                t = p if sign > 0 else 1.0 - p
            else:
                t = sign * (x - self.mean_[i]) / self.std_[i]
            total += weight * t
            weights += weight
        fused = (total / weights).astype(np.float32)
        reason = [None if v else "an input score is null" for v in ok.tolist()]
        return {"score": pa.array(fused, mask=~ok), NULL_REASON: pa.array(reason, pa.string())}
