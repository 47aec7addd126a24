"""Exact-duplicate key: a 64-bit hash of the normalised text.

Normalisation runs per row with CPython's C string routines (``unicodedata.normalize``,
``str.lower``, ``str.split``/``join``): measured on the shared corpora it was about 1.5x
faster than the vectorised route (pyarrow ``utf8_normalize``/``utf8_lower`` plus a numpy
whitespace collapse over the UTF-8 bytes), because CPython's NFKC has a quick-check fast
path for text that is already normalised and Arrow's does the full decomposition.
"""

from __future__ import annotations

import unicodedata

import numpy as np
import pyarrow as pa
import xxhash

from ..registry import register
from .base import Scorer


def normalize_text(text: str) -> str:
    """NFKC, lower case, whitespace runs (as ``str.split`` sees them) to one space, stripped.

    Example::

        normalize_text("  Hello\\u00a0 WORLD ")  # -> "hello world"
    """
    return " ".join(unicodedata.normalize("NFKC", text).lower().split())


@register("scorer", "exact_hash")
class ExactHash(Scorer):
    """uint64 xxh64 (seeded by ``seed``) of the normalised text (see
    :func:`normalize_text`), the group key of ``exact_dedup``. A null text gets a null
    hash with reason "null text".

    Example::

        ExactHash().score_batch(batch)["score"]   # uint64 per row
    """

    def __init__(self, seed: int = 0):
        self.seed = seed

    def output_columns(self) -> dict[str, pa.DataType]:
        return {"score": pa.uint64()}

    def score_batch(self, batch: pa.RecordBatch) -> dict[str, pa.Array]:
        texts = batch.column("text").to_pylist()
        digest, seed, norm = xxhash.xxh64_intdigest, self.seed, normalize_text
        hashes = np.fromiter(
            (digest(norm(t).encode("utf-8"), seed) if t is not None else 0 for t in texts),
            dtype=np.uint64,
            count=len(texts),
        )
        null = np.fromiter((t is None for t in texts), dtype=bool, count=len(texts))
        return {
            "score": pa.array(hashes, type=pa.uint64(), mask=null),
            "null_reason": pa.array(np.where(null, "null text", None).tolist(), type=pa.string()),
        }

    def flops_per_token(self) -> float:
        return 20.0
