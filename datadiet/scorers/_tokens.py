"""One whitespace tokenisation of a batch, shared by the cheap text scorers.

The pipeline hands every scorer of a stage the same batch object, one after the other, so
the work all of them need (bytes, whitespace mask, word boundaries, per-text counts) is done
once and kept for the most recent batch of each thread. The entry holds a reference to the
text array, so its buffers cannot be freed and their addresses identify the same bytes.
Texts are cut into slices of about 256 KB, small enough for the masks to stay in cache.
"""

from __future__ import annotations

import functools
import threading
import weakref

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ._text import Segments, Texts, raw_bytes, space_bytes, word_bounds, word_starts

SLICE_BYTES = 1 << 18
_CACHE_LIMIT = 1 << 26  # batches with more text than this (64 MB) are not kept


class Slice:
    """Rows ``start:stop`` of a batch's texts: ``raw`` bytes, ``offsets`` (int64, from 0),
    and on first use the whitespace mask, word boundaries and per-text counts."""

    def __init__(self, array: pa.StringArray, start: int, stop: int, offsets: np.ndarray):
        self.start, self.stop, self.n = start, stop, stop - start
        self.array = array.slice(start, stop - start)
        own = offsets[start : stop + 1]
        self.raw = raw_bytes(self.array, own)
        self.offsets = (own - own[0]).astype(np.int64)

    @functools.cached_property
    def space(self) -> np.ndarray:
        return space_bytes(self.raw)

    @functools.cached_property
    def segments(self) -> Segments:
        return Segments(self.offsets)

    @functools.cached_property
    def word_counts(self) -> np.ndarray:
        return self.segments.count(word_starts(self.space, self.offsets))

    @functools.cached_property
    def words(self) -> tuple[np.ndarray, np.ndarray]:
        """Start and end (exclusive) byte positions of every word."""
        return word_bounds(self.space, self.offsets)

    @functools.cached_property
    def chars(self) -> np.ndarray:
        """Code points per text (int64)."""
        return pc.utf8_length(self.array).to_numpy().astype(np.int64)


class Tokenised:
    """The slices of one text array (see :func:`tokenised`)."""

    def __init__(self, array: pa.StringArray, offsets: np.ndarray):
        self.array = array
        self.slices: list[Slice] = []
        start, n = 0, len(array)
        while start < n:
            stop = int(np.searchsorted(offsets, offsets[start] + SLICE_BYTES, side="right")) - 1
            stop = min(max(stop, start + 1), n)
            self.slices.append(Slice(array, start, stop, offsets))
            start = stop

    def gather(self, name: str, dtype=np.int64) -> np.ndarray:
        """Per-text array attribute ``name`` of every slice, concatenated."""
        parts = [getattr(s, name) for s in self.slices]
        return np.concatenate(parts).astype(dtype, copy=False) if parts else np.zeros(0, dtype)


_local = threading.local()  # per thread: worker threads score different batches


def _key(array: pa.StringArray) -> tuple:
    return (array.offset, len(array), *(b.address if b is not None else 0 for b in array.buffers()))


def tokenised(texts: Texts, batch: pa.RecordBatch) -> Tokenised:
    """The tokenisation of ``texts.array`` (the text of ``batch``), reused while the same
    batch object comes back with the same array: scorers handed one batch in turn share
    it, while a new batch of the same rows (a planner's second timing pass) does not."""
    array, offsets = texts.array, texts.byte_offsets()
    key = _key(array)
    cached = getattr(_local, "last", None)
    if cached is not None and cached[0] == key and cached[1]() is batch:
        return cached[2]
    entry = Tokenised(array, offsets)
    small = offsets[-1] - offsets[0] <= _CACHE_LIMIT
    _local.last = (key, weakref.ref(batch), entry) if small else None
    return entry


def forget() -> None:
    """Drop this thread's kept tokenisation (benchmarks use it to time scorers alone)."""
    _local.last = None
