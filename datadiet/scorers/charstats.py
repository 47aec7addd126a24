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
    Segments,
    Texts,
    char_flags,
    ratio,
    to_columns,
)
from ._tokens import tokenised
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


def _below(raw: np.ndarray, low: int, size: int) -> np.ndarray:
    """``low <= raw < low + size`` for uint8 ``raw`` (one wrapping subtraction)."""
    return (raw - np.uint8(low)) < size


def _ascii_counts(raw: np.ndarray, space: np.ndarray, offsets: np.ndarray, segments: Segments) -> dict:
    """Per-text counts of the ASCII bytes of each class (bytes >= 0x80 are in none), from
    comparisons, which vectorise far better than a table lookup; agrees with
    :func:`char_flags` on ASCII. Punctuation is printable ASCII (0x21..0x7E) less letters
    and digits; whitespace counts the bytes of ``space`` (multi-byte ones are corrected
    by the caller); non-printable bytes (controls other than tab, newline, CR, and DEL)
    are rare, so they are found among the bytes below 0x20."""
    counts = {
        ALPHA: segments.count(_below(raw | np.uint8(0x20), 0x61, 26)),
        DIGIT: segments.count(_below(raw, 0x30, 10)),
        SPACE: segments.count(space),
    }
    counts[PUNCT] = segments.count(_below(raw, 0x21, 94)) - counts[ALPHA] - counts[DIGIT]
    control = np.flatnonzero(raw < 0x20)
    control = control[~np.isin(raw[control], (0x09, 0x0A, 0x0D))]
    odd = np.concatenate((control, np.flatnonzero(raw == 0x7F)))
    doc = np.searchsorted(offsets, odd, side="right") - 1
    counts[NONPRINT] = np.bincount(doc, minlength=segments.n).astype(np.int64)
    return counts


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
        tokens = tokenised(texts, batch)
        n_chars = tokens.gather("chars")
        counts = {bit: [] for bit in _FRACTIONS.values()}
        for piece in tokens.slices:
            raw, offsets = piece.raw, piece.offsets
            for bit, count in _ascii_counts(raw, piece.space, offsets, piece.segments).items():
                counts[bit].append(count)
            counts[REPLACEMENT].append(np.zeros(piece.n, dtype=np.int64))
            if raw.size and raw.max() >= 0x80:
                lead, flags = _non_ascii_flags(raw)
                doc = np.searchsorted(offsets, lead, side="right") - 1
                for bit in _FRACTIONS.values():
                    if bit != SPACE:
                        counts[bit][-1] += np.bincount(doc[(flags & bit) != 0], minlength=piece.n)
                # a multi-byte space (2 or 3 bytes, lead C2 or E1..E3) counted once, not per byte
                spaces = (flags & SPACE) != 0
                extra = np.where(raw[lead[spaces]] >= 0xE0, 2, 1)
                counts[SPACE][-1] -= np.bincount(doc[spaces], weights=extra, minlength=piece.n).astype(np.int64)
        texts.mark(n_chars == 0, EMPTY_TEXT)
        total = {bit: np.concatenate(parts) if parts else np.zeros(0) for bit, parts in counts.items()}
        values = {key: ratio(total[bit], n_chars) for key, bit in _FRACTIONS.items()}
        values["mean_word_len"] = ratio(n_chars - total[SPACE], tokens.gather("word_counts"))
        return to_columns(values, _TYPES, texts)
