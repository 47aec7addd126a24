"""``tracin``: TracIn (Pruthi et al., 2020) with projected gradients, toward a target set."""

from __future__ import annotations

from ..registry import register
from .influence_base import InfluenceScorer


@register("scorer", "tracin")
class TracInScorer(InfluenceScorer):
    """``sum_c lr_c <g_c(row), g_c(target)>`` over checkpoints ``c``, mean (or max) over the
    target rows, with projected (optionally preconditioned) gradients. Columns as ``less``.

    Example::

        scorer = TracInScorer(checkpoints="runs/proxy", params="lm_head", projection_dim=1024)
        scorer.fit(context)
        scorer.score_batch(batch)["score"]
    """

    normalize = False
