"""Repetition features: Gopher's quality rules (Rae et al. 2021, appendix A)."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..registry import register
from ._text import EMPTY_TEXT, Texts, ratio, raw_bytes, space_bytes, to_columns, word_bounds
from .base import Scorer

_GOPHER_TOP = (2, 3, 4)
_GOPHER_DUP = (5, 6, 7, 8, 9, 10)
_SLICE_BYTES = 1 << 18  # rows are scored a slice of about this much text at a time


def _check_sizes(value) -> str | None:
    if len(set(value)) != len(value) or any(v < 1 for v in value):
        return "must be a list of distinct ints >= 1"
    return None


@register("scorer", "repetition")
class RepetitionScorer(Scorer):
    """Gopher repetition features, float32 in [0, 1]:

    - ``dup_line_frac``: fraction of lines that repeat an earlier line of the document;
      ``dup_line_char_frac``: characters in those lines / characters in the text. Lines are
      split on "\\n" and stripped of whitespace; blank lines are ignored.
    - ``dup_para_frac``, ``dup_para_char_frac``: the same for paragraphs, which are
      separated by blank (empty or whitespace-only) lines.
    - ``top_ngram_char_frac_{n}`` (n in ``top_ngram_sizes``, Gopher: 2..4): characters
      covered by the occurrences of the most frequent word n-gram (ties: the first to
      occur) / characters in all words; 0.0 when no n-gram occurs twice.
    - ``dup_ngram_char_frac_{n}`` (n in ``dup_ngram_sizes``, Gopher: 5..10): characters
      covered by every occurrence of every word n-gram that occurs at least twice, with
      overlapping occurrences counted once / characters in all words.

    Words are whitespace-separated (``str.split()``); n-gram character counts are the
    characters of the covered words (whitespace between words is not counted). A text
    with fewer than n words has 0.0 for that n. Empty text gives nulls with reason
    "empty text". Words, lines and paragraphs are compared through 64-bit hashes of their
    bytes, so a false match needs a 64-bit collision.

    All of a batch is scored at once with numpy (no per-document Python), in slices of
    about 256 KB of text.

    Example::

        RepetitionScorer(dup_ngram_sizes=[5, 10]).score_batch(batch)["dup_ngram_char_frac_5"]
    """

    _constraints: ClassVar[dict] = {"top_ngram_sizes": _check_sizes, "dup_ngram_sizes": _check_sizes}

    def __init__(self, top_ngram_sizes: list[int] | None = None, dup_ngram_sizes: list[int] | None = None):
        self.top_ngram_sizes = top_ngram_sizes
        self.dup_ngram_sizes = dup_ngram_sizes

    def _sizes(self) -> tuple[tuple[int, ...], tuple[int, ...]]:
        top = _GOPHER_TOP if self.top_ngram_sizes is None else tuple(sorted(self.top_ngram_sizes))
        dup = _GOPHER_DUP if self.dup_ngram_sizes is None else tuple(sorted(self.dup_ngram_sizes))
        return top, dup

    def output_columns(self) -> dict[str, pa.DataType]:
        top, dup = self._sizes()
        keys = ["dup_line_frac", "dup_line_char_frac", "dup_para_frac", "dup_para_char_frac"]
        keys += [f"top_ngram_char_frac_{n}" for n in top] + [f"dup_ngram_char_frac_{n}" for n in dup]
        return {key: pa.float32() for key in keys}

    def score_batch(self, batch: pa.RecordBatch) -> dict[str, pa.Array]:
        self.validate_params()
        texts = Texts(batch, "repetition")
        texts.mark(np.diff(texts.byte_offsets()) == 0, EMPTY_TEXT)
        top, dup = self._sizes()
        parts = [
            self._score_slice(texts.array.slice(start, stop - start), top, dup)
            for start, stop in texts.slices(_SLICE_BYTES)
        ]
        types = self.output_columns()
        values = {key: np.concatenate([p[key] for p in parts]) if parts else np.zeros(0) for key in types}
        return to_columns(values, types, texts)

    def _score_slice(self, array: pa.StringArray, top: tuple[int, ...], dup: tuple[int, ...]) -> dict:
        n_docs = len(array)
        offsets = np.frombuffer(array.buffers()[1], dtype=np.int32, count=n_docs + 1, offset=array.offset * 4)
        raw = raw_bytes(array, offsets)
        text = _Bytes(raw, (offsets - offsets[0]).astype(np.int64))
        out = _piece_features(text, pc.utf8_length(array).to_numpy())
        out.update(_ngram_features(text, top, dup))
        return out


class _Bytes:
    """The UTF-8 bytes of a slice of texts with their words, and exact-enough hashes of
    any byte range: a polynomial hash modulo 2**64 with a fixed odd base, so two ranges
    hash equal iff their bytes are equal, up to 64-bit collisions."""

    def __init__(self, raw: np.ndarray, offsets: np.ndarray):
        self.raw, self.offsets, self.n_docs = raw, offsets, offsets.size - 1
        self.space = space_bytes(raw)
        self.starts, self.ends = word_bounds(self.space, offsets)
        powers, self.inverse = _powers(raw.size + 1)
        # Bytes + 1: valid UTF-8 has no 0xFF, and no byte hashes as zero.
        self.prefix = np.zeros(raw.size + 1, dtype=np.uint64)
        np.cumsum(np.multiply(raw + np.uint8(1), powers[: raw.size], dtype=np.uint64), out=self.prefix[1:])
        self.continuation = None
        if raw.size and raw.max() >= 0x80:
            self.continuation = np.flatnonzero((raw & 0xC0) == 0x80)

    def hashes(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return (self.prefix[b] - self.prefix[a]) * self.inverse[a]

    def chars(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Characters in the byte ranges ``[a, b)``."""
        if self.continuation is None:
            return b - a
        inside = np.searchsorted(self.continuation, b) - np.searchsorted(self.continuation, a)
        return (b - a) - inside

    def word_chars(self) -> np.ndarray:
        """Characters in each word (bytes less UTF-8 continuation bytes)."""
        lengths = self.ends - self.starts
        if self.continuation is not None:
            inside = self.continuation[~self.space[self.continuation]]
            word = np.searchsorted(self.starts, inside, side="right") - 1
            lengths = lengths - np.bincount(word, minlength=lengths.size)
        return lengths


_BASE = 0x9E3779B97F4A7C15
_POWERS_CACHE = 1 << 20
_powers_cache: list[np.ndarray] = []


def _power_table(base: int, n: int) -> np.ndarray:
    table = np.empty(n, dtype=np.uint64)
    table[0] = 1
    table[1:] = base
    return np.cumprod(table, out=table)


def _powers(n: int) -> tuple[np.ndarray, np.ndarray]:
    """``base**k`` and ``base**-k`` modulo 2**64 for k < n (tables cached per process)."""
    if _powers_cache and _powers_cache[0].size >= n:
        return _powers_cache[0], _powers_cache[1]
    size = max(n, min(2 * n, _POWERS_CACHE))
    tables = (_power_table(_BASE, size), _power_table(pow(_BASE, -1, 1 << 64), size))
    if size <= _POWERS_CACHE:
        _powers_cache[:] = tables
    return tables


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: a bijection of uint64 that scatters nearby values."""
    x = x ^ (x >> np.uint64(30))
    x *= np.uint64(0xBF58476D1CE4E5B9)
    x ^= x >> np.uint64(27)
    x *= np.uint64(0x94D049BB133111EB)
    x ^= x >> np.uint64(31)
    return x


def _with_doc(hashes: np.ndarray, doc: np.ndarray) -> np.ndarray:
    return _mix(hashes ^ (doc.astype(np.uint64) * np.uint64(_BASE)))


def _later_repeats(key: np.ndarray) -> np.ndarray:
    """True where ``key`` equals the key of an earlier element."""
    repeat = np.zeros(key.size, dtype=bool)
    if key.size > 1:
        order = np.argsort(key)
        sorted_key = key[order]
        run_start = np.flatnonzero(np.r_[True, sorted_key[1:] != sorted_key[:-1]])
        first = np.minimum.reduceat(order, run_start)
        repeat[order] = True
        repeat[first] = False
    return repeat


def _piece_features(text: _Bytes, n_chars: np.ndarray) -> dict:
    """Duplicate lines and paragraphs. A line is the text between newlines; stripped of
    whitespace it runs from its first word's start to its last word's end (none: blank)."""
    n_docs, raw, offsets = text.n_docs, text.raw, text.offsets
    zeros = np.zeros(n_docs)
    out = {f"dup_{kind}_{what}": zeros for kind in ("line", "para") for what in ("frac", "char_frac")}
    if not text.starts.size:
        return out
    segment = np.sort(np.concatenate((offsets[:-1], np.flatnonzero(raw == 10) + 1)))
    segment = segment[(segment < raw.size) & np.r_[True, segment[1:] != segment[:-1]]]
    segment_end = np.append(segment[1:], raw.size)
    seg_doc = np.searchsorted(offsets, segment, side="right") - 1
    first = np.searchsorted(text.starts, segment)
    stop = np.searchsorted(text.starts, segment_end)
    filled = stop > first

    line_start, line_last = first[filled], stop[filled] - 1
    paragraph_start = filled.copy()
    paragraph_start[1:] &= ~filled[:-1] | (seg_doc[1:] != seg_doc[:-1])
    paragraph_end = filled.copy()
    paragraph_end[:-1] &= ~filled[1:] | (seg_doc[1:] != seg_doc[:-1])
    pieces = {
        "line": (line_start, line_last, seg_doc[filled]),
        "para": (first[paragraph_start], stop[paragraph_end] - 1, seg_doc[paragraph_start]),
    }
    for kind, (first_word, last_word, doc) in pieces.items():
        a, b = text.starts[first_word], text.ends[last_word]
        repeat = _later_repeats(_with_doc(text.hashes(a, b), doc))
        count = np.bincount(doc, minlength=n_docs)
        dup_doc = doc[repeat]
        out[f"dup_{kind}_frac"] = ratio(np.bincount(dup_doc, minlength=n_docs), count)
        dup_chars = np.bincount(dup_doc, weights=text.chars(a[repeat], b[repeat]), minlength=n_docs)
        out[f"dup_{kind}_char_frac"] = ratio(dup_chars, n_chars)
    return out


def _repeated(keys: np.ndarray, candidates: np.ndarray, n_words: int):
    """The candidate word positions whose key (int64 >= 0 or uint64) occurs at least twice.

    Returns the positions (sorted), per position an id of its key (the position of one of
    its occurrences, so ids are < n_words) and the key's count, plus a mask of the
    positions and an id per word position (meaningful only under the mask).
    """
    n = keys.size
    shift = n.bit_length()
    if keys.dtype == np.int64 and int(keys.max()) < 1 << (62 - shift):  # sort (key, index) as one int64
        packed = np.sort((keys << shift) | np.arange(n, dtype=np.int64))
        order = packed & ((1 << shift) - 1)
        sorted_keys = packed >> shift
    else:
        order = np.argsort(keys)
        sorted_keys = keys[order]
    change = np.empty(n + 1, dtype=bool)
    change[0] = change[n] = True
    np.not_equal(sorted_keys[1:], sorted_keys[:-1], out=change[1:n])
    run_start = np.flatnonzero(change)
    run_size = np.diff(run_start)
    many = run_size >= 2
    where = candidates[order[np.repeat(many, run_size)]]
    size = run_size[many]
    word_ids = np.empty(n_words + 1, dtype=np.int64)
    word_ids[where] = np.repeat(candidates[order[run_start[:-1][many]]], size)
    word_counts = np.empty(n_words + 1, dtype=np.int64)
    word_counts[where] = np.repeat(size, size)
    mask = np.zeros(n_words + 1, dtype=bool)
    mask[where] = True
    positions = np.flatnonzero(mask)
    return positions, word_ids[positions], word_counts[positions], mask, word_ids


def _covered_chars(starts: np.ndarray, n: int, cum_chars: np.ndarray, word_doc: np.ndarray, n_docs: int):
    """Characters per document covered by the word spans ``[s, s + n)`` (sorted starts,
    spans never cross documents), overlaps counted once."""
    ends = starts + n
    begin = starts.copy()
    np.maximum(begin[1:], ends[:-1], out=begin[1:])
    return np.bincount(word_doc[starts], weights=cum_chars[ends] - cum_chars[begin], minlength=n_docs)


def _ngram_features(text: _Bytes, top: tuple[int, ...], dup: tuple[int, ...]) -> dict:
    n_docs = text.n_docs
    out = {f"top_ngram_char_frac_{n}": np.zeros(n_docs) for n in top}
    out.update({f"dup_ngram_char_frac_{n}": np.zeros(n_docs) for n in dup})
    n_words = text.starts.size
    if not n_words or not (top or dup):
        return out
    word_doc = np.repeat(np.arange(n_docs, dtype=np.int64), np.diff(np.searchsorted(text.starts, text.offsets)))
    word_hash = _with_doc(text.hashes(text.starts, text.ends), word_doc)
    word_len = text.word_chars()
    total_chars = np.bincount(word_doc, weights=word_len, minlength=n_docs)
    cum_chars = np.zeros(n_words + 1)
    np.cumsum(word_len, out=cum_chars[1:])
    same_doc = word_doc[:-1] == word_doc[1:]

    # Level n keeps the n-grams occurring at least twice. An n-gram can occur twice only if
    # both its (n-1)-grams do, so each level looks only at the survivors of the one before.
    # Levels 1 and 2 key on word hashes (salted with the document); later levels on the
    # ids the level before gave its repeated n-grams. Level 1 runs only when asked for.
    sizes = top + dup
    level = 1 if 1 in sizes else 2
    prev_ids = repeated = positions = None
    for n in range(level, max(sizes) + 1):
        if n == 1:
            candidates = np.arange(n_words)
            keys = word_hash
        else:
            if n == 2 and prev_ids is None:
                candidates = np.flatnonzero(same_doc)
            elif n == 2:
                candidates = np.flatnonzero(repeated[: n_words - 1] & repeated[1:n_words] & same_doc)
            else:
                candidates = positions[repeated[positions + 1]]
            if not candidates.size:
                break
            if prev_ids is None:
                keys = _mix(word_hash[candidates]) + word_hash[candidates + 1]
            else:
                keys = prev_ids[candidates] * n_words + prev_ids[candidates + 1]
        positions, ids, counts, repeated, prev_ids = _repeated(keys, candidates, n_words)
        if not positions.size:
            break
        if n in dup:
            covered = _covered_chars(positions, n, cum_chars, word_doc, n_docs)
            out[f"dup_ngram_char_frac_{n}"] = ratio(covered, total_chars)
        if n in top:
            chosen = _top_occurrences(positions, ids, counts, word_doc, n_docs)
            covered = _covered_chars(positions[chosen], n, cum_chars, word_doc, n_docs)
            out[f"top_ngram_char_frac_{n}"] = ratio(covered, total_chars)
    return out


def _top_occurrences(starts, ids, counts, word_doc, n_docs) -> np.ndarray:
    """Mask of the occurrences of each document's most frequent n-gram (ties: first to occur)."""
    doc = word_doc[starts]
    first_of_doc = np.flatnonzero(np.r_[True, doc[1:] != doc[:-1]])
    best = np.zeros(n_docs, dtype=counts.dtype)
    best[doc[first_of_doc]] = np.maximum.reduceat(counts, first_of_doc)
    at_best = np.flatnonzero(counts == best[doc])
    best_doc = doc[at_best]
    first_best = at_best[np.r_[True, best_doc[1:] != best_doc[:-1]]]
    chosen_id = np.full(n_docs, -1, dtype=ids.dtype)
    chosen_id[doc[first_best]] = ids[first_best]
    return ids == chosen_id[doc]
