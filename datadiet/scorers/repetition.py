"""Repetition features: Gopher's quality rules (Rae et al. 2021, appendix A)."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pyarrow as pa

from ..registry import register
from ._runhash import chunk_view, mix, range_hashes
from ._text import EMPTY_TEXT, Texts, ratio, to_columns
from ._tokens import Slice, tokenised
from .base import Scorer

_GOPHER_TOP = (2, 3, 4)
_GOPHER_DUP = (5, 6, 7, 8, 9, 10)


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
    about 256 KB of text, on the whitespace tokenisation the cheap scorers share
    (``_tokens``). Word n-grams of every size come from one pass over the words: each
    size sorts only the n-grams whose two (n-1)-gram halves repeated, as 64-bit keys.

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
        parts = [self._score_slice(piece, top, dup) for piece in tokenised(texts, batch).slices]
        types = self.output_columns()
        values = {key: np.concatenate([p[key] for p in parts]) if parts else np.zeros(0) for key in types}
        return to_columns(values, types, texts)

    def _score_slice(self, piece: Slice, top: tuple[int, ...], dup: tuple[int, ...]) -> dict:
        text = _Bytes(piece)
        out = _piece_features(text, piece.chars)
        out.update(_ngram_features(text, top, dup))
        return out


class _Bytes:
    """The UTF-8 bytes of a slice of texts with their words, and 64-bit hashes of words
    and of any byte range (:func:`range_hashes`): equal bytes hash equal, different
    bytes collide with probability about 2**-64."""

    def __init__(self, piece: Slice):
        raw = piece.raw
        self.raw, self.offsets, self.n_docs = raw, piece.offsets, piece.n
        self.space = piece.space
        self.starts, self.ends = piece.words
        self.continuation = None
        if raw.size and raw.max() >= 0x80:
            self.continuation = np.flatnonzero((raw & 0xC0) == 0x80)
        self.view = chunk_view(raw)
        self.word_hash = range_hashes(self.view, self.starts, self.ends - self.starts)

    def hashes(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return range_hashes(self.view, a, b - a)

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


def _with_doc(hashes: np.ndarray, doc: np.ndarray) -> np.ndarray:
    return mix(hashes ^ (doc.astype(np.uint64) * np.uint64(_BASE)))


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


def _repeated_pieces(text: _Bytes, first_word, last_word, doc) -> np.ndarray:
    """True for the pieces (runs of words ``first_word..last_word`` of ``doc``) that repeat
    an earlier piece of their document. Only pieces whose document, byte length, first and
    last word match another piece's can repeat; just those get a hash of all their bytes."""
    a, b = text.starts[first_word], text.ends[last_word]
    cheap = mix(text.word_hash[first_word] + (b - a).astype(np.uint64) * np.uint64(_BASE))
    cheap = _with_doc(cheap + mix(text.word_hash[last_word]), doc)
    repeat = np.zeros(a.size, dtype=bool)
    candidates = np.flatnonzero(_shared(cheap))
    if candidates.size:
        full = _with_doc(text.hashes(a[candidates], b[candidates]), doc[candidates])
        repeat[candidates] = _later_repeats(full)
    return repeat


def _shared(key: np.ndarray) -> np.ndarray:
    """True where ``key`` occurs more than once."""
    shared = np.zeros(key.size, dtype=bool)
    if key.size > 1:
        order = np.argsort(key)
        sorted_key = key[order]
        same = sorted_key[1:] == sorted_key[:-1]
        shared[order[1:][same]] = True
        shared[order[:-1][same]] = True
    return shared


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
    seg_doc = np.searchsorted(offsets, segment, side="right") - 1
    first = np.searchsorted(text.starts, segment)
    stop = np.append(first[1:], text.starts.size)  # a segment ends where the next one starts
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
        repeat = _repeated_pieces(text, first_word, last_word, doc)
        count = np.bincount(doc, minlength=n_docs)
        dup_doc = doc[repeat]
        out[f"dup_{kind}_frac"] = ratio(np.bincount(dup_doc, minlength=n_docs), count)
        dup_chars = np.bincount(dup_doc, weights=text.chars(a[repeat], b[repeat]), minlength=n_docs)
        out[f"dup_{kind}_char_frac"] = ratio(dup_chars, n_chars)
    return out


def _sort_keys(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``order`` and ``keys[order]`` with equal keys adjacent (int64 >= 0 or uint64 keys).
    (key, index) pairs are sorted as one 64-bit number, with the key's low bits dropped
    for the index when needed; if that merges different keys, a plain argsort is used."""
    n = keys.size
    shift = n.bit_length()
    low = (1 << shift) - 1
    if keys.dtype == np.int64 and int(keys.max()) < 1 << (62 - shift):
        packed = np.sort((keys << shift) | np.arange(n, dtype=np.int64))
        return packed & low, packed >> shift
    if keys.dtype == np.uint64:
        packed = keys & np.uint64(~low & (1 << 64) - 1)
        packed |= np.arange(n, dtype=np.uint64)
        packed.sort()
        order = (packed & np.uint64(low)).view(np.int64)
        sorted_keys = keys[order]
        packed >>= np.uint64(shift)  # the key bits that were sorted on
        if not np.any((packed[1:] == packed[:-1]) & (sorted_keys[1:] != sorted_keys[:-1])):
            return order, sorted_keys
        del order, sorted_keys, packed
    order = np.argsort(keys)
    return order, keys[order]


def _repeated(keys: np.ndarray, candidates: np.ndarray, with_counts: bool):
    """The candidate word positions (sorted) whose key (int64 >= 0 or uint64) occurs at
    least twice, per position an id of its key (< the number of candidates) and, when
    asked, the key's count (else None). Work past the sort is on the repeated keys only."""
    n = keys.size
    order, sorted_keys = _sort_keys(keys)
    same = sorted_keys[1:] == sorted_keys[:-1]
    del sorted_keys  # arrays are freed as soon as done: long documents have millions of words
    many = np.zeros(n, dtype=bool)
    many[1:] = same
    many[:-1] |= same
    chosen = np.flatnonzero(many)  # sorted indices of keys that occur twice or more
    del many
    run_start = np.ones(chosen.size, dtype=bool)
    run_start[1:] = ~same[chosen[1:] - 1]
    ids = np.maximum.accumulate(np.where(run_start, chosen, 0))  # sorted index of each run's first key
    positions = candidates[order[chosen]]
    del order, same, chosen
    shift = int(n).bit_length()
    if positions.size and int(positions.max()) < 1 << (62 - shift):  # sort (position, id) as one int64
        packed = np.sort((positions << shift) | ids)
        positions, ids = packed >> shift, packed & ((1 << shift) - 1)
    else:
        by_position = np.argsort(positions)
        positions, ids = positions[by_position], ids[by_position]
    counts = np.bincount(ids, minlength=n)[ids] if with_counts else None
    return positions, ids, counts


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
    plain_hash, text.word_hash = text.word_hash, None  # pieces are done with it
    word_hash = _with_doc(plain_hash, word_doc)
    word_len = text.word_chars()
    total_chars = np.bincount(word_doc, weights=word_len, minlength=n_docs)
    cum_chars = np.zeros(n_words + 1, dtype=np.int64)
    np.cumsum(word_len, out=cum_chars[1:])
    del word_len
    same_doc = word_doc[:-1] == word_doc[1:]

    # Level n keeps the n-grams occurring at least twice. An n-gram can occur twice only if
    # both its (n-1)-grams do, so each level looks only at the survivors of the one before:
    # positions p and p + 1 both kept (p + 1 is then p's successor in the sorted positions).
    # Levels 1 and 2 key on word hashes (salted with the document); later levels key on the
    # ids the level before gave its repeated n-grams. Level 1 runs only when asked for.
    sizes = top + dup
    level = 1 if 1 in sizes else 2
    positions = ids = None
    for n in range(level, max(sizes) + 1):
        if n == 1:
            candidates, keys = np.arange(n_words), word_hash
        elif positions is None:
            candidates = np.flatnonzero(same_doc)
            keys = word_hash[candidates] + plain_hash[candidates + 1]  # salted first word, second plain
            plain_hash = None
        else:
            follow = np.flatnonzero(positions[1:] == positions[:-1] + 1)
            if n == 2:
                follow = follow[same_doc[positions[follow]]]
            candidates = positions[follow]
            keys = ids[follow] * n_words + ids[follow + 1]
        if not candidates.size:
            break
        positions, ids, counts = _repeated(keys, candidates, n in top)
        del keys, candidates
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
