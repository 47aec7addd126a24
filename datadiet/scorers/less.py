"""``less``: LESS (Xia et al., 2024), gradient cosine similarity to a target set."""

from __future__ import annotations

from ..registry import register
from .influence_base import InfluenceScorer


@register("scorer", "less")
class LessScorer(InfluenceScorer):
    """Cosine between a row's (optionally Adam-preconditioned) projected gradient and the
    target rows', mean (or max) over target rows, averaged over checkpoints weighted by
    their learning rate. Columns: ``score`` (float32, in [-1, 1]), ``target_<name>`` with
    several targets, ``features`` with ``keep_features``. See
    :mod:`datadiet.scorers.influence_base` and :mod:`datadiet.scorers.gradient_base`.

    Example::

        scorer = LessScorer(checkpoints="runs/proxy", params="last:2", projection_dim=2048)
        scorer.fit(InMemoryFitContext(pool=pool, target=target_table))
        scorer.score_batch(batch)["score"]
    """

    normalize = True
