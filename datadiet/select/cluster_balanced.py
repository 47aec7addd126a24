"""Per-cluster quotas: the same share of the budget for every cluster (or one proportional
to its size), filled with each cluster's best rows by a score."""

from __future__ import annotations

from typing import Literal

import numpy as np
import pyarrow as pa

from ..hashing import hash_strings
from ..registry import register
from .base import Ranker, float_rank_key


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


@register("selector", "cluster_balanced")
class ClusterBalanced(Ranker):
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

    quota_reason = "cluster quota"

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

    def columns(self) -> list[str]:
        return [self.cluster_column] + ([self.score] if self.score else [])

    def group_column(self) -> str:
        return self.cluster_column

    def group_quotas(self, available: dict, limit: int) -> dict:
        groups = sorted(available, key=lambda g: (g is None, str(g)))
        sizes = np.array([available[g] for g in groups], dtype=np.int64)
        share = water_fill(sizes, limit) if self.mode == "equal" else proportional(sizes, limit)
        return {g: int(q) for g, q in zip(groups, share)}

    def key(self, table: pa.Table, seed: int) -> tuple[np.ndarray, np.ndarray]:
        if self.score is None:
            return hash_strings(table.column("doc_id"), seed=self.seed), np.ones(table.num_rows, dtype=bool)
        return float_rank_key(table.column(self.score), table.column("doc_id"), self.seed,
                              descending=self.keep == "high")
