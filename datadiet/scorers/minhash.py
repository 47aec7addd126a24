"""MinHash signatures and LSH band keys, the input of the ``near_dedup`` selector.

A batch is shingled and hashed at once with numpy: texts are lower-cased, words are runs of
bytes that are neither whitespace nor ASCII punctuation, and a shingle (``shingle_size``
words, or characters of the words joined by single spaces) is hashed by a 64-bit polynomial
hash of its bytes mixed by splitmix64. Each of the ``num_perm`` permutations is the
universal hash ``(a * x + b) mod (2**61 - 1)`` of the shingle hash's top 32 bits, evaluated
exactly in uint64 arithmetic for every shingle of the batch at once, and the signature is
its minimum per document. The sorted distinct shingle hashes of each document are kept too,
so ``near_dedup`` can verify candidate pairs by their exact Jaccard similarity.
"""

from __future__ import annotations

import functools
from typing import ClassVar, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import ConfigError
from ..params import Interval
from ..registry import register
from ._text import EMPTY_TEXT, Texts, raw_bytes, space_bytes, word_bounds
from .base import Scorer

PRIME = (1 << 61) - 1
_P = np.uint64(PRIME)
_LOW29 = np.uint64((1 << 29) - 1)
_LOW32 = np.uint64(0xFFFFFFFF)
_BASE = np.uint64(0x100000001B3)
_SLICE_BYTES = 1 << 18
_BLOCK_VALUES = 1 << 15  # shingles x permutations evaluated at a time (256 KB of uint64: L2-resident)
_PUNCT = np.zeros(256, dtype=bool)
_PUNCT[[ord(c) for c in "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"]] = True


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser (a bijection of uint64)."""
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x ^= x >> np.uint64(27)
    x *= np.uint64(0x94D049BB133111EB)
    x ^= x >> np.uint64(31)
    return x


@functools.lru_cache(maxsize=2)
def _pow_tables(n: int) -> tuple[np.ndarray, np.ndarray]:
    def table(base: int) -> np.ndarray:
        t = np.full(n, base, dtype=np.uint64)
        t[0] = 1
        return np.cumprod(t, out=t)

    return table(int(_BASE)), table(pow(int(_BASE), -1, 1 << 64))


def range_hashes(raw: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """64-bit hashes of the byte ranges ``raw[a:b]``: equal bytes give equal hashes
    (a polynomial hash modulo 2**64 through prefix sums), then mixed."""
    size = 1 << max(10, int(raw.size).bit_length())
    powers, inverse = _pow_tables(size)
    prefix = np.zeros(raw.size + 1, dtype=np.uint64)
    np.cumsum(np.multiply(raw + np.uint8(1), powers[: raw.size], dtype=np.uint64), out=prefix[1:])
    return _mix((prefix[b] - prefix[a]) * inverse[a] + (b - a).astype(np.uint64))


def affine_mod_prime(x: np.ndarray, a: np.ndarray, b: np.ndarray, out: np.ndarray | None = None,
                     scratch: tuple[np.ndarray, np.ndarray] | None = None, canonical: bool = True) -> np.ndarray:
    """``(a * x + b) mod (2**61 - 1)`` exactly for x < 2**32 and a, b < 2**61 (broadcast
    against each other), in place in ``out`` when given (with two ``scratch`` arrays of its shape);
    with ``canonical=False`` a congruent value in [0, 2**61 + 1] (see :func:`canonical_mod_prime`).

    With a = a_hi 2**32 + a_lo: a_lo x fits 64 bits, and a_hi x = u < 2**61 times 2**32 is
    congruent to (u >> 29) + (u mod 2**29) 2**32, as 2**61 = 1 modulo the prime."""
    shape = np.broadcast_shapes(x.shape, a.shape)
    out = np.empty(shape, np.uint64) if out is None else out
    u, tmp = scratch if scratch is not None else (np.empty(shape, np.uint64), np.empty(shape, np.uint64))
    np.multiply(x, a & _LOW32, out=out)
    np.multiply(x, a >> np.uint64(32), out=u)
    np.right_shift(out, np.uint64(61), out=tmp)
    out &= _P
    out += tmp
    np.right_shift(u, np.uint64(29), out=tmp)
    out += tmp
    u &= _LOW29
    u <<= np.uint64(32)
    out += u
    out += b
    np.right_shift(out, np.uint64(61), out=tmp)
    out &= _P
    out += tmp
    return canonical_mod_prime(out, u) if canonical else out


def canonical_mod_prime(values: np.ndarray, scratch: np.ndarray | None = None) -> np.ndarray:
    """Values in [0, 2**61 + 1] reduced to [0, 2**61 - 1) in place."""
    u = np.empty(values.shape, np.uint64) if scratch is None else scratch
    np.greater_equal(values, _P, out=u)  # u as 0/1
    u *= _P
    values -= u
    return values


def _check_parity(scorer) -> None:
    if scorer.num_perm % scorer.bands:
        raise ConfigError(f"The 'bands' parameter of {type(scorer).__name__} must divide 'num_perm' "
                          f"({scorer.num_perm}) into equal rows per band. Got {scorer.bands!r} instead.")


@register("scorer", "minhash")
class MinHashScorer(Scorer):
    """MinHash signature (``signature``: ``num_perm`` uint32, the low 32 bits of each
    permutation's minimum), LSH band keys (``bands``: one uint64 per band, a hash of
    ``num_perm / bands`` consecutive minima) and the set itself (``shingles``: the sorted
    distinct 64-bit shingle hashes) of each text's shingles.

    ``shingle="word"``: ``shingle_size`` consecutive words; ``"char"``: ``shingle_size``
    consecutive characters of the words joined by single spaces. A text shorter than one
    shingle is one shingle; a text without words gets nulls with reason "empty text".
    Permutations are drawn from ``seed``. With b bands of r rows, two texts of Jaccard
    similarity s share a band key with probability 1 - (1 - s**r)**b.

    Example::

        MinHashScorer(shingle_size=5, num_perm=128, bands=16).score_batch(batch)["bands"]
    """

    version: ClassVar[str] = "2"  # 2: the shingle sets
    _constraints: ClassVar[dict] = {
        "shingle_size": Interval(int, 1, None),
        "num_perm": Interval(int, 1, 4096),
        "bands": Interval(int, 1, None),
    }

    def __init__(self, shingle: Literal["word", "char"] = "word", shingle_size: int = 5, num_perm: int = 128,
                 bands: int = 16, seed: int = 0):
        self.shingle = shingle
        self.shingle_size = shingle_size
        self.num_perm = num_perm
        self.bands = bands
        self.seed = seed

    def validate_params(self, where: str = "") -> None:
        super().validate_params(where)
        try:
            _check_parity(self)
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}" if where else str(exc)) from None

    def output_columns(self) -> dict[str, pa.DataType]:
        return {"signature": pa.list_(pa.uint32(), self.num_perm), "bands": pa.list_(pa.uint64(), self.bands),
                "shingles": pa.list_(pa.uint64())}

    def flops_per_token(self) -> float:
        return 20.0 * self.num_perm

    def permutations(self) -> tuple[np.ndarray, np.ndarray]:
        """The (a, b) of every permutation, a in [1, p), b in [0, p)."""
        rng = np.random.default_rng([self.seed, 0x6D696E68])
        return (rng.integers(1, PRIME, self.num_perm, dtype=np.uint64),
                rng.integers(0, PRIME, self.num_perm, dtype=np.uint64))

    def score_batch(self, batch: pa.RecordBatch) -> dict[str, pa.Array]:
        self.validate_params()
        texts = Texts(batch, "minhash")
        lowered = pc.utf8_lower(texts.array)
        a, b = self.permutations()
        minima = np.full((texts.n, self.num_perm), _P, dtype=np.uint64)
        sets, counts = [], np.zeros(texts.n, dtype=np.int64)
        for start, stop in texts.slices(_SLICE_BYTES):
            hashes, doc = self._shingles(lowered.slice(start, stop - start))
            sets.append(_distinct(hashes, doc, counts[start:stop]))
            doc = np.repeat(np.arange(stop - start), counts[start:stop])
            _minimum_into(minima[start:stop], sets[-1] >> np.uint64(32), doc, a, b)
        empty = counts == 0
        texts.mark(empty, EMPTY_TEXT)
        null = texts.null_mask()
        r = self.num_perm // self.bands
        band_keys = np.empty((texts.n, self.bands), dtype=np.uint64)
        for j in range(self.bands):
            h = np.full(texts.n, (self.seed * 0x9E3779B97F4A7C15 + j + 1) & ((1 << 64) - 1), dtype=np.uint64)
            for t in range(j * r, (j + 1) * r):
                h = _mix(h ^ minima[:, t])
            band_keys[:, j] = h
        signature = (minima & _LOW32).astype(np.uint32)
        mask = pa.array(null) if null.any() else None
        offsets = pa.array(np.concatenate([[0], np.cumsum(counts)]).astype(np.int32))
        values = pa.array(np.concatenate(sets) if sets else np.zeros(0, np.uint64), pa.uint64())
        return {
            "signature": pa.FixedSizeListArray.from_arrays(pa.array(signature.ravel()), self.num_perm, mask=mask),
            "bands": pa.FixedSizeListArray.from_arrays(pa.array(band_keys.ravel()), self.bands, mask=mask),
            "shingles": pa.ListArray.from_arrays(offsets, values, mask=mask),
            "null_reason": pa.array(texts.reasons, pa.string()),
        }

    def _shingles(self, array: pa.StringArray) -> tuple[np.ndarray, np.ndarray]:
        """Hashes of every shingle of a slice of lower-cased texts, and each one's text."""
        n_docs = len(array)
        offsets = np.frombuffer(array.buffers()[1], dtype=np.int32, count=n_docs + 1, offset=array.offset * 4)
        raw = raw_bytes(array, offsets)
        offsets = (offsets - offsets[0]).astype(np.int64)
        sep = space_bytes(raw) | _PUNCT[raw]
        starts, ends = word_bounds(sep, offsets)
        word_doc = np.searchsorted(offsets, starts, side="right") - 1
        if self.shingle == "char":
            return self._char_shingles(raw, starts, ends, word_doc, n_docs)
        return _ngram_spans(range_hashes(raw, starts, ends), word_doc, self.shingle_size, n_docs)

    def _char_shingles(self, raw, starts, ends, word_doc, n_docs):
        """Shingles of ``shingle_size`` characters over each text's words joined by spaces."""
        lengths = ends - starts
        last = np.ones(len(starts), dtype=bool)
        last[:-1] = word_doc[1:] != word_doc[:-1]
        out_len = lengths + ~last  # every word but a text's last one is followed by a space
        out_start = np.cumsum(out_len) - out_len
        before = np.cumsum(lengths) - lengths
        inside = np.arange(int(lengths.sum())) - np.repeat(before, lengths)
        joined = np.full(int(out_len.sum()), ord(" "), dtype=np.uint8)
        joined[np.repeat(out_start, lengths) + inside] = raw[np.repeat(starts, lengths) + inside]
        chars = np.flatnonzero((joined & 0xC0) != 0x80)
        char_doc = word_doc[np.searchsorted(out_start, chars, side="right") - 1]
        doc_end = np.zeros(n_docs, dtype=np.int64)
        np.maximum.at(doc_end, word_doc, out_start + out_len)
        char_end = np.empty(chars.size, dtype=np.int64)
        char_end[:-1] = chars[1:]
        split = np.ones(chars.size, dtype=bool)
        split[:-1] = char_doc[1:] != char_doc[:-1]
        char_end[split] = doc_end[char_doc[split]]
        first, stop = _windows(char_doc, self.shingle_size, n_docs)
        return range_hashes(joined, chars[first], char_end[stop]), char_doc[first]


def sort_by_row(values: np.ndarray, row: np.ndarray, n_rows: int) -> np.ndarray:
    """The order of uint64 ``values`` by (row, value), exactly: one argsort of a key with
    the row in its top bits and the value's top bits below, then the rare runs of equal
    keys holding different values sorted by value."""
    bits = max(1, int(n_rows - 1).bit_length())
    key = (row.astype(np.uint64) << np.uint64(64 - bits)) | (values >> np.uint64(bits))
    order = np.argsort(key)
    key, v = key[order], values[order]
    tie = np.flatnonzero((key[1:] == key[:-1]) & (v[1:] != v[:-1]))
    if len(tie):
        starts = np.flatnonzero(np.concatenate([[True], key[1:] != key[:-1]]))
        ends = np.append(starts[1:], len(key))
        for run in np.unique(np.searchsorted(starts, tie, side="right") - 1).tolist():
            lo, hi = starts[run], ends[run]
            order[lo:hi] = order[lo:hi][np.argsort(v[lo:hi], kind="stable")]
    return order


def _distinct(hashes: np.ndarray, doc: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Each text's hashes sorted and made distinct (texts in order); ``counts`` becomes the
    number of distinct hashes of each text."""
    order = sort_by_row(hashes, doc, len(counts))
    hashes, doc = hashes[order], doc[order]
    new = np.ones(len(hashes), dtype=bool)
    new[1:] = (hashes[1:] != hashes[:-1]) | (doc[1:] != doc[:-1])
    counts[:] = np.bincount(doc[new], minlength=len(counts))
    return hashes[new]


def _windows(doc: np.ndarray, k: int, n_docs: int) -> tuple[np.ndarray, np.ndarray]:
    """Start and last index of every window of ``k`` consecutive items of one text (items
    sorted by ``doc``); a text with fewer than ``k`` items has one window of all of them."""
    counts = np.bincount(doc, minlength=n_docs)
    begin = np.concatenate([[0], np.cumsum(counts)[:-1]])
    n_win = np.where(counts > 0, np.maximum(counts - k + 1, 1), 0)
    win_doc = np.repeat(np.arange(n_docs), n_win)
    within = np.arange(int(n_win.sum())) - np.repeat(np.cumsum(n_win) - n_win, n_win)
    first = begin[win_doc] + within
    last = np.minimum(first + k - 1, begin[win_doc] + counts[win_doc] - 1)
    return first.astype(np.int64), last.astype(np.int64)


def _ngram_spans(word_hash: np.ndarray, word_doc: np.ndarray, k: int, n_docs: int):
    first, last = _windows(word_doc, k, n_docs)
    h = np.zeros(first.size, dtype=np.uint64)
    for j in range(k):
        idx = np.minimum(first + j, last)
        h = h * _BASE + np.where(first + j <= last, word_hash[idx], np.uint64(0))
    return _mix(h), word_doc[first]


def _minimum_into(minima: np.ndarray, x: np.ndarray, doc: np.ndarray, a: np.ndarray, b: np.ndarray) -> None:
    """minima[d] = min(minima[d], every permutation's minimum over the shingles of d),
    a cache-sized block of shingles at a time (permutations x shingles, so the per-text
    minimum reduces contiguous memory)."""
    block = max(1, _BLOCK_VALUES // a.size)
    a, b = a[:, None], b[:, None]
    buffers = [np.empty((a.size, block), np.uint64) for _ in range(3)]
    for lo in range(0, x.size, block):
        xs, ds = x[None, lo : lo + block], doc[lo : lo + block]
        out, u, tmp = (buf[:, : xs.shape[1]] for buf in buffers)
        values = affine_mod_prime(xs, a, b, out, (u, tmp), canonical=False)
        if values.max() >= _P:  # a value of 0, 1 or 2 not yet reduced: about 2**-60 per value
            canonical_mod_prime(values, u)
        seg = np.flatnonzero(np.concatenate([[True], ds[1:] != ds[:-1]]))
        part = np.minimum.reduceat(values, seg, axis=1)
        minima[ds[seg]] = np.minimum(minima[ds[seg]], part.T)
