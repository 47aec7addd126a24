"""Stable, seeded 64-bit hashes of strings, vectorised (xxhash per value, no Python-level
state), used for doc ids, tie-breaking, sampling and random selection."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import xxhash


def hash_strings(values: pa.Array | pa.ChunkedArray | list[str], seed: int = 0) -> np.ndarray:
    """uint64 xxh64 of each string (UTF-8) with ``seed``; nulls hash as the empty string."""
    if isinstance(values, (pa.Array, pa.ChunkedArray)):
        values = values.to_pylist()
    h = xxhash.xxh64_intdigest
    return np.fromiter(
        (h(v.encode("utf-8") if v is not None else b"", seed) for v in values),
        dtype=np.uint64,
        count=len(values),
    )


def hash_text(text: str, seed: int = 0) -> str:
    return xxhash.xxh64_hexdigest(text.encode("utf-8"), seed)


def uniform_from_hash(hashes: np.ndarray) -> np.ndarray:
    """Map uint64 hashes to floats in (0, 1), exactly reproducible."""
    return ((hashes >> np.uint64(11)).astype(np.float64) + 0.5) / float(1 << 53)
