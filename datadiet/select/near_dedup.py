"""Near-duplicate removal over MinHash-LSH band keys (the ``minhash`` scorer's columns)."""

from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import ConfigError
from ..params import Interval
from ..registry import register
from .base import Selector


@register("selector", "near_dedup")
class NearDedup(Selector):
    """Keeps one row per cluster of near-duplicates; the others are rejected with reason
    "near_duplicate", ``duplicate_of`` (the kept row's doc_id) and ``similarity`` (their
    estimated Jaccard similarity to the kept row).

    Rows sharing a band key are candidates; a candidate pair is a verified edge when the
    share of equal signature values (the estimated Jaccard similarity) is >= ``threshold``;
    clusters are the connected components of verified edges, so a chain A~B~C is one
    cluster even where A and C are less similar. The kept row is the smallest doc_id
    (``keep="first"``), the most tokens (``"longest"``) or the highest ``score``
    (``"best"``; null scores last), ties by smallest doc_id. Rows with a null signature
    (empty text) are kept. Runs on the ``components`` engine: a band-partitioned shuffle,
    verification per shard, then min-label propagation over hash-partitioned edge files.

    Example::

        NearDedup(threshold=0.8, keep="best", score="compression.ratio")
    """

    kind: ClassVar[str] = "components"
    extra_columns: ClassVar[dict[str, pa.DataType]] = {"duplicate_of": pa.string(), "similarity": pa.float32()}
    reject_reason: ClassVar[str] = "near_duplicate"
    _constraints: ClassVar[dict] = {"threshold": Interval(float, 0, 1, low_open=True)}

    def __init__(self, threshold: float = 0.8, keep: Literal["first", "longest", "best"] = "first",
                 score: str | None = None, signature: str = "minhash.signature", bands: str = "minhash.bands"):
        self.threshold = threshold
        self.keep = keep
        self.score = score
        self.signature = signature
        self.bands = bands

    def validate_params(self, where: str = "") -> None:
        super().validate_params(where)
        prefix = f"{where}: " if where else ""
        if self.keep == "best" and self.score is None:
            raise ConfigError(f"{prefix}The 'score' parameter of NearDedup is required with keep='best' "
                              "(the score column whose highest value is kept)")
        if self.score is not None and self.keep != "best":
            raise ConfigError(f"{prefix}The 'score' parameter of NearDedup is only used with keep='best'. "
                              f"Got keep={self.keep!r} instead.")

    def columns(self) -> list[str]:
        return [self.signature, self.bands] + ([self.score] if self.keep == "best" else [])

    def min_equal(self, num_perm: int) -> int:
        """Equal signature values a verified pair needs out of ``num_perm``."""
        return int(np.ceil(self.threshold * num_perm - 1e-9))

    def keeper_order(self, members: pa.Table) -> np.ndarray:
        """Row order of ``members`` (label, doc_id, n_tokens[, score]) with each cluster's
        rows together and its kept row first."""
        keys = [("label", "ascending")]
        table = members.select(["label", "doc_id"])
        if self.keep == "longest":
            table = table.append_column("n_tokens", members.column("n_tokens"))
            keys.append(("n_tokens", "descending"))
        elif self.keep == "best":
            score = members.column("score").cast(pa.float64())
            table = table.append_column("score", pc.if_else(pc.is_nan(score), None, score))
            keys.append(("score", "descending", "at_end"))
        keys.append(("doc_id", "ascending"))
        return pc.sort_indices(table, sort_keys=keys).to_numpy()
