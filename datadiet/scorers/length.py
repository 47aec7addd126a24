"""Length features: characters, words and tokens per document."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import ConfigError, MissingColumnError
from ..registry import register
from ._text import Segments, Texts, raw_bytes, space_bytes, to_columns, word_starts
from .base import Scorer

_SLICE_BYTES = 1 << 20  # rows are scored a slice of about this much text at a time
_TYPES = {"chars": pa.int64(), "words": pa.int64(), "tokens": pa.int64()}


@register("scorer", "length")
class LengthScorer(Scorer):
    """Document length as ``chars`` (code points), ``words`` (whitespace-separated, as
    ``str.split()``) and ``tokens`` (a copy of the view's ``n_tokens``), all int64.

    Empty text scores 0; a missing (null) text gives nulls with reason "missing text".

    Example::

        columns = LengthScorer().score_batch(batch)
        columns["words"]   # pa.Int64Array
    """

    def __init__(self):
        pass

    def output_columns(self) -> dict[str, pa.DataType]:
        return dict(_TYPES)

    def score_batch(self, batch: pa.RecordBatch) -> dict[str, pa.Array]:
        texts = Texts(batch, "length")
        if "n_tokens" not in batch.schema.names:
            raise MissingColumnError(
                f"scorer 'length' needs an 'n_tokens' column; the batch has: {', '.join(batch.schema.names)}"
            )
        tokens = batch.column("n_tokens")
        if not pa.types.is_integer(tokens.type):
            raise ConfigError(f"scorer 'length': column 'n_tokens' must be integer, found {tokens.type}")
        words = []
        for start, stop in texts.slices(_SLICE_BYTES):
            array = texts.array.slice(start, stop - start)
            offsets = texts.byte_offsets(array)
            relative = (offsets - offsets[0]).astype(np.int64)
            starts = word_starts(space_bytes(raw_bytes(array, offsets)), relative)
            words.append(Segments(relative).count(starts))
        if tokens.null_count:
            texts.mark(~np.asarray(tokens.is_valid()), "missing n_tokens")
            tokens = tokens.fill_null(0)
        values = {
            "chars": pc.utf8_length(texts.array).to_numpy(),
            "words": np.concatenate(words) if words else np.zeros(0, np.int64),
            "tokens": tokens.to_numpy(zero_copy_only=False),
        }
        return to_columns(values, _TYPES, texts)
