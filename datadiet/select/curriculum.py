"""Curricula: the selected rows ordered by a difficulty score and paced into phases."""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import pyarrow as pa

from ..params import Interval
from ..registry import register
from .base import Orderer, float_rank_key

PACINGS = ("linear", "root", "geometric", "step", "competence")


@register("selector", "curriculum")
class Curriculum(Orderer):
    """Orders the selected rows by ``score`` and cuts them into ``phases`` by a pacing
    function of training progress ``t`` in [0, 1] (the share of the ordered tokens in the
    training pool at ``t``):

    - ``linear``: ``c(t) = start + (1 - start) t``;
    - ``root`` / ``competence`` (Platanios et al. 2019): ``c(t) = sqrt(t (1 - start²) + start²)``;
    - ``geometric``: ``c(t) = start ** (1 - t)``;
    - ``step`` ("baby steps", Bengio et al. 2009): equal token buckets, one per phase.

    ``order: easy_to_hard`` puts low scores first (e.g. low loss), ``hard_to_easy`` high
    ones. Rows without a score come last. Phase ``k`` starts at ``t = k / phases``; its pool
    is the first ``c(k / (phases - 1))`` of the ordered tokens, i.e. phases 0..k, each
    weighted by its tokens (uniform over the pool's rows).

    Example::

        Curriculum(score="loss", order="easy_to_hard", pacing="root", phases=4, start=0.2)

    In a recipe: ``curriculum: {score: loss, pacing: root, phases: 4}``.
    """

    _constraints = {"phases": Interval(int, 1, None), "start": Interval(float, 0, 1, low_open=True)}

    def __init__(self, score: str, order: Literal["easy_to_hard", "hard_to_easy"] = "easy_to_hard",
                 pacing: Literal["linear", "root", "geometric", "step", "competence"] = "linear",
                 phases: int = 4, start: float = 0.25):
        self.score = score
        self.order = order
        self.pacing = pacing
        self.phases = phases
        self.start = start

    def columns(self) -> list[str]:
        return [self.score]

    def key(self, table: pa.Table, seed: int) -> tuple[np.ndarray, np.ndarray]:
        keys, valid = float_rank_key(table.column(self.score), table.column("doc_id"), seed,
                                     descending=self.order == "hard_to_easy")
        return np.where(valid, keys, keys & np.uint64(0xFFFFFFFF)), np.ones(len(keys), dtype=bool)

    def competence(self, t: float) -> float:
        c0 = float(self.start)
        if self.pacing == "linear":
            c = c0 + (1 - c0) * t
        elif self.pacing in ("root", "competence"):
            c = math.sqrt(t * (1 - c0 * c0) + c0 * c0)
        elif self.pacing == "geometric":
            c = c0 ** (1 - t)
        else:
            c = min(math.floor(t * self.phases) + 1, self.phases) / self.phases
        return min(1.0, c)

    def schedule(self, total_tokens: int) -> dict:
        """Phase boundaries (cumulative tokens of the order) and the training schedule."""
        n = self.phases
        bounds = [0]
        for k in range(n):
            progress = k / (n - 1) if n > 1 else 1.0
            share = (k + 1) / n if self.pacing == "step" else self.competence(progress)
            bounds.append(max(bounds[-1], int(share * total_tokens)))
        bounds[-1] = total_tokens
        phases = []
        for k in range(self.phases):
            pool = [bounds[j + 1] - bounds[j] for j in range(k + 1)]
            total = sum(pool) or 1
            phases.append({"phase": k, "token_start": bounds[k], "token_end": bounds[k + 1],
                           "tokens": bounds[k + 1] - bounds[k], "starts_at_progress": k / n,
                           "pool": list(range(k + 1)), "weights": [w / total for w in pool]})
        return {"score": self.score, "order": self.order, "pacing": self.pacing, "start": self.start,
                "total_tokens": int(total_tokens), "phases": phases}
