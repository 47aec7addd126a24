"""Shard batches kept in the worker process between the score pass and the write, so a
small corpus is decoded once instead of twice.

The runner turns this on only for a recipe without select steps (conversion, scoring,
annotating with ``include_scores``: nothing runs between the score pass and the write, so
the batches are not held beside a selection's own memory), and only when the whole input
is estimated (from Parquet footers, or file sizes) to fit ``BUDGET_BYTES`` per worker; each
process also stops keeping shards once its own budget is full, so memory stays bounded by
the budget, never by the corpus. Otherwise the write reads its shards again. Write tasks are asked
to run where their shards are kept (:func:`preferred_workers`); one that runs elsewhere
misses and reads the shard again, so placement changes speed, never bytes.

Example::

    remember(key, items)          # the score pass, once the shard was read without error
    items = recall(key)           # the write: the same (batch, rows) pairs, or None
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import numpy as np
import pyarrow as pa

from ..readers.base import Shard

BUDGET_BYTES = 256 << 20

_KEPT: dict[tuple, list[tuple[pa.RecordBatch, np.ndarray]]] = {}
_USED = [0]


def fits(shards: Sequence[Shard], n_workers: int) -> bool:
    """Whether the input is estimated to fit the budget of ``n_workers`` processes."""
    decoded = sum(s.data_bytes for s in shards if s.data_bytes)
    files = {s.path: s.size for s in shards if not s.data_bytes}
    return decoded + sum(files.values()) <= BUDGET_BYTES * max(1, n_workers)


def remember(key: tuple, items: list[tuple[pa.RecordBatch, np.ndarray]]) -> bool:
    """Keeps one shard's batches unless that would overrun the budget; says whether it did."""
    nbytes = sum(b.nbytes for b, _ in items)
    if key in _KEPT or _USED[0] + nbytes > BUDGET_BYTES:
        return key in _KEPT
    _KEPT[key] = items
    _USED[0] += nbytes
    return True


def recall(key: tuple) -> list[tuple[pa.RecordBatch, np.ndarray]] | None:
    return _KEPT.get(key)


def forget(root: str) -> None:
    """Drops every shard a run (by its directory) kept in this process."""
    for key in [k for k in _KEPT if k[0] == root]:
        _USED[0] -= sum(b.nbytes for b, _ in _KEPT.pop(key))


def worker_address() -> str | None:
    """The Dask worker running this task, or None outside one."""
    if "distributed" not in sys.modules:
        return None
    from distributed import get_worker

    try:
        return get_worker().address
    except ValueError:
        return None


def score_placement(shards: Sequence[Shard], workers: Sequence[str]) -> list[str | None]:
    """Where each shard's score task would best run: consecutive shards, in blocks of about
    equal size, on one worker each, so that an output file (a range of consecutive rows)
    finds most of its shards kept in one process."""
    if not workers:
        return [None] * len(shards)
    sizes = [s.data_bytes or s.n_rows or 1 for s in shards]
    total = sum(sizes)
    out, before = [], 0
    for size in sizes:
        out.append(workers[min(len(workers) - 1, int((before + size / 2) * len(workers) / total))])
        before += size
    return out


def preferred_workers(files: Sequence[tuple[int, int, list[int], list[int]]], sizes: Sequence[int],
                      holders: Sequence[str | None]) -> list[str | None]:
    """For each planned output file (lo, hi, shard indices, their start offsets): the worker
    keeping most of its bytes, or None when no worker keeps any."""
    out = []
    for lo, hi, idx, starts in files:
        weight: dict[str, int] = {}
        for i, start in zip(idx, starts):
            if holders[i]:
                overlap = min(hi, start + sizes[i]) - max(lo, start)
                weight[holders[i]] = weight.get(holders[i], 0) + max(overlap, 1)
        out.append(max(sorted(weight), key=weight.__getitem__) if weight else None)
    return out
