"""Global percentile (and score bin) of another score, fitted on a seeded pool sample.

A selector sees one shard at a time, so "the middle 80% of the perplexity distribution"
needs statistics of the whole pool. This scorer learns them once from the fit context's
seeded, shard-independent sample and then maps every row's value to its percentile.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pyarrow as pa

from ..errors import ConfigError
from ..params import Interval
from ..registry import register
from .base import NULL_REASON, FitContext, Scorer


def column_values(column) -> tuple[np.ndarray, np.ndarray]:
    """(float64 values with invalid ones as 0, valid mask: not null and finite)."""
    values = column.cast(pa.float64())
    valid = ~np.asarray(values.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    x = np.asarray(values.fill_null(0).to_numpy(zero_copy_only=False), dtype=np.float64)
    valid &= np.isfinite(x)
    return np.where(valid, x, 0.0), valid


def sorted_sample(sample: pa.Table, column: str, who: str) -> np.ndarray:
    """The finite values of ``column`` in the fit sample, sorted; ConfigError when none."""
    if column not in sample.column_names:
        raise ConfigError(f"{who}: the fit sample has no column {column!r}")
    x, valid = column_values(sample.column(column))
    if not valid.any():
        raise ConfigError(f"{who}: column {column!r} has no finite value in the fit sample")
    return np.sort(x[valid])


def mid_percentile(ref: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Mid-rank percentile of ``x`` among the sorted ``ref`` values, in [0, 1]: the share
    of ``ref`` below ``x`` plus half the share equal to it."""
    lo = np.searchsorted(ref, x, side="left")
    hi = np.searchsorted(ref, x, side="right")
    return (lo + hi) / (2.0 * len(ref))


@register("scorer", "percentile")
class Percentile(Scorer):
    """The global percentile of ``score`` (mid-rank among a seeded sample of
    ``sample_rows`` pool rows, in [0, 1]) and, with ``bins > 0``, a ``.bin`` column: the
    row's equal-width score bin over the sample's range between its ``bin_low`` and
    ``bin_high`` quantiles (values outside fall in the first or last bin). Rows with a
    null or non-finite score get nulls. Feeds ``band`` (percentile bands) and ``ccs``
    (stratified sampling over score bins).

    Example::

        Percentile(score="loss", bins=10, bin_high=0.9)   # columns percentile, percentile.bin
    """

    requires_fit: ClassVar[bool] = True
    view_columns: ClassVar[tuple[str, ...]] = ()
    _constraints = {
        "sample_rows": Interval(int, 1, None),
        "bins": Interval(int, 0, None),
        "bin_low": Interval(float, 0, 1),
        "bin_high": Interval(float, 0, 1),
    }

    def __init__(self, score: str, sample_rows: int = 100_000, bins: int = 10, bin_low: float = 0.0,
                 bin_high: float = 1.0):
        self.score = score
        self.sample_rows = sample_rows
        self.bins = bins
        self.bin_low = bin_low
        self.bin_high = bin_high

    def validate_params(self, where: str = "") -> None:
        super().validate_params(where)
        if self.bin_low >= self.bin_high:
            prefix = f"{where}: " if where else ""
            raise ConfigError(f"{prefix}The 'bin_low' parameter of Percentile ({self.bin_low}) must be below "
                              f"'bin_high' ({self.bin_high})")

    def required_inputs(self) -> tuple[str, ...]:
        return (self.score,)

    def output_columns(self) -> dict[str, pa.DataType]:
        return {"score": pa.float32(), **({"bin": pa.int64()} if self.bins else {})}

    def flops_per_token(self) -> float:
        return 1.0

    def fit(self, context: FitContext) -> Percentile:
        self.validate_params()
        ref = sorted_sample(context.sample(self.sample_rows, columns=[self.score]), self.score, "percentile")
        self.sorted_ = ref
        lo, hi = np.quantile(ref, [self.bin_low, self.bin_high])
        self.edges_ = np.linspace(lo, hi, max(self.bins, 1) + 1)
        return self

    def score_batch(self, batch: pa.RecordBatch) -> dict[str, pa.Array]:
        if getattr(self, "sorted_", None) is None:
            raise ConfigError("percentile: the scorer is not fitted; call fit() or load_state() first")
        x, valid = column_values(batch.column(self.score))
        mask = ~valid
        out = {"score": pa.array(mid_percentile(self.sorted_, x).astype(np.float32), mask=mask)}
        if self.bins:
            b = np.clip(np.searchsorted(self.edges_[1:-1], x, side="right"), 0, self.bins - 1)
            out["bin"] = pa.array(b.astype(np.int64), mask=mask)
        out[NULL_REASON] = pa.array([None if v else f"no {self.score}" for v in valid.tolist()], pa.string())
        return out
