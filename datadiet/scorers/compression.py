"""Compression ratio: how much zlib's DEFLATE shrinks a document (repetitive text shrinks more)."""

from __future__ import annotations

import zlib
from typing import ClassVar

import numpy as np
import pyarrow as pa

from ..params import Interval
from ..registry import register
from ._text import EMPTY_TEXT, Texts, ratio, to_columns
from .base import Scorer

_TYPES = {"ratio": pa.float32()}


@register("scorer", "compression")
class CompressionScorer(Scorer):
    """``ratio`` = DEFLATE-compressed bytes / raw UTF-8 bytes (float32), at zlib ``level``.

    The compressed size is that of a raw DEFLATE stream (no zlib header or checksum) closed
    by a full flush: per document it equals
    ``len(c.compress(b)) + len(c.flush(zlib.Z_FULL_FLUSH))`` for a fresh
    ``c = zlib.compressobj(level, zlib.DEFLATED, -15)``. A full flush forgets all history,
    so one compressor is reused across a batch without documents influencing each other
    (and without zlib's per-call setup cost). Empty text gives null with reason "empty text".

    Example::

        CompressionScorer(level=6).score_batch(batch)["ratio"]
    """

    _constraints: ClassVar[dict] = {"level": Interval(int, 1, 9)}

    def __init__(self, level: int = 6):
        self.level = level

    def output_columns(self) -> dict[str, pa.DataType]:
        return dict(_TYPES)

    def score_batch(self, batch: pa.RecordBatch) -> dict[str, pa.Array]:
        self.validate_params()
        texts = Texts(batch, "compression", check_utf8=False)
        offsets = texts.byte_offsets()
        raw = np.diff(offsets)
        texts.mark(raw == 0, EMPTY_TEXT)
        data = texts.array.buffers()[2]
        view = memoryview(data) if data is not None else memoryview(b"")
        compressor = zlib.compressobj(self.level, zlib.DEFLATED, -15)
        compress, flush, full = compressor.compress, compressor.flush, zlib.Z_FULL_FLUSH
        bounds = offsets.tolist()
        sizes = [len(compress(view[a:b])) + len(flush(full)) for a, b in zip(bounds[:-1], bounds[1:])]
        return to_columns({"ratio": ratio(np.asarray(sizes, dtype=np.int64), raw)}, _TYPES, texts)
