"""Prototypicality pruning (Sorscher et al., 2022): rank rows by distance to their
k-means centroid."""

from __future__ import annotations

from typing import Literal

import numpy as np
import pyarrow as pa

from ..registry import register
from .base import Ranker, float_rank_key


@register("selector", "prototypicality")
class Prototypicality(Ranker):
    """Keeps the least prototypical rows (largest cosine distance to their cluster's
    centroid, the ``kmeans.distance`` score) first, the choice Sorscher et al. found best
    when data is plentiful; ``keep="most"`` keeps the most prototypical (closest) first.
    Ties break by a seeded hash of doc_id. Second half of ``d4`` (after ``semdedup``).

    Example::

        Prototypicality(distance_column="kmeans.distance")   # with a Budget
    """

    def __init__(self, distance_column: str = "kmeans.distance", keep: Literal["least", "most"] = "least"):
        self.distance_column = distance_column
        self.keep = keep

    def columns(self) -> list[str]:
        return [self.distance_column]

    def key(self, table: pa.Table, seed: int) -> tuple[np.ndarray, np.ndarray]:
        return float_rank_key(
            table.column(self.distance_column), table.column("doc_id"), seed, descending=self.keep == "least"
        )
