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
    """``ratio`` = ``len(zlib.compress(b, level)) / len(b)`` for the text's UTF-8 bytes ``b``
    (float32; zlib format, so its 6 header and checksum bytes count). Repetitive or
    boilerplate text compresses well (low ratio); very short texts can exceed 1. Empty
    text gives null with reason "empty text".

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
        compress, level = zlib.compress, self.level
        bounds = offsets.tolist()
        sizes = [len(compress(view[a:b], level)) for a, b in zip(bounds[:-1], bounds[1:])]
        return to_columns({"ratio": ratio(np.asarray(sizes, dtype=np.int64), raw)}, _TYPES, texts)
