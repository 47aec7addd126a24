"""Shared vectorised text helpers for the cheap heuristic scorers.

Definitions shared by every heuristic scorer:

- *whitespace* is exactly the set of characters for which Python's ``str.isspace()`` is true
  (:data:`WHITESPACE`);
- a *word* is a maximal run of non-whitespace characters (``str.split()`` with no argument);
- lengths are counted in Unicode code points unless a name says bytes.

The scorers work on the UTF-8 bytes of a whole batch at once (numpy over the Arrow data
buffer), a slice of rows at a time so the working set stays in cache. Texts are validated
as UTF-8 first, so byte-level rules (e.g. "a byte >= 0xC0 starts a multi-byte character")
hold.
"""

from __future__ import annotations

import functools
import unicodedata
from collections.abc import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import ConfigError, MissingColumnError

#: The 29 code points Python's ``str.isspace()`` accepts.
WHITESPACE = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680"
    + "".join(chr(c) for c in range(0x2000, 0x200B))
    + "\u2028\u2029\u202f\u205f\u3000"
)

# Bits of the per-code-point class table.
ALPHA, DIGIT, PUNCT, SPACE, NONPRINT, REPLACEMENT = 1, 2, 4, 8, 16, 32

MISSING_TEXT = "missing text"
INVALID_UTF8 = "invalid UTF-8"
EMPTY_TEXT = "empty text"


@functools.cache
def char_flags() -> np.ndarray:
    """A uint8 bitmask per code point (0..0x10FFFF), from Python's ``unicodedata``:
    ALPHA (``str.isalpha``: categories L*), DIGIT (``str.isdecimal``: Nd), PUNCT
    (punctuation or symbol: P* or S*), SPACE (``str.isspace``), NONPRINT (categories C*
    except tab, newline and carriage return) and REPLACEMENT (U+FFFD)."""
    cats = "".join(map(unicodedata.category, map(chr, range(0x110000)))).encode("ascii")
    pairs = np.frombuffer(cats, dtype=np.uint8).reshape(-1, 2)
    major, minor = pairs[:, 0], pairs[:, 1]
    flags = np.zeros(0x110000, dtype=np.uint8)
    flags[major == ord("L")] |= ALPHA
    flags[(major == ord("N")) & (minor == ord("d"))] |= DIGIT
    flags[(major == ord("P")) | (major == ord("S"))] |= PUNCT
    flags[[ord(c) for c in WHITESPACE]] |= SPACE
    nonprint = major == ord("C")
    nonprint[[9, 10, 13]] = False
    flags[nonprint] |= NONPRINT
    flags[0xFFFD] |= REPLACEMENT
    return flags


@functools.cache
def space_table() -> np.ndarray:
    """A bool per code point: True for :data:`WHITESPACE`."""
    table = np.zeros(0x110000, dtype=bool)
    table[[ord(c) for c in WHITESPACE]] = True
    return table


class Texts:
    """The text column of a scoring-view batch, ready for vectorised work.

    ``array`` is a ``pa.string()`` array without nulls: missing texts and texts that are
    not valid UTF-8 are replaced by ``""`` and get a reason in ``reasons`` (an object
    array, None where the row is scorable).
    """

    def __init__(self, batch: pa.RecordBatch, scorer: str, check_utf8: bool = True):
        if "text" not in batch.schema.names:
            raise MissingColumnError(
                f"scorer {scorer!r} needs a 'text' column; the batch has: {', '.join(batch.schema.names)}"
            )
        array = batch.column("text")
        if isinstance(array, pa.ChunkedArray):
            array = array.combine_chunks()
        if not (pa.types.is_string(array.type) or pa.types.is_large_string(array.type)
                or pa.types.is_string_view(array.type)):
            raise ConfigError(f"scorer {scorer!r}: column 'text' must be a string column, found {array.type}")
        if not pa.types.is_string(array.type):
            array = array.cast(pa.string())
        self.n = len(array)
        self.reasons = np.full(self.n, None, dtype=object)
        if array.null_count:
            self.reasons[~np.asarray(array.is_valid())] = MISSING_TEXT
            array = pc.fill_null(array, "")
        if check_utf8:
            array = self._drop_invalid_utf8(array)
        self.array = array

    def _drop_invalid_utf8(self, array: pa.StringArray) -> pa.StringArray:
        try:
            array.validate(full=True)
            return array
        except pa.ArrowInvalid:
            pass
        values = []
        for i, item in enumerate(pa.array(array, pa.binary()).to_pylist()):
            try:
                values.append(item.decode("utf-8"))
            except UnicodeDecodeError:
                values.append("")
                self.reasons[i] = INVALID_UTF8
        return pa.array(values, pa.string())

    def mark(self, mask: np.ndarray, reason: str) -> None:
        """Give ``reason`` to rows in ``mask`` that do not have one yet."""
        self.reasons[mask & (self.reasons == None)] = reason  # noqa: E711 (elementwise)

    def null_mask(self) -> np.ndarray:
        return self.reasons != None  # noqa: E711 (elementwise)

    def byte_offsets(self, array: pa.StringArray | None = None) -> np.ndarray:
        array = self.array if array is None else array
        return np.frombuffer(array.buffers()[1], dtype=np.int32, count=len(array) + 1, offset=array.offset * 4)

    def slices(self, target_bytes: int) -> Iterator[tuple[int, int]]:
        """Row ranges of about ``target_bytes`` of text each (at least one row each)."""
        offsets = self.byte_offsets()
        start = 0
        while start < self.n:
            stop = int(np.searchsorted(offsets, offsets[start] + target_bytes, side="right")) - 1
            stop = min(max(stop, start + 1), self.n)
            yield start, stop
            start = stop


def raw_bytes(array: pa.StringArray, offsets: np.ndarray) -> np.ndarray:
    """The UTF-8 bytes of all texts of ``array`` concatenated (``offsets`` from
    :meth:`Texts.byte_offsets`)."""
    data = array.buffers()[2]
    if data is None:
        return np.zeros(0, dtype=np.uint8)
    return np.frombuffer(data, dtype=np.uint8)[offsets[0] : offsets[-1]]


def space_bytes(raw: np.ndarray) -> np.ndarray:
    """True for every byte of a :data:`WHITESPACE` character in valid UTF-8 ``raw``."""
    # ASCII whitespace is 9..13 and 28..32; comparisons vectorise better than a lookup.
    space = (raw - np.uint8(9)) < 5
    space |= (raw - np.uint8(28)) < 5
    if raw.size and raw.max() >= 0x80:
        # Multi-byte whitespace (U+0085, U+00A0, U+1680, U+2000..U+3000) starts C2 or E1..E3.
        lead = np.flatnonzero((raw == 0xC2) | ((raw - np.uint8(0xE1)) < 3))
        if lead.size:
            b0, b1, b2 = (raw[np.minimum(lead + k, raw.size - 1)].astype(np.int64) for k in range(3))
            three = b0 >= 0xE0
            cp = np.where(three, ((b0 & 0x0F) << 12) | ((b1 & 0x3F) << 6) | (b2 & 0x3F), ((b0 & 0x1F) << 6) | (b1 & 0x3F))
            hit = space_table()[cp]
            lead, three = lead[hit], three[hit]
            space[lead] = True
            space[lead + 1] = True
            space[lead[three] + 2] = True
    return space


def word_starts(space: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """True where a word (maximal run of non-space units) starts; ``offsets`` are the
    texts' boundaries in the units of ``space`` (a word never spans two texts)."""
    start = ~space
    start[1:] &= space[:-1]
    first = offsets[:-1]
    first = first[first < space.size]
    start[first] = ~space[first]
    return start


def word_bounds(space: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and end (exclusive) positions of every word, as with :func:`word_starts`."""
    end = ~space
    end[:-1] &= space[1:]
    last = offsets[1:] - 1
    last = last[last >= 0]
    end[last] = ~space[last]
    return np.flatnonzero(word_starts(space, offsets)), np.flatnonzero(end) + 1


class Segments:
    """Counts of True values per text, for masks over the concatenated texts.

    ``np.add.reduceat`` into uint16 is the fastest per-segment count numpy has, so texts
    longer than 65,535 units are cut into sub-segments whose counts are added back.
    """

    _PIECE = 1 << 15

    def __init__(self, offsets: np.ndarray):
        self.n = offsets.size - 1
        lengths = np.diff(offsets)
        self.docs = np.flatnonzero(lengths > 0)
        self.starts = offsets[:-1][self.docs]
        long_docs = np.flatnonzero(lengths > 0xFFFF)
        self.split = bool(long_docs.size)
        if self.split:
            pieces = [np.arange(offsets[i] + self._PIECE, offsets[i + 1], self._PIECE) for i in long_docs]
            starts = np.concatenate([self.starts, *pieces])
            docs = np.concatenate([self.docs, *(np.full(p.size, i) for i, p in zip(long_docs, pieces))])
            order = np.argsort(starts, kind="stable")
            self.starts, self.docs = starts[order], docs[order]

    def count(self, mask: np.ndarray) -> np.ndarray:
        out = np.zeros(self.n, dtype=np.int64)
        if self.starts.size:
            sums = np.add.reduceat(mask.view(np.uint8), self.starts, dtype=np.uint16)
            if self.split:
                out += np.bincount(self.docs, weights=sums, minlength=self.n).astype(np.int64)
            else:
                out[self.docs] = sums
        return out


def ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """``numerator / denominator`` in float64, 0.0 where the denominator is 0."""
    num = np.asarray(numerator, dtype=np.float64)
    den = np.asarray(denominator, dtype=np.float64)
    out = np.zeros(num.shape, dtype=np.float64)
    np.divide(num, den, out=out, where=den != 0)
    return out


def to_columns(values: dict[str, np.ndarray], types: dict[str, pa.DataType], texts: Texts) -> dict[str, pa.Array]:
    """Arrow columns with nulls where ``texts`` has a reason, plus ``null_reason``."""
    mask = texts.null_mask()
    any_null = bool(mask.any())
    out = {}
    for key, dtype in types.items():
        column = np.asarray(values[key], dtype=dtype.to_pandas_dtype())
        out[key] = pa.array(column, type=dtype, mask=mask if any_null else None)
    out["null_reason"] = pa.array(texts.reasons, type=pa.string()) if any_null else pa.nulls(texts.n, pa.string())
    return out
