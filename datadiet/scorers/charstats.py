"""Character-class statistics: how much of a document is letters, digits, punctuation, space, junk."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..registry import register
from ._text import (
    ALPHA,
    DIGIT,
    EMPTY_TEXT,
    NONPRINT,
    PUNCT,
    REPLACEMENT,
    SPACE,
    Segments,
    Texts,
    char_flags,
    ratio,
    raw_bytes,
    space_bytes,
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
_SLICE_BYTES = 1 << 20  # rows are scored a slice of about this much text at a time
_TYPES = {key: pa.float32() for key in [*_FRACTIONS, "mean_word_len"]}


def _below(raw: np.ndarray, low: int, size: int) -> np.ndarray:
    """``low <= raw < low + size`` for uint8 ``raw`` (one wrapping subtraction)."""
    return (raw - np.uint8(low)) < size


def _ascii_classes(raw: np.ndarray) -> dict[int, np.ndarray]:
    """Class masks of the ASCII bytes (bytes >= 0x80 are in none), by comparisons, which
    vectorise far better than a table lookup. Agrees with :func:`char_flags` on ASCII."""
    return {
        ALPHA: _below(raw | np.uint8(0x20), 0x61, 26),
        DIGIT: _below(raw, 0x30, 10),
        PUNCT: _below(raw, 0x21, 15) | _below(raw, 0x3A, 7) | _below(raw, 0x5B, 6) | _below(raw, 0x7B, 4),
        SPACE: _below(raw, 0x09, 5) | _below(raw, 0x1C, 5),
        NONPRINT: (_below(raw, 0x00, 32) & ~(_below(raw, 0x09, 2) | (raw == 0x0D))) | (raw == 0x7F),
    }


def _non_ascii_flags(raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positions of the lead bytes of multi-byte characters and their class flags."""
    lead = np.flatnonzero(raw >= 0xC0)
    b0, b1, b2, b3 = (raw[np.minimum(lead + k, raw.size - 1)].astype(np.int64) for k in range(4))
    b1, b2, b3 = b1 & 0x3F, b2 & 0x3F, b3 & 0x3F
    cp = np.where(
        b0 < 0xE0,
        ((b0 & 0x1F) << 6) | b1,
        np.where(b0 < 0xF0, ((b0 & 0x0F) << 12) | (b1 << 6) | b2, ((b0 & 0x07) << 18) | (b1 << 12) | (b2 << 6) | b3),
    )
    return lead, char_flags()[cp]


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
        n_chars = pc.utf8_length(texts.array).to_numpy().astype(np.int64)
        counts = {bit: [] for bit in _FRACTIONS.values()}
        words = []
        for start, stop in texts.slices(_SLICE_BYTES):
            array = texts.array.slice(start, stop - start)
            offsets = texts.byte_offsets(array)
            raw = raw_bytes(array, offsets)
            offsets = (offsets - offsets[0]).astype(np.int64)
            segments = Segments(offsets)
            for bit, mask in _ascii_classes(raw).items():
                counts[bit].append(segments.count(mask))
            counts[REPLACEMENT].append(np.zeros(len(array), dtype=np.int64))
            if raw.size and raw.max() >= 0x80:
                lead, flags = _non_ascii_flags(raw)
                doc = np.searchsorted(offsets, lead, side="right") - 1
                for bit in _FRACTIONS.values():
                    counts[bit][-1] += np.bincount(doc[(flags & bit) != 0], minlength=len(array))
            words.append(segments.count(word_starts(space_bytes(raw), offsets)))
        texts.mark(n_chars == 0, EMPTY_TEXT)
        total = {bit: np.concatenate(parts) if parts else np.zeros(0) for bit, parts in counts.items()}
        values = {key: ratio(total[bit], n_chars) for key, bit in _FRACTIONS.items()}
        word_count = np.concatenate(words) if words else np.zeros(0)
        values["mean_word_len"] = ratio(n_chars - total[SPACE], word_count)
        return to_columns(values, _TYPES, texts)
