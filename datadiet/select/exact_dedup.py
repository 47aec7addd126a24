"""Exact deduplication: one row per group of equal text hashes."""

from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..registry import register
from .base import GroupSelector


def _first_of_runs(sorted_keys: list[np.ndarray]) -> np.ndarray:
    """True where a row starts a new run of equal keys (all ``sorted_keys`` equal)."""
    n = len(sorted_keys[0])
    first = np.zeros(n, dtype=bool)
    if n:
        first[0] = True
        for k in sorted_keys:
            first[1:] |= k[1:] != k[:-1]
    return first


@register("selector", "exact_dedup")
class ExactDedup(GroupSelector):
    """Keeps one row per group of equal ``column`` values (the ``exact_hash`` scorer's
    normalised-text hash); the others are dropped with reason "exact duplicate" and
    ``duplicate_of`` = the kept row's doc_id. ``keep="first"`` keeps the smallest doc_id,
    ``keep="longest"`` the most tokens (ties: smallest doc_id). Rows with a null hash are
    kept. Decided for all groups at once by one sort, not a loop over groups.

    Example::

        ExactDedup(column="exact_hash", keep="longest")
    """

    extra_columns: ClassVar[dict[str, pa.DataType]] = {"duplicate_of": pa.string()}

    def __init__(self, column: str = "exact_hash", keep: Literal["first", "longest"] = "first"):
        self.column = column
        self.keep = keep

    def group_by(self) -> str:
        return self.column

    def columns(self) -> list[str]:
        return [self.column]

    def decide(self, rows: pa.Table) -> dict[str, object]:
        n = rows.num_rows
        sort_keys = [(self.column, "ascending")]
        if self.keep == "longest":
            sort_keys.append(("n_tokens", "descending"))
        sort_keys.append(("doc_id", "ascending"))
        order = pc.sort_indices(rows.select([k for k, _ in sort_keys]), sort_keys=sort_keys).to_numpy()
        groups = rows.column(self.column).take(pa.array(order))
        null = np.asarray(groups.is_null().to_numpy(zero_copy_only=False), dtype=bool)
        codes = groups.combine_chunks().dictionary_encode().indices.to_numpy(zero_copy_only=False)
        first = _first_of_runs([codes]) | null
        leader = np.maximum.accumulate(np.where(first, np.arange(n), 0)) if n else np.zeros(0, np.int64)
        keep = np.empty(n, dtype=bool)
        keep[order] = first
        kept_id = rows.column("doc_id").take(pa.array(order[leader])).combine_chunks() if n else pa.array([], pa.string())
        dup_sorted = pc.if_else(pa.array(first), pa.scalar(None, pa.string()), kept_id.cast(pa.string()))
        inverse = np.empty(n, dtype=np.int64)
        inverse[order] = np.arange(n)
        duplicate_of = dup_sorted.take(pa.array(inverse))
        reason = np.where(keep, None, "exact duplicate").tolist()
        return {"keep": keep, "reason": reason, "duplicate_of": duplicate_of}
