"""DSIR importance resampling without replacement (Gumbel top-k), seeded per doc_id.

Sampling ``k`` rows without replacement with probability proportional to ``w`` is the same
as keeping the ``k`` largest ``log w + g`` with ``g`` i.i.d. Gumbel(0, 1) noise. The noise
comes from a seeded hash of each doc_id, so the sample depends only on the seed and the
rows, never on sharding or order, and the budget engine's top-k does the rest.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from ..hashing import hash_strings, uniform_from_hash
from ..params import Interval
from ..registry import register
from .base import Ranker, float_rank_key

#: Salt so the Gumbel noise is independent of the seed's other uses (tie-breaking, sampling).
_NOISE_SALT = 0x5D51


def gumbel_noise(doc_ids: pa.Array | pa.ChunkedArray, seed: int) -> np.ndarray:
    """Gumbel(0, 1) noise per doc_id from a seeded hash (float64)."""
    u = uniform_from_hash(hash_strings(doc_ids, seed=seed ^ _NOISE_SALT))
    return -np.log(-np.log(u))


def _as_float(column: pa.ChunkedArray | pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(values as float64 with nulls as 0, valid mask)."""
    values = column.cast(pa.float64())
    valid = ~np.asarray(values.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    x = np.asarray(values.fill_null(0).to_numpy(), dtype=np.float64)
    return np.where(valid, x, 0.0), valid & np.isfinite(x)


def resample_keys(
    log_w: np.ndarray, valid: np.ndarray, doc_ids, seed: int, temperature: float
) -> tuple[np.ndarray, np.ndarray]:
    """uint64 rank keys of ``log_w / temperature + Gumbel`` (plain top-k at temperature 0)."""
    perturbed = log_w / temperature + gumbel_noise(doc_ids, seed) if temperature > 0 else log_w
    keys, ok = float_rank_key(pa.array(perturbed.astype(np.float32)), doc_ids, seed, descending=True)
    return keys, ok & valid


@register("selector", "dsir_resample")
class DSIRResample(Ranker):
    """Importance resampling toward the target by a ``dsir`` score column (log weights).

    ``temperature`` flattens (> 1) or sharpens (< 1) the weights: rows are sampled with
    probability proportional to ``w ** (1 / temperature)``; ``temperature=0`` keeps the
    plain top-k by weight. Rows with a null weight (no n-grams) are rejected.

    Example::

        DSIRResample(score="dsir", temperature=1.0)   # with Budget(documents=100_000)
    """

    _constraints = {"temperature": Interval(float, 0, None)}

    def __init__(self, score: str = "dsir", temperature: float = 1.0):
        self.score = score
        self.temperature = temperature

    def columns(self) -> list[str]:
        return [self.score]

    def key(self, table: pa.Table, seed: int) -> tuple[np.ndarray, np.ndarray]:
        log_w, valid = _as_float(table.column(self.score))
        return resample_keys(log_w, valid, table.column("doc_id"), seed, float(self.temperature))


@register("selector", "dsir_mixture")
class DSIRMixture(Ranker):
    """Importance resampling toward several targets with fixed proportions.

    ``targets`` maps each target's ``dsir`` score column to its share of the budget. Each
    row belongs to the target it is closest to, given by the ``dsir_target`` scorer
    (``assign_column``: the name of the target column with the largest weight), and each
    target's quota (``proportion * budget``, floored) is filled by Gumbel top-k on that
    target's weights among its own rows. A target with fewer rows than its quota leaves
    the rest unused, so the quotas (which sum to at most the budget) are upper bounds.
    ``seed`` salts the Gumbel noise (GroupSelectors do not receive the run's seed).

    Example::

        DSIRMixture(targets={"dsir_wiki": 0.7, "dsir_code": 0.3})
    """

    _constraints = {
        "temperature": Interval(float, 0, None),
        "targets": lambda v: None
        if isinstance(v, dict)
        and v
        and all(isinstance(p, (int, float)) and not isinstance(p, bool) and p >= 0 for p in v.values())
        and sum(v.values()) > 0
        else "must map dsir score columns to non-negative proportions with a positive sum",
    }
    def __init__(
        self,
        targets: dict[str, float],
        assign_column: str = "dsir_target",
        temperature: float = 1.0,
        seed: int = 0,
    ):
        self.targets = targets
        self.assign_column = assign_column
        self.temperature = temperature
        self.seed = seed

    def columns(self) -> list[str]:
        return [self.assign_column] + list(self.targets or {})

    def group_column(self) -> str:
        return self.assign_column

    def group_quotas(self, available: dict, limit: int) -> dict:
        total_share = float(sum(self.targets.values()))
        return {column: int(np.floor(limit * share / total_share)) for column, share in self.targets.items()}

    def key(self, table: pa.Table, seed: int) -> tuple[np.ndarray, np.ndarray]:
        n = table.num_rows
        names = list(self.targets)
        assigned = table.column(self.assign_column).to_pylist()
        row_target = np.array([names.index(v) if v in names else -1 for v in assigned], dtype=np.int64)
        log_w = np.zeros(n, dtype=np.float64)
        valid = row_target >= 0
        for j, column in enumerate(names):
            mine = row_target == j
            if mine.any():
                x, ok = _as_float(table.column(column))
                log_w[mine] = x[mine]
                valid[mine] &= ok[mine]
        return resample_keys(log_w, valid, table.column("doc_id"), self.seed, float(self.temperature))
