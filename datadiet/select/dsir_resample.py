"""DSIR importance resampling without replacement (Gumbel top-k), seeded per doc_id.

Sampling ``k`` rows without replacement with probability proportional to ``w`` is the same
as keeping the ``k`` largest ``log w + g`` with ``g`` i.i.d. Gumbel(0, 1) noise. The noise
comes from a seeded hash of each doc_id, so the sample depends only on the seed and the
rows, never on sharding or order, and the budget engine's top-k does the rest.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pyarrow as pa

from ..hashing import hash_strings, uniform_from_hash
from ..params import Interval
from ..registry import register
from .base import Budget, GroupSelector, Ranker, float_rank_key
from .cluster_balanced import Quotas, fill_quotas, group_codes

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
class DSIRMixture(GroupSelector):
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
    extra_columns: ClassVar[dict[str, pa.DataType]] = {}

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

    def group_by(self) -> str:
        return self.assign_column

    def columns(self) -> list[str]:
        return [self.assign_column] + list(self.targets or {})

    def quotas(self, group_rows: dict, group_tokens: dict, budget: Budget | None) -> Quotas | None:
        if budget is None:
            return None
        total_share = float(sum(self.targets.values()))
        limit = budget.limit(int(sum(group_rows.values())), int(sum(v or 0 for v in group_tokens.values())))
        out = Quotas(unit=budget.unit)
        for column, share in self.targets.items():
            out[column] = int(np.floor(limit * share / total_share))
        return out

    def decide(self, rows: pa.Table, quotas: dict | None = None) -> dict[str, object]:
        n = rows.num_rows
        codes, values = group_codes(rows.column(self.assign_column))
        names = list(self.targets)
        # which target column each group's rows are weighed against (-1: not a target)
        target_of = np.array([names.index(v) if v in names else -1 for v in values] + [-1], dtype=np.int64)
        row_target = target_of[codes]
        log_w = np.zeros(n, dtype=np.float64)
        valid = row_target >= 0
        for j, column in enumerate(names):
            mine = row_target == j
            if mine.any():
                x, ok = _as_float(rows.column(column))
                log_w[mine] = x[mine]
                valid[mine] &= ok[mine]
        keys, valid = resample_keys(log_w, valid, rows.column("doc_id"), self.seed, float(self.temperature))
        if quotas is None:
            keep = valid
        else:
            quota = np.array([int(quotas.get(v, 0)) for v in values] + [0], dtype=np.int64)
            unit = getattr(quotas, "unit", "documents")
            weight = rows.column("n_tokens").to_numpy() if unit == "tokens" else np.ones(n, dtype=np.int64)
            keep = fill_quotas(codes, keys, valid, weight, quota)
        reason = np.where(keep, None, np.where(valid, "budget", "no dsir weight")).tolist()
        return {"keep": keep, "reason": reason}
