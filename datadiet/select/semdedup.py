"""SemDeDup (Abbas et al., 2023): near-duplicates by embedding cosine within k-means clusters."""

from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np
import pyarrow as pa

from ..params import Interval
from ..registry import register
from ..scorers.embedding import embedding_matrix
from .base import GroupSelector, float_rank_key, group_codes


def earlier_nearest(vectors: np.ndarray, block: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    """For each row j of unit ``vectors``: the largest cosine with any earlier row i < j and
    that row's index (-inf and -1 for row 0). Computed in ``block`` x ``block`` tiles, so
    memory stays O(block²) however large the cluster."""
    m = len(vectors)
    best = np.full(m, -np.inf, dtype=np.float32)
    arg = np.full(m, -1, dtype=np.int64)
    for cs in range(0, m, block):
        ce = min(cs + block, m)
        cols = vectors[cs:ce]
        for rs in range(0, ce, block):
            re = min(rs + block, ce)
            sims = vectors[rs:re] @ cols.T
            if re > cs:  # the tile crosses the diagonal: only i < j counts
                i = np.arange(rs, re)[:, None]
                j = np.arange(cs, ce)[None, :]
                sims = np.where(i < j, sims, -np.inf)
            top = sims.argmax(axis=0)
            val = sims[top, np.arange(ce - cs)]
            better = val > best[cs:ce]
            best[cs:ce] = np.where(better, val, best[cs:ce])
            arg[cs:ce] = np.where(better, top + rs, arg[cs:ce])
    return best, arg


@register("selector", "semdedup")
class SemDeDup(GroupSelector):
    """Semantic deduplication within each k-means cluster.

    Rows of a cluster are put in keep-priority order (``keep``: "prototypical" = smallest
    ``distance_column``, "lowest_loss" = smallest ``loss_column``, "longest" = most tokens;
    ties by a seeded doc_id hash). As in the paper's reference code, a row is a duplicate
    when its cosine similarity to *any* higher-priority row of its cluster is at least
    ``1 - eps`` (whether or not that row was itself dropped); it is dropped with reason
    "semantic duplicate" and ``duplicate_of`` names the kept row its chain of nearest
    higher-priority duplicates leads to. Similarities are computed in tiles of
    ``block_size`` rows. Rows without an embedding or cluster are kept.

    Example::

        SemDeDup(cluster_column="kmeans.cluster", embedding_column="embedding", eps=0.05)
    """

    extra_columns: ClassVar[dict[str, pa.DataType]] = {"duplicate_of": pa.string()}
    _constraints = {"eps": Interval(float, 0, 2), "block_size": Interval(int, 1, None)}

    def __init__(
        self,
        cluster_column: str = "kmeans.cluster",
        embedding_column: str = "embedding",
        eps: float = 0.05,
        keep: Literal["prototypical", "lowest_loss", "longest"] = "prototypical",
        distance_column: str = "kmeans.distance",
        loss_column: str = "loss",
        block_size: int = 2048,
        seed: int = 0,
    ):
        self.cluster_column = cluster_column
        self.embedding_column = embedding_column
        self.eps = eps
        self.keep = keep
        self.distance_column = distance_column
        self.loss_column = loss_column
        self.block_size = block_size
        self.seed = seed

    def group_by(self) -> str:
        return self.cluster_column

    def columns(self) -> list[str]:
        extra = {"prototypical": [self.distance_column], "lowest_loss": [self.loss_column]}.get(self.keep, [])
        return [self.cluster_column, self.embedding_column] + extra

    def _priority(self, rows: pa.Table) -> np.ndarray:
        """uint64 keep-priority (higher first); rows with a null tie-break column go last."""
        doc_ids = rows.column("doc_id")
        if self.keep == "longest":
            keys, valid = float_rank_key(rows.column("n_tokens"), doc_ids, self.seed, descending=True)
        else:
            column = self.distance_column if self.keep == "prototypical" else self.loss_column
            keys, valid = float_rank_key(rows.column(column), doc_ids, self.seed, descending=False)
        return np.where(valid, keys, keys & np.uint64(0xFFFFFFFF))

    def decide(self, rows: pa.Table) -> dict[str, object]:
        n = rows.num_rows
        keep = np.ones(n, dtype=bool)
        parent = np.arange(n)
        if n:
            vectors, has_vec = embedding_matrix(rows.column(self.embedding_column), self.embedding_column)
            norms = np.linalg.norm(vectors, axis=1)
            has_vec &= norms > 0
            vectors = vectors / np.where(norms > 0, norms, 1)[:, None]
            codes, values = group_codes(rows.column(self.cluster_column))
            codes = np.where(has_vec, codes, -1)
            null_code = values.index(None) if None in values else -2
            codes[codes == null_code] = -1
            priority = self._priority(rows)
            order = np.lexsort((~priority, codes))
            sorted_codes = codes[order]
            starts = np.flatnonzero(np.r_[True, sorted_codes[1:] != sorted_codes[:-1]])
            ends = np.r_[starts[1:], n]
            for s, e in zip(starts.tolist(), ends.tolist()):
                if e - s < 2 or sorted_codes[s] < 0:
                    continue
                members = order[s:e]
                best, arg = earlier_nearest(vectors[members], self.block_size)
                dup = best >= np.float32(1.0 - self.eps)
                keep[members[dup]] = False
                parent[members[dup]] = members[arg[dup]]
            while True:  # follow chains of duplicates to the kept row (pointer jumping)
                jumped = parent[parent]
                if np.array_equal(jumped, parent):
                    break
                parent = jumped
        ids = rows.column("doc_id").combine_chunks() if n else pa.array([], pa.string())
        duplicate_of = ids.take(pa.array(parent)).cast(pa.string())
        duplicate_of = pa.array(np.where(keep, None, np.asarray(duplicate_of.to_pylist(), dtype=object)), pa.string())
        reason = np.where(keep, None, "semantic duplicate").tolist()
        return {"keep": keep, "reason": reason, "duplicate_of": duplicate_of}
