"""Near-duplicate removal over MinHash-LSH band keys (the ``minhash`` scorer's columns)."""

from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import ConfigError
from ..params import Interval
from ..registry import register
from ..scorers.minhash import sort_by_row
from .base import Selector


@register("selector", "near_dedup")
class NearDedup(Selector):
    """Keeps one row per cluster of near-duplicates; the others are rejected with reason
    "near_duplicate", ``duplicate_of`` (the kept row's doc_id) and ``similarity`` (their
    Jaccard similarity to the kept row).

    Rows sharing a band key are candidates; a candidate pair is a verified edge when its
    Jaccard similarity is >= ``threshold``: exact, from the ``shingles`` sets
    (``verify="exact"``), or estimated as the share of equal ``signature`` values
    (``"estimate"``: no shingle sets read, but pairs near the threshold fall either way);
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
                 score: str | None = None, verify: Literal["exact", "estimate"] = "exact",
                 shingles: str = "minhash.shingles", signature: str = "minhash.signature",
                 bands: str = "minhash.bands"):
        self.threshold = threshold
        self.keep = keep
        self.score = score
        self.verify = verify
        self.shingles = shingles
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
        return [self.payload(), self.bands] + ([self.score] if self.keep == "best" else [])

    def payload(self) -> str:
        """The column pairs are verified on: shingle sets or signatures."""
        return self.shingles if self.verify == "exact" else self.signature

    def min_equal(self, num_perm: int) -> int:
        """Equal signature values a verified pair needs out of ``num_perm``."""
        return int(np.ceil(self.threshold * num_perm - 1e-9))

    def is_edge(self, inter: np.ndarray, union: np.ndarray) -> np.ndarray:
        """Pairs whose similarity ``inter / union`` reaches the threshold."""
        return inter >= np.ceil(self.threshold * union - 1e-9)

    def overlaps(self, a: pa.Array, b: pa.Array) -> tuple[np.ndarray, np.ndarray]:
        """(intersection, union) sizes of row-aligned payloads: shingle sets (list arrays of
        sorted distinct hashes) or signatures (equal values out of ``num_perm``)."""
        if self.verify == "estimate":
            sig_a, sig_b = _matrix(a), _matrix(b)
            return (sig_a == sig_b).sum(axis=1), np.full(len(a), sig_a.shape[1])
        inter = _intersections(a, b)
        return inter, _lengths(a) + _lengths(b) - inter

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


def _matrix(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """A fixed-size-list column as a (rows, width) numpy matrix (null rows hold zeros)."""
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    width = array.type.list_size
    values = array.values.slice(array.offset * width, len(array) * width)
    return values.to_numpy(zero_copy_only=False).reshape(len(array), width)


def _lengths(array: pa.Array) -> np.ndarray:
    return pc.list_value_length(array).to_numpy(zero_copy_only=False).astype(np.int64)


def _intersections(a: pa.Array, b: pa.Array) -> np.ndarray:
    """Shared values of each row's two sets (each without repeats): the values of both,
    sorted within the row, that equal their neighbour."""
    values = np.concatenate([pc.list_flatten(a).to_numpy(), pc.list_flatten(b).to_numpy()])
    row = np.concatenate([pc.list_parent_indices(a).to_numpy(), pc.list_parent_indices(b).to_numpy()])
    order = sort_by_row(values, row, len(a))
    values, row = values[order], row[order]
    same = (values[1:] == values[:-1]) & (row[1:] == row[:-1])
    return np.bincount(row[1:][same], minlength=len(a))
