"""Selector family base classes and the Budget.

Selectors work on the *narrow* table: ``doc_id``, ``n_tokens``, ``source`` and score
columns, never the text. A recipe lists selectors as steps, applied in order; each step
sees only rows that survived the previous ones, and a rejected row keeps the reason of
the step that dropped it. Three kinds:

- :class:`RowFilter` decides each row on its own (threshold rules);
- :class:`GroupSelector` decides within groups sharing ``group_column`` (dedup, SemDeDup,
  per-cluster quotas); the pipeline hash-partitions rows so a group is never split;
- :class:`Ranker` gives each row a uint64 rank key (higher is better, ties already broken
  by a seeded hash of doc_id) and the pipeline keeps the best rows that fit the Budget.
  Only the last step may be a Ranker, and a Budget needs one.

Every selector is deterministic for a seed and independent of shard order and count.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np
import pyarrow as pa

from ..errors import BudgetError
from ..hashing import hash_strings
from ..params import Component, Interval


class Budget(Component):
    """Exactly one limit: ``documents``, ``tokens``, ``fraction`` (of ``fraction_of``:
    documents or tokens) or ``flops`` with ``model_params`` (tokens = flops / (6 N),
    the usual training-compute estimate).

    Example::

        Budget(tokens=2_000_000)
        Budget(fraction=0.3, fraction_of="tokens")
    """

    _constraints = {
        "documents": Interval(int, 1, None),
        "tokens": Interval(int, 1, None),
        "fraction": Interval(float, 0, 1, low_open=True),
        "flops": Interval(float, 0, None, low_open=True),
        "model_params": Interval(float, 0, None, low_open=True),
    }

    def __init__(
        self,
        documents: int | None = None,
        tokens: int | None = None,
        fraction: float | None = None,
        fraction_of: Literal["documents", "tokens"] = "documents",
        flops: float | None = None,
        model_params: float | None = None,
    ):
        self.documents = documents
        self.tokens = tokens
        self.fraction = fraction
        self.fraction_of = fraction_of
        self.flops = flops
        self.model_params = model_params

    def validate_params(self, where: str = "budget") -> None:
        given = [k for k in ("documents", "tokens", "fraction", "flops") if getattr(self, k) is not None]
        if len(given) != 1:
            raise BudgetError(
                f"{where}: a Budget takes exactly one of documents, tokens, fraction or flops; "
                f"got {', '.join(given) or 'none'}"
            )
        for key in given:
            value = getattr(self, key)
            if isinstance(value, (int, float)) and not isinstance(value, bool) and value <= 0:
                raise BudgetError(f"{where}: the budget's {key!r} must be > 0. Got {value!r} instead.")
        if self.flops is not None and self.model_params is None:
            raise BudgetError(f"{where}: a flops budget needs model_params (the trained model's size)")
        super().validate_params(where)

    @property
    def unit(self) -> str:
        if self.documents is not None:
            return "documents"
        if self.fraction is not None:
            return self.fraction_of
        return "tokens"

    def limit(self, total_documents: int, total_tokens: int) -> int:
        """The budget in its unit (documents or tokens) for a corpus of this size."""
        if self.documents is not None:
            return int(self.documents)
        if self.tokens is not None:
            return int(self.tokens)
        if self.fraction is not None:
            total = total_documents if self.fraction_of == "documents" else total_tokens
            return int(np.floor(self.fraction * total))
        return int(self.flops / (6.0 * self.model_params))


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

    def decide(self, rows: pa.Table, quotas: dict | None = None) -> dict[str, object]:
        """{"keep": bool ndarray, "reason": list[str | None], **extra_columns} for ``rows``
        (same order). ``quotas`` is what :meth:`quotas` returned, when it returned one."""
        raise NotImplementedError

    def quotas(
        self, group_rows: dict[object, int], group_tokens: dict[object, int], budget: Budget | None
    ) -> dict[object, int] | None:
        """Per-group quota in the budget's unit (documents or tokens), from global group
        sizes, or None for no quota. A GroupSelector returning quotas consumes the budget
        (like a Ranker) and must then be the last step."""
        return None


class Ranker(Selector):
    kind = "ranker"
    #: Reason given to rows that rank below the budget's boundary.
    reject_reason: ClassVar[str] = "budget"

    def key(self, table: pa.Table, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """(uint64 rank keys, valid mask). Invalid rows (e.g. null score) are rejected."""
        raise NotImplementedError


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


__all__ = ["Budget", "Selector", "RowFilter", "GroupSelector", "Ranker", "float_rank_key"]
