"""Percentile bands: keep the middle of a score's distribution (or an absolute range)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from ..errors import ConfigError
from ..params import Interval
from ..registry import register
from .base import RowFilter


@register("selector", "band")
class Band(RowFilter):
    """Keeps rows whose global percentile lies in ``[low, high]`` (read from
    ``percentile``, the column of a fitted ``percentile`` scorer over the score) and/or
    whose ``score`` lies in ``[min, max]``. Percentiles are global because the scorer is
    fitted on a seeded sample of the whole pool, not per shard. Rows with a null value in
    a bounded column are dropped.

    Example::

        # scorers: [..., {type: percentile, score: perplexity}]
        Band(low=0.1, high=0.9)                       # the middle 80% of perplexity
        Band(score="perplexity", min=5.0, max=200.0)  # an absolute range
    """

    _constraints = {"low": Interval(float, 0, 1), "high": Interval(float, 0, 1)}

    def __init__(self, score: str | None = None, low: float | None = None, high: float | None = None,
                 min: float | None = None, max: float | None = None, percentile: str = "percentile"):
        self.score = score
        self.low = low
        self.high = high
        self.min = min
        self.max = max
        self.percentile = percentile

    def validate_params(self, where: str = "") -> None:
        super().validate_params(where)
        prefix = f"{where}: " if where else ""
        if all(v is None for v in (self.low, self.high, self.min, self.max)):
            raise ConfigError(f"{prefix}band needs a bound: low/high (percentiles) or min/max (values)")
        for a, b in (("low", "high"), ("min", "max")):
            lo, hi = getattr(self, a), getattr(self, b)
            if lo is not None and hi is not None and lo > hi:
                raise ConfigError(f"{prefix}The {a!r} parameter of Band ({lo!r}) is above {b!r} ({hi!r}): "
                                  "the band would keep nothing")
        if (self.min is not None or self.max is not None) and not self.score:
            raise ConfigError(f"{prefix}band: 'min'/'max' bound a score column; set 'score'")

    def _rules(self) -> list[tuple[str, float | None, float | None]]:
        rules = []
        if self.low is not None or self.high is not None:
            rules.append((self.percentile, self.low, self.high))
        if self.min is not None or self.max is not None:
            rules.append((self.score, self.min, self.max))
        return rules

    def columns(self) -> list[str]:
        return list(dict.fromkeys(c for c, _, _ in self._rules()))

    def keep(self, table: pa.Table) -> tuple[np.ndarray, list[str | None]]:
        n = table.num_rows
        keep = np.ones(n, dtype=bool)
        reasons: list[str | None] = [None] * n
        for column, lo, hi in self._rules():
            values = table.column(column)
            null = np.asarray(values.is_null().to_numpy(zero_copy_only=False), dtype=bool)
            x = np.asarray(values.cast(pa.float64()).fill_null(np.nan).to_numpy(zero_copy_only=False))
            null |= np.isnan(x)
            checks = [("null", null)]
            if lo is not None:
                checks.append((f"< {lo}", ~null & (x < lo)))
            if hi is not None:
                checks.append((f"> {hi}", ~null & (x > hi)))
            for label, failing in checks:
                for i in np.flatnonzero(failing & keep).tolist():
                    reasons[i] = f"band: {column} {label}"
                keep &= ~failing
        return keep, reasons
