"""The shared tokenisation, the byte-range hashes and the key sort behind the cheap scorers."""

from __future__ import annotations

import threading

import numpy as np
import pyarrow as pa
import pytest

from bench import heuristics_reference as reference
from datadiet.scorers import _runhash, _tokens
from datadiet.scorers._text import Texts
from datadiet.scorers.charstats import CharStatsScorer
from datadiet.scorers.length import LengthScorer
from datadiet.scorers.repetition import RepetitionScorer, _sort_keys


def _batch(texts):
    return pa.RecordBatch.from_pydict({"doc_id": [str(i) for i in range(len(texts))], "text": texts,
                                       "n_tokens": pa.array([1] * len(texts), pa.int64())})


def _hash(data: bytes, starts, lengths):
    raw = np.frombuffer(data, dtype=np.uint8)
    return _runhash.range_hashes(_runhash.chunk_view(raw), np.asarray(starts), np.asarray(lengths))


def test_range_hash_depends_on_the_bytes_only():
    word = b"abcdefghijklmnopqrstuvwxyz0123456789" * 3  # 108 bytes: first chunk, loop and blocks
    data = b"x" + word + b"  " + word + b"\x00"
    for n in (0, 1, 7, 8, 9, 16, 17, 40, 41, 48, 49, 108):
        a, b = _hash(data, [1, len(word) + 3], [n, n])
        assert a == b, n
    # a trailing NUL byte or one more chunk changes the hash; so does any single byte
    h = _hash(b"a\x00" + b"q" * 20, [0, 0, 2, 2], [1, 2, 16, 17])
    assert len(set(h.tolist())) == 4
    flipped = bytearray(data)
    flipped[90] ^= 1
    assert _hash(data, [1], [108]) != _hash(bytes(flipped), [1], [108])


def test_range_hash_blocks_give_the_same_sums(monkeypatch):
    rng = np.random.default_rng(0)
    data = rng.integers(1, 255, 5000, dtype=np.uint8).tobytes()
    starts, lengths = [0, 3, 100, 7], [5000 - 0, 4000, 333, 70]
    want = _hash(data, starts, lengths)
    monkeypatch.setattr(_runhash, "_BLOCK", 7)  # many blocks, ranges cut across them
    assert (_hash(data, starts, lengths) == want).all()


def test_sort_keys_falls_back_when_truncation_merges_keys():
    high = np.uint64(0xABCDEF0000000000)
    keys = np.array([high | np.uint64(3), high | np.uint64(1), high | np.uint64(3), high | np.uint64(2)])
    order, sorted_keys = _sort_keys(keys)
    assert (keys[order] == sorted_keys).all()
    assert sorted_keys.tolist() == sorted(keys.tolist())
    ints = np.array([5, 1, 5, 0], dtype=np.int64)
    order, sorted_keys = _sort_keys(ints)
    assert sorted_keys.tolist() == [0, 1, 5, 5] and (ints[order] == sorted_keys).all()


def test_tokenisation_is_shared_per_array_and_per_thread():
    batch = _batch(["one two", "three"])
    first = _tokens.tokenised(Texts(batch, "t"), batch)
    assert _tokens.tokenised(Texts(batch, "t"), batch) is first
    other = _batch(["one two", "three"])  # equal text, other buffers
    assert _tokens.tokenised(Texts(other, "t"), other) is not first
    assert _tokens.tokenised(Texts(batch.slice(1), "t"), batch.slice(1)) is not first
    seen = []
    thread = threading.Thread(target=lambda: seen.append(_tokens.tokenised(Texts(batch, "t"), batch)))
    thread.start()
    thread.join()
    assert seen[0] is not first
    _tokens.forget()
    assert _tokens.tokenised(Texts(batch, "t"), batch) is not first
    # the same buffers in a new batch object (a planner's second timing pass) are not shared
    table = pa.Table.from_batches([batch])
    again, once_more = table.to_batches()[0], table.to_batches()[0]
    kept = _tokens.tokenised(Texts(again, "t"), again)
    assert _tokens.tokenised(Texts(again, "t"), again) is kept
    assert _tokens.tokenised(Texts(once_more, "t"), once_more) is not kept


def test_scorers_sharing_a_batch_agree_with_scoring_alone():
    texts = ["alpha beta  gamma\nalpha beta  gamma\n", "héllo wörld\u3000x", "", "a\x00b \x7f c\td"] * 50
    batch = _batch(texts)
    scorers = [LengthScorer(), CharStatsScorer(), RepetitionScorer()]
    shared = [s.score_batch(batch) for s in scorers]
    for scorer, got in zip(scorers, shared):
        _tokens.forget()
        alone = scorer.score_batch(batch)
        assert {k: v.to_pylist() for k, v in alone.items()} == {k: v.to_pylist() for k, v in got.items()}


@pytest.mark.parametrize("sizes", [((2,), (5,)), ((1, 3), (2, 10))])
def test_long_words_lines_and_slices(sizes):
    long_word = "x" * 70_000 + "é"  # one word over the slice size and many hash blocks
    line = "the same long line of words " * 12
    texts = [long_word + "\n" + long_word + " tail", (line + "\n") * 30 + long_word, "z " * 300_000]
    scorer = RepetitionScorer(top_ngram_sizes=list(sizes[0]), dup_ngram_sizes=list(sizes[1]))
    out = scorer.score_batch(_batch(texts))
    for i, text in enumerate(texts):
        want = reference.repetition(text, *sizes)
        for column in scorer.output_columns():
            assert out[column][i].as_py() == pytest.approx(want[column], rel=1e-6, abs=1e-7), (i, column)
