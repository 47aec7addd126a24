"""Length features: characters, words and tokens per document."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from ..errors import ConfigError, MissingColumnError
from ..registry import register
from ._text import Texts, to_columns
from ._tokens import tokenised
from .base import Scorer

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
        tokenisation = tokenised(texts, batch)
        if tokens.null_count:
            texts.mark(~np.asarray(tokens.is_valid()), "missing n_tokens")
            tokens = tokens.fill_null(0)
        values = {
            "chars": tokenisation.gather("chars"),
            "words": tokenisation.gather("word_counts"),
            "tokens": tokens.to_numpy(zero_copy_only=False),
        }
        return to_columns(values, _TYPES, texts)
