"""Weighted sampling without replacement (Gumbel top-k keyed by seed and doc_id)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from ..params import Interval
from ..registry import register
from .base import Ranker
from .dsir_resample import _as_float, resample_keys


@register("selector", "weighted_sample")
class WeightedSample(Ranker):
    """Samples rows without replacement with probability proportional to ``weight``
    (``log=True``: the column holds log weights) raised to ``1 / temperature``, until the
    budget is full: the budget engine keeps the largest ``log w / temperature + g`` where
    ``g`` is Gumbel noise from a seeded hash of doc_id, so the sample depends only on the
    seed and the rows. Rows with a null, non-finite or (raw) non-positive weight are
    rejected; ``temperature=0`` keeps the plain top-k by weight.

    Example::

        WeightedSample(weight="quality_classifier", temperature=1.0)
    """

    _constraints = {"temperature": Interval(float, 0, None)}

    def __init__(self, weight: str, log: bool = False, temperature: float = 1.0):
        self.weight = weight
        self.log = log
        self.temperature = temperature

    def columns(self) -> list[str]:
        return [self.weight]

    def score_column(self) -> str:
        return self.weight

    def key(self, table: pa.Table, seed: int) -> tuple[np.ndarray, np.ndarray]:
        x, valid = _as_float(table.column(self.weight))
        if not self.log:
            valid &= x > 0
            x = np.log(np.where(valid, x, 1.0))
        return resample_keys(x, valid, table.column("doc_id"), seed, float(self.temperature))
