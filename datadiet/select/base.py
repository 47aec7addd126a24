"""Selector family base classes and the Budget.

Selectors work on the *narrow* table: ``doc_id``, ``n_tokens``, ``source`` and score
columns, never the text. A recipe lists selectors as steps, applied in order; each step
sees only rows that survived the previous ones, and a rejected row keeps the reason of
the step that dropped it. Three kinds:

- :class:`RowFilter` decides each row on its own (threshold rules);
- :class:`GroupSelector` decides within groups sharing ``group_column`` (dedup, SemDeDup,
  per-cluster quotas); the pipeline hash-partitions rows so a group is never split;
- :class:`Ranker` gives each row a uint64 rank key (higher is better, ties already broken
  by a seeded hash of doc_id) and the pipeline keeps the best rows that fit the Budget
  (optionally per-group quotas and per-source floors and caps), in rank order;
- :class:`Orderer` orders the selected rows without dropping any (a curriculum).
  A Budget needs a Ranker; at most one Ranker, after the filters and groups.

Every selector is deterministic for a seed and independent of shard order and count.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np
import pyarrow as pa

from ..errors import BudgetError
from ..hashing import hash_strings
from ..params import Component, Interval


def _share_or_count(v) -> str | None:
    ok = isinstance(v, dict) and all(
        isinstance(x, (int, float)) and not isinstance(x, bool) and x >= 0 for x in v.values())
    return None if ok else "must map source names to a share of the budget (0 < x <= 1) or an absolute amount (> 1)"


class Budget(Component):
    """Exactly one limit: ``documents``, ``tokens``, ``bytes`` (UTF-8 text), ``fraction``
    (of ``fraction_of``: documents, tokens or bytes of the rows *entering the budget step*,
    i.e. those that survived the filters before it) or ``flops`` with ``model_params``
    (tokens = flops / (6 N), the usual training-compute estimate).

    Per-source constraints: ``floors`` and ``caps`` map a source name to a share of the
    limit (a float <= 1) or an absolute amount in the budget's unit (> 1). A source's floor
    is filled with its best rows first; a cap bounds what a source may take. ``epochs: k``
    lets the budget be filled by up to ``k`` passes over the selected rows (best first)
    when the eligible rows do not fill it; the writer repeats those rows.

    Example::

        Budget(tokens=2_000_000, caps={"web": 0.5}, floors={"code": 100_000})
        Budget(fraction=0.3, fraction_of="tokens")
    """

    _constraints = {
        "documents": Interval(int, 1, None),
        "tokens": Interval(int, 1, None),
        "bytes": Interval(int, 1, None),
        "fraction": Interval(float, 0, 1, low_open=True),
        "flops": Interval(float, 0, None, low_open=True),
        "model_params": Interval(float, 0, None, low_open=True),
        "epochs": Interval(int, 1, None),
        "floors": _share_or_count,
        "caps": _share_or_count,
    }

    def __init__(
        self,
        documents: int | None = None,
        tokens: int | None = None,
        fraction: float | None = None,
        fraction_of: Literal["documents", "tokens", "bytes"] = "documents",
        flops: float | None = None,
        model_params: float | None = None,
        bytes: int | None = None,
        floors: dict[str, float] | None = None,
        caps: dict[str, float] | None = None,
        epochs: int = 1,
    ):
        self.documents = documents
        self.tokens = tokens
        self.fraction = fraction
        self.fraction_of = fraction_of
        self.flops = flops
        self.model_params = model_params
        self.bytes = bytes
        self.floors = floors
        self.caps = caps
        self.epochs = epochs

    def validate_params(self, where: str = "budget") -> None:
        given = [k for k in ("documents", "tokens", "bytes", "fraction", "flops") if getattr(self, k) is not None]
        if len(given) != 1:
            raise BudgetError(
                f"{where}: a Budget takes exactly one of documents, tokens, bytes, fraction or flops; "
                f"got {', '.join(given) or 'none'}"
            )
        for key in given:
            value = getattr(self, key)
            if isinstance(value, (int, float)) and not isinstance(value, bool) and value <= 0:
                raise BudgetError(f"{where}: the budget's {key!r} must be > 0. Got {value!r} instead.")
        if self.flops is not None and self.model_params is None:
            raise BudgetError(f"{where}: a flops budget needs model_params (the trained model's size)")
        if isinstance(self.epochs, int) and not isinstance(self.epochs, bool) and self.epochs < 1:
            raise BudgetError(f"{where}.epochs must be an int >= 1. Got {self.epochs!r} instead.")
        super().validate_params(where)
        floors, caps = self.floors or {}, self.caps or {}
        shares = [v for v in floors.values() if v <= 1]
        if sum(shares) > 1 + 1e-9:
            raise BudgetError(f"{where}.floors: the shares add up to {sum(shares):g}, more than the whole budget")
        for src, floor in floors.items():
            cap = caps.get(src)
            if cap is not None and (floor <= 1) == (cap <= 1) and floor > cap:
                raise BudgetError(f"{where}: the floor of source {src!r} ({floor}) is above its cap ({cap})")

    @property
    def unit(self) -> str:
        if self.documents is not None:
            return "documents"
        if self.bytes is not None:
            return "bytes"
        if self.fraction is not None:
            return self.fraction_of
        return "tokens"

    def limit(self, total_documents: int, total_tokens: int, total_bytes: int = 0) -> int:
        """The budget in its unit for rows of this size (the rows entering the budget step)."""
        if self.documents is not None:
            return int(self.documents)
        if self.tokens is not None:
            return int(self.tokens)
        if self.bytes is not None:
            return int(self.bytes)
        if self.fraction is not None:
            total = {"documents": total_documents, "tokens": total_tokens, "bytes": total_bytes}[self.fraction_of]
            return int(np.floor(self.fraction * total))
        return int(self.flops / (6.0 * self.model_params))

    def amount(self, value: float, limit: int) -> int:
        """A floor or cap in the budget's unit: a share of ``limit`` (<= 1) or absolute."""
        return int(np.floor(value * limit)) if value <= 1 else int(value)


def unit_weights(table: pa.Table, unit: str) -> np.ndarray:
    """What one row costs in the budget's unit: 1, its n_tokens or its n_bytes (int64)."""
    if unit == "tokens":
        return np.asarray(table.column("n_tokens").to_numpy(), dtype=np.int64)
    if unit == "bytes":
        return np.asarray(table.column("n_bytes").to_numpy(), dtype=np.int64)
    return np.ones(table.num_rows, dtype=np.int64)


class Selector(Component):
    """Base of every selector: declares the score columns it reads."""

    kind: ClassVar[str] = ""

    def columns(self) -> list[str]:
        """Narrow-table columns this selector reads (besides doc_id, n_tokens, source)."""
        return []


class RowFilter(Selector):
    kind = "filter"

    def keep(self, table: pa.Table) -> tuple[np.ndarray, list[str | None]]:
        """(keep mask, reason per row: None where kept)."""
        raise NotImplementedError


class GroupSelector(Selector):
    """Decides within groups of rows that share ``group_column`` (a score column).

    The pipeline hash-partitions the surviving rows by that column, so ``decide`` receives
    one or more *complete* groups at once (a table with doc_id, n_tokens, source, the group
    column and ``columns()``), and must decide them vectorised, not one call per group.
    """

    kind = "group"
    #: Extra decision columns ``decide`` may return, e.g. {"duplicate_of": pa.string()}.
    extra_columns: ClassVar[dict[str, pa.DataType]] = {}

    def group_by(self) -> str:
        """The score column whose equal values form a group."""
        raise NotImplementedError

    def decide(self, rows: pa.Table) -> dict[str, object]:
        """{"keep": bool ndarray, "reason": list[str | None], **extra_columns} for ``rows``
        (same order)."""
        raise NotImplementedError


class Ranker(Selector):
    """Orders rows by a uint64 key (higher first); the budget engine keeps the best rows
    that fit the Budget and writes them in this order.

    A ranker may split the budget into per-group quotas: ``group_column`` names a score
    column and ``group_quotas`` turns each group's available weight into a quota (an upper
    bound in the budget's unit); each group is then filled with its own best rows.
    """

    kind = "ranker"
    #: Reason given to rows that rank below the budget's boundary.
    reject_reason: ClassVar[str] = "budget"
    #: Reason given to rows beyond their group's quota.
    quota_reason: ClassVar[str] = "group quota"

    def key(self, table: pa.Table, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """(uint64 rank keys, valid mask). Invalid rows (e.g. null score) are rejected."""
        raise NotImplementedError

    def group_column(self) -> str | None:
        return None

    def group_quotas(self, available: dict, limit: int) -> dict | None:
        """Quota per group value from the groups' available weight and the budget limit."""
        return None

    def score_column(self) -> str | None:
        """The column written as ``score`` in rankings (the ranker's main score)."""
        score = getattr(self, "score", None)
        return score if isinstance(score, str) else None


class Orderer(Ranker):
    """Orders the selected rows without dropping any (curricula): ``key`` as for a Ranker
    (higher first), every row valid (rows without a score get the lowest key: last); no
    budget and no quotas."""

    kind = "orderer"
    reject_reason: ClassVar[str] = "order"
    quota_reason: ClassVar[str] = "order"


def group_codes(values: pa.ChunkedArray | pa.Array) -> tuple[np.ndarray, list]:
    """(code per row, distinct values) of a group column; nulls form the group ``None``."""
    values = pa.chunked_array([values]) if isinstance(values, pa.Array) else values
    encoded = values.combine_chunks().dictionary_encode(null_encoding="encode")
    return encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64), encoded.dictionary.to_pylist()


def float_rank_key(
    scores: pa.Array | pa.ChunkedArray, doc_ids: pa.Array | pa.ChunkedArray, seed: int, descending: bool
) -> tuple[np.ndarray, np.ndarray]:
    """uint64 keys ordering rows by score (high first when ``descending``), ties broken by a
    seeded hash of doc_id: the float32 score's order-preserving bits in the high 32 bits,
    32 bits of the hash in the low ones. NaN and null are marked invalid."""
    values = pa.chunked_array([scores]) if isinstance(scores, pa.Array) else scores
    valid = ~np.asarray(values.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    x = np.asarray(values.cast(pa.float32()).fill_null(0).to_numpy(), dtype=np.float32)
    valid &= ~np.isnan(x)
    x = np.where(valid, x, np.float32(0))
    if not descending:
        x = -x
    bits = x.view(np.uint32).astype(np.uint64)
    negative = (bits & np.uint64(0x80000000)) != 0
    ordered = np.where(negative, ~bits & np.uint64(0xFFFFFFFF), bits | np.uint64(0x80000000))
    tie = hash_strings(doc_ids, seed=seed) >> np.uint64(32)
    return (ordered << np.uint64(32)) | tie, valid


__all__ = ["Budget", "Selector", "RowFilter", "GroupSelector", "Ranker", "Orderer", "float_rank_key", "group_codes",
           "unit_weights"]
