"""Seeded random selection: the baseline every smarter selector must beat."""

from __future__ import annotations

import numpy as np

from ..hashing import hash_strings
from ..registry import register
from .base import Ranker


@register("selector", "random")
class RandomSelector(Ranker):
    """Keeps a uniform random subset that fits the budget: each row's rank is a seeded
    64-bit hash of its doc_id, so the choice is independent of file order and sharding.

    Example::

        RandomSelector()          # with Budget(fraction=0.1)
    """

    def key(self, table, seed):
        keys = hash_strings(table.column("doc_id"), seed=seed + 0x5EED)
        return keys, np.ones(len(keys), dtype=bool)
