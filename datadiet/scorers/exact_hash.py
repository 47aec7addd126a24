"""Exact-duplicate key: a 64-bit hash of the normalised text."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import xxhash

from ..registry import register
from .base import Scorer

#: Whitespace runs (RE2's \s is ASCII only, so Unicode separators are added).
_SPACES = r"[\s\p{Z}\x{85}]+"


def normalize_texts(texts: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """NFKC, lower case, whitespace runs collapsed to one space, stripped (vectorised with
    pyarrow.compute; nulls stay null).

    Example::

        normalize_texts(pa.array(["  Hello\\u00a0 WORLD "]))  # -> ["hello world"]
    """
    out = pc.utf8_normalize(texts, form="NFKC")
    out = pc.utf8_lower(out)
    out = pc.replace_substring_regex(out, pattern=_SPACES, replacement=" ")
    return pc.utf8_trim_whitespace(out)


@register("scorer", "exact_hash")
class ExactHash(Scorer):
    """uint64 xxh64 of the normalised text (see :func:`normalize_texts`), the group key of
    ``exact_dedup``. A null text gets a null hash with reason "null text".

    Example::

        ExactHash().score_batch(batch)["score"]   # uint64 per row
    """

    def __init__(self, seed: int = 0):
        self.seed = seed

    def output_columns(self) -> dict[str, pa.DataType]:
        return {"score": pa.uint64()}

    def score_batch(self, batch: pa.RecordBatch) -> dict[str, pa.Array]:
        texts = batch.column("text")
        normal = normalize_texts(texts).cast(pa.large_binary())
        null = np.asarray(texts.is_null().to_numpy(zero_copy_only=False), dtype=bool)
        digest, seed = xxhash.xxh64_intdigest, self.seed
        hashes = np.fromiter(
            (digest(v, seed) if v is not None else 0 for v in normal.to_pylist()), dtype=np.uint64, count=len(normal)
        )
        return {
            "score": pa.array(hashes, type=pa.uint64(), mask=null),
            "null_reason": pa.array(np.where(null, "null text", None).tolist(), type=pa.string()),
        }

    def flops_per_token(self) -> float:
        return 20.0
