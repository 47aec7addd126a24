"""Top-k on one score: the best rows that fit the budget."""

from __future__ import annotations

from typing import Literal

from ..registry import register
from .base import Ranker, float_rank_key


@register("selector", "top_k")
class TopK(Ranker):
    """Ranks by ``score`` (``keep: high`` keeps the largest values, ``low`` the smallest),
    ties broken by a seeded hash of doc_id; rows with a null score are rejected.

    Example::

        TopK(score="compression.ratio", keep="high")
    """

    def __init__(self, score: str, keep: Literal["high", "low"] = "high"):
        self.score = score
        self.keep = keep

    def columns(self) -> list[str]:
        return [self.score]

    def key(self, table, seed):
        return float_rank_key(table.column(self.score), table.column("doc_id"), seed,
                              descending=self.keep == "high")
