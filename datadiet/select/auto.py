"""Regime-aware ranking (Sorscher et al. 2022): easy examples first when the budget is a
small share of the pool, hard examples first when it is a large one."""

from __future__ import annotations

from typing import Literal

from ..errors import ConfigError
from ..params import Interval
from ..registry import register
from .base import Ranker, float_rank_key


@register("selector", "auto")
class Auto(Ranker):
    """Ranks by ``score`` (``hard="high"``: high values are hard) in the order the budget's
    regime calls for: ``easy_first`` when the budget is less than ``switch`` of the pool
    entering the step (in the budget's unit), else ``hard_first``. The ranker engine calls
    ``configure(limit, available)`` before any key is computed and writes the choice to
    the manifest (``budget.regime``).

    Example::

        Auto(score="loss", hard="high", switch=0.5)
    """

    _constraints = {"switch": Interval(float, 0, 1, low_open=True)}

    def __init__(self, score: str, hard: Literal["high", "low"] = "high", switch: float = 0.5):
        self.score = score
        self.hard = hard
        self.switch = switch

    def columns(self) -> list[str]:
        return [self.score]

    def configure(self, limit: int, available: int) -> dict:
        """Chooses the order from the budget's share of the pool; stores and returns it."""
        share = float(limit) / available if available > 0 else 1.0
        order = "easy_first" if share < self.switch else "hard_first"
        self.choice_ = {"order": order, "share": share, "switch": float(self.switch), "limit": int(limit),
                        "available": int(available)}
        return dict(self.choice_)

    def key(self, table, seed):
        choice = getattr(self, "choice_", None)
        if choice is None:
            raise ConfigError("auto: configure(limit, available) must be called before key() "
                              "(the ranker engine does it when the step has a budget)")
        descending = (choice["order"] == "hard_first") == (self.hard == "high")
        return float_rank_key(table.column(self.score), table.column("doc_id"), seed, descending=descending)
