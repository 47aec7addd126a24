"""Repetition features: Gopher's quality rules (Rae et al. 2021, appendix A)."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..registry import register
from ._text import EMPTY_TEXT, WHITESPACE, Texts, ratio, to_columns
from .base import Scorer

_GOPHER_TOP = (2, 3, 4)
_GOPHER_DUP = (5, 6, 7, 8, 9, 10)
_BLANK_LINE = "\\n[" + "".join(f"\\x{{{ord(c):x}}}" for c in WHITESPACE) + "]*\\n"
_SLICE_BYTES = 1 << 18  # keeps the per-slice hash tables in cache


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
    "empty text".

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
        n = len(array)
        n_chars = pc.utf8_length(array).to_numpy()
        out = {}
        for name, pieces in (
            ("line", pc.split_pattern(array, "\n")),
            ("para", pc.split_pattern_regex(array, _BLANK_LINE)),
        ):
            count, dup_count, dup_chars = _duplicate_pieces(pieces, n)
            out[f"dup_{name}_frac"] = ratio(dup_count, count)
            out[f"dup_{name}_char_frac"] = ratio(dup_chars, n_chars)
        out.update(_ngram_features(array, top, dup))
        return out


def _duplicate_pieces(pieces: pa.ListArray, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per document: non-blank pieces, pieces equal to an earlier one, and their characters."""
    flat = pc.utf8_trim(pieces.flatten(), WHITESPACE)
    lengths = pc.utf8_length(flat).to_numpy()
    doc = np.repeat(np.arange(n, dtype=np.int64), pc.list_value_length(pieces).to_numpy())
    ids = pc.dictionary_encode(flat).indices.to_numpy()
    keep = lengths > 0
    doc, ids, lengths = doc[keep], ids[keep].astype(np.int64), lengths[keep]
    count = np.bincount(doc, minlength=n)
    if not doc.size:
        return count, np.zeros(n), np.zeros(n)
    key = doc * (int(ids.max()) + 1) + ids
    order = np.argsort(key, kind="stable")
    ordered = key[order]
    repeat = order[1:][ordered[1:] == ordered[:-1]]
    return count, np.bincount(doc[repeat], minlength=n), np.bincount(doc[repeat], weights=lengths[repeat], minlength=n)


def _dense(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Dense ids for equal keys and, per position, how often its key occurs."""
    ids = pc.dictionary_encode(pa.array(keys)).indices.to_numpy()
    return ids, np.bincount(ids)[ids]


def _covered_chars(starts: np.ndarray, n: int, cum_chars: np.ndarray, word_doc: np.ndarray, n_docs: int):
    """Characters per document covered by the word spans ``[s, s + n)`` (sorted starts,
    spans never cross documents), overlaps counted once."""
    ends = starts + n
    begin = starts.copy()
    np.maximum(begin[1:], ends[:-1], out=begin[1:])
    return np.bincount(word_doc[starts], weights=cum_chars[ends] - cum_chars[begin], minlength=n_docs)


def _ngram_features(array: pa.StringArray, top: tuple[int, ...], dup: tuple[int, ...]) -> dict:
    n_docs = len(array)
    out = {f"top_ngram_char_frac_{n}": np.zeros(n_docs) for n in top}
    out.update({f"dup_ngram_char_frac_{n}": np.zeros(n_docs) for n in dup})
    if not top and not dup:
        return out
    lists = pc.utf8_split_whitespace(array)
    words = lists.flatten()
    word_len = pc.utf8_length(words).to_numpy()
    word_doc = np.repeat(np.arange(n_docs, dtype=np.int64), pc.list_value_length(lists).to_numpy())
    word_id = pc.dictionary_encode(words).indices.to_numpy()
    keep = word_len > 0  # utf8_split_whitespace yields "" around leading/trailing whitespace
    word_len, word_doc, word_id = word_len[keep], word_doc[keep], word_id[keep].astype(np.int64)
    n_words = word_id.size
    if not n_words:
        return out
    total_chars = np.bincount(word_doc, weights=word_len, minlength=n_docs)
    cum_chars = np.zeros(n_words + 1)
    np.cumsum(word_len, out=cum_chars[1:])

    # Level n keeps only n-grams occurring at least twice. An n-gram can occur twice only
    # if both its (n-1)-grams do, so each level looks only at the survivors of the last.
    ids, counts = _dense(word_doc * (int(word_id.max()) + 1) + word_id)
    starts = np.arange(n_words)
    for n in range(1, max(top + dup) + 1):
        if n > 1:
            if n == 2:
                both = repeated[: n_words - 1] & repeated[1:n_words] & (word_doc[:-1] == word_doc[1:])
                candidates = np.flatnonzero(both)
            else:
                candidates = starts[repeated[starts + 1]]
            if not candidates.size:
                break
            ids, counts = _dense(prev_ids[candidates] * n_ids + prev_ids[candidates + 1])
            starts = candidates
        twice = counts >= 2
        starts, ids, counts = starts[twice], ids[twice], counts[twice]
        if not starts.size:
            break
        if n in dup:
            covered = _covered_chars(starts, n, cum_chars, word_doc, n_docs)
            out[f"dup_ngram_char_frac_{n}"] = ratio(covered, total_chars)
        if n in top:
            chosen = _top_occurrences(starts, ids, counts, word_doc, n_docs)
            covered = _covered_chars(starts[chosen], n, cum_chars, word_doc, n_docs)
            out[f"top_ngram_char_frac_{n}"] = ratio(covered, total_chars)
        n_ids = int(ids.max()) + 1
        prev_ids = np.empty(n_words, dtype=np.int64)
        prev_ids[starts] = ids
        repeated = np.zeros(n_words + 1, dtype=bool)
        repeated[starts] = True
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
