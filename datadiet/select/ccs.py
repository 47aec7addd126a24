"""Coverage-centric coreset selection (CCS, Zheng et al. 2023): prune the hardest
``beta`` of the pool, then sample the same budget from every score bin (water-filled)."""

from __future__ import annotations

from typing import Literal

import numpy as np
import pyarrow as pa

from ..hashing import hash_strings
from ..params import Interval
from ..registry import register
from .base import Ranker
from .cluster_balanced import water_fill

_SALT = 0xCC5


@register("selector", "ccs")
class CCS(Ranker):
    """Drops the hardest ``beta`` share of rows (by ``percentile``, the global percentile
    from a fitted ``percentile`` scorer; ``hard="high"`` means high scores are hard), then
    splits the budget over the score bins of ``bin_column`` (default ``<percentile>.bin``)
    by water-filling: an equal share per bin, bins smaller than their share keep all their
    rows and leave the rest to the others. Inside a bin rows are a seeded random sample.
    Pruned rows are rejected as invalid. For the paper's strata, give the scorer
    ``bin_high: 1 - beta`` (or ``bin_low: beta`` when low is hard) so the bins span the
    rows that remain.

    Example::

        # scorers: [..., {type: percentile, score: loss, bins: 50, bin_high: 0.9}]
        CCS(beta=0.1, hard="high")
    """

    quota_reason = "bin quota"
    _constraints = {"beta": Interval(float, 0, 1, high_open=True)}

    def __init__(self, percentile: str = "percentile", bin_column: str | None = None, beta: float = 0.1,
                 hard: Literal["high", "low"] = "high"):
        self.percentile = percentile
        self.bin_column = bin_column
        self.beta = beta
        self.hard = hard

    def _bins(self) -> str:
        return self.bin_column or f"{self.percentile}.bin"

    def columns(self) -> list[str]:
        return [self.percentile, self._bins()]

    def group_column(self) -> str:
        return self._bins()

    def score_column(self) -> str:
        return self.percentile

    def group_quotas(self, available: dict, limit: int) -> dict:
        groups = sorted(available, key=lambda g: (g is None, str(g)))
        share = water_fill(np.array([available[g] for g in groups], dtype=np.int64), limit)
        return {g: int(q) for g, q in zip(groups, share)}

    def key(self, table: pa.Table, seed: int) -> tuple[np.ndarray, np.ndarray]:
        p = table.column(self.percentile).cast(pa.float64())
        valid = ~np.asarray(p.is_null().to_numpy(zero_copy_only=False), dtype=bool)
        valid &= ~np.asarray(table.column(self._bins()).is_null().to_numpy(zero_copy_only=False), dtype=bool)
        x = np.asarray(p.fill_null(np.nan).to_numpy(zero_copy_only=False))
        kept = x <= 1.0 - self.beta if self.hard == "high" else x >= self.beta
        return hash_strings(table.column("doc_id"), seed=seed ^ _SALT), valid & kept
