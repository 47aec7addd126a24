"""Character-class statistics: how much of a document is letters, digits, punctuation, space, junk."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from ..registry import register
from ._text import (
    ALPHA,
    DIGIT,
    EMPTY_TEXT,
    NONPRINT,
    PUNCT,
    REPLACEMENT,
    SPACE,
    Texts,
    char_flags,
    codepoints,
    ratio,
    to_columns,
    word_starts,
)
from .base import Scorer

_FRACTIONS = {
    "alpha_frac": ALPHA,
    "digit_frac": DIGIT,
    "punct_frac": PUNCT,
    "whitespace_frac": SPACE,
    "nonprintable_frac": NONPRINT,
    "replacement_frac": REPLACEMENT,
}
_TYPES = {key: pa.float32() for key in [*_FRACTIONS, "mean_word_len"]}
_WORD_START = 64  # extra bit next to the class bits: a word starts at this character
# _BITS[flags] is the 0/1 row of class memberships (plus word start) for a flags byte.
_BITS = np.array(
    [[(code >> bit) & 1 for bit in (0, 1, 2, 3, 4, 5, 6)] for code in range(128)], dtype=np.float64
)


@register("scorer", "charstats")
class CharStatsScorer(Scorer):
    """Fractions of characters (code points) by class, and the mean word length.

    - ``alpha_frac``: letters (``str.isalpha``, Unicode L*);
    - ``digit_frac``: decimal digits (``str.isdecimal``, Unicode Nd);
    - ``punct_frac``: punctuation or symbols (Unicode P* or S*, so all of ASCII
      ``string.punctuation`` counts);
    - ``whitespace_frac``: ``str.isspace`` characters;
    - ``nonprintable_frac``: control, format, private-use, surrogate and unassigned code
      points (Unicode C*) other than tab, newline and carriage return;
    - ``replacement_frac``: U+FFFD, the mark of a failed decode;
    - ``mean_word_len``: mean length of whitespace-separated words (0.0 when none).

    Classes come from Python's ``unicodedata``. All float32; empty text gives nulls with
    reason "empty text".

    Example::

        CharStatsScorer().score_batch(batch)["alpha_frac"]
    """

    def __init__(self):
        pass

    def output_columns(self) -> dict[str, pa.DataType]:
        return dict(_TYPES)

    def score_batch(self, batch: pa.RecordBatch) -> dict[str, pa.Array]:
        texts = Texts(batch, "charstats")
        flags_of = char_flags()
        counts, lengths = [], []
        for start, stop in texts.slices(1 << 20):
            array = texts.array.slice(start, stop - start)
            cp, char_offsets = codepoints(array, texts.byte_offsets(array))
            flags = flags_of[cp]
            flags |= word_starts((flags & SPACE) != 0, char_offsets).view(np.uint8) << 6
            n = len(array)
            doc = np.repeat(np.arange(n, dtype=np.intp) << 7, np.diff(char_offsets))
            doc |= flags
            table = np.bincount(doc, minlength=n << 7).reshape(n, 128)
            counts.append(table @ _BITS)
            lengths.append(np.diff(char_offsets))
        n_chars = np.concatenate(lengths) if lengths else np.zeros(0, np.int64)
        per_class = np.concatenate(counts) if counts else np.zeros((0, 7))
        texts.mark(n_chars == 0, EMPTY_TEXT)
        values = {key: ratio(per_class[:, bit.bit_length() - 1], n_chars) for key, bit in _FRACTIONS.items()}
        words = per_class[:, 6]
        values["mean_word_len"] = ratio(n_chars - per_class[:, 3], words)
        return to_columns(values, _TYPES, texts)
