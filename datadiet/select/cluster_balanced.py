"""Per-cluster quotas: the same share of the budget for every cluster (or one proportional
to its size), filled with each cluster's best rows by a score."""

from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np
import pyarrow as pa

from ..errors import ConfigError
from ..hashing import hash_strings
from ..registry import register
from .base import Budget, GroupSelector, float_rank_key


class Quotas(dict):
    """Per-group quotas (group value -> int) that also carry the budget's ``unit``
    ("documents" or "tokens"), since ``decide`` does not receive the Budget."""

    def __init__(self, values=(), unit: str = "documents"):
        super().__init__(values)
        self.unit = unit


def water_fill(sizes: np.ndarray, limit: int) -> np.ndarray:
    """Equal integer shares of ``limit`` capped by ``sizes``: groups smaller than their share
    keep all their rows and hand the leftover to the others. Sums to ``min(limit, sizes.sum())``
    at most, never more than ``limit``.

    Example::

        water_fill(np.array([2, 10, 10]), 12)  # -> [2, 5, 5]
    """
    sizes = np.asarray(sizes, dtype=np.int64)
    out = np.zeros(len(sizes), dtype=np.int64)
    remaining = int(limit)
    order = np.argsort(sizes, kind="stable")
    for i, g in enumerate(order.tolist()):
        share = remaining // (len(order) - i)
        out[g] = min(int(sizes[g]), share)
        remaining -= int(out[g])
    # Hand out what floor division left over, one unit at a time, to groups with room.
    for g in order[::-1].tolist():
        if remaining <= 0:
            break
        if out[g] < sizes[g]:
            out[g] += 1
            remaining -= 1
    return out


def proportional(sizes: np.ndarray, limit: int) -> np.ndarray:
    """Quotas proportional to ``sizes`` (floored, so they sum to at most ``limit``)."""
    sizes = np.asarray(sizes, dtype=np.int64)
    total = int(sizes.sum())
    if total == 0:
        return np.zeros(len(sizes), dtype=np.int64)
    share = np.floor(sizes.astype(np.float64) * (min(limit, total) / total)).astype(np.int64)
    return np.minimum(share, sizes)


def group_codes(values: pa.ChunkedArray | pa.Array) -> tuple[np.ndarray, list]:
    """(code per row, distinct values) of a group column; nulls form the group ``None``."""
    values = pa.chunked_array([values]) if isinstance(values, pa.Array) else values
    encoded = values.combine_chunks().dictionary_encode(null_encoding="encode")
    return encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64), encoded.dictionary.to_pylist()


def fill_quotas(
    codes: np.ndarray, keys: np.ndarray, valid: np.ndarray, weight: np.ndarray, quota: np.ndarray
) -> np.ndarray:
    """Keep mask: within each group (``codes``) rows in descending ``keys`` order while the
    group's running total of ``weight`` stays within ``quota[code]``; the first row that
    would exceed it and every row after it are dropped. Invalid rows are never kept."""
    n = len(codes)
    keep = np.zeros(n, dtype=bool)
    if n == 0:
        return keep
    order = np.lexsort((~keys, ~valid, codes))  # by group, valid first, key descending
    g = codes[order]
    w = np.where(valid[order], weight[order], 0).astype(np.int64)
    cum = np.cumsum(w)
    first = np.ones(n, dtype=bool)
    first[1:] = g[1:] != g[:-1]
    start = np.maximum.accumulate(np.where(first, np.arange(n), 0))
    within = cum - (cum[start] - w[start])
    fits = (within <= quota[g]) & valid[order]
    # a prefix rule: once a row does not fit, no later row of its group is kept
    broken = np.cumsum(~fits)
    keep[order] = fits & (broken - (broken[start] - (~fits[start]).astype(np.int64)) == 0)
    return keep


@register("selector", "cluster_balanced")
class ClusterBalanced(GroupSelector):
    """A quota per cluster, filled with the cluster's best rows by ``score``.

    ``mode="equal"`` water-fills the budget (an equal share per cluster; clusters smaller
    than their share keep everything and leave the rest to the others);
    ``mode="proportional"`` gives each cluster a share proportional to its size. Quotas
    are in the budget's unit (documents, or tokens: rows are taken in score order while
    the cluster's tokens stay within its quota) and sum to at most the budget. Rows are
    ranked by ``score`` (``keep="high"`` keeps the highest) with ties broken by a seeded
    hash of doc_id; with ``score=None`` the order is that hash alone (a random sample).

    Example::

        ClusterBalanced(cluster_column="kmeans.cluster", score="quality", mode="equal")
    """

    extra_columns: ClassVar[dict[str, pa.DataType]] = {}

    def __init__(
        self,
        cluster_column: str = "kmeans.cluster",
        score: str | None = None,
        keep: Literal["high", "low"] = "high",
        mode: Literal["equal", "proportional"] = "equal",
        seed: int = 0,
    ):
        self.cluster_column = cluster_column
        self.score = score
        self.keep = keep
        self.mode = mode
        self.seed = seed

    def group_by(self) -> str:
        return self.cluster_column

    def columns(self) -> list[str]:
        return [self.cluster_column] + ([self.score] if self.score else [])

    def quotas(self, group_rows: dict, group_tokens: dict, budget: Budget | None) -> Quotas | None:
        if budget is None:
            return None
        unit = budget.unit
        groups = list(group_rows)
        sizes = np.array(
            [(group_tokens if unit == "tokens" else group_rows).get(g, 0) or 0 for g in groups], dtype=np.int64
        )
        total_rows = int(sum(group_rows.values()))
        total_tokens = int(sum(v or 0 for v in group_tokens.values()))
        limit = budget.limit(total_rows, total_tokens)
        share = water_fill(sizes, limit) if self.mode == "equal" else proportional(sizes, limit)
        return Quotas({g: int(q) for g, q in zip(groups, share)}, unit=unit)

    def decide(self, rows: pa.Table, quotas: dict | None = None) -> dict[str, object]:
        n = rows.num_rows
        if quotas is None:
            return {"keep": np.ones(n, dtype=bool), "reason": [None] * n}
        if self.score is not None and self.score not in rows.column_names:
            raise ConfigError(f"cluster_balanced: score column {self.score!r} is not in the score table")
        codes, values = group_codes(rows.column(self.cluster_column))
        quota = np.array([int(quotas.get(v, 0)) for v in values] + [0], dtype=np.int64)
        if self.score is None:
            keys, valid = hash_strings(rows.column("doc_id"), seed=self.seed), np.ones(n, dtype=bool)
        else:
            keys, valid = float_rank_key(
                rows.column(self.score), rows.column("doc_id"), self.seed, descending=self.keep == "high"
            )
        unit = getattr(quotas, "unit", "documents")
        weight = rows.column("n_tokens").to_numpy() if unit == "tokens" else np.ones(n, dtype=np.int64)
        keep = fill_quotas(codes, keys, valid, weight, quota)
        reason = np.where(keep, None, np.where(valid, "cluster quota", "no score")).tolist()
        return {"keep": keep, "reason": reason}
