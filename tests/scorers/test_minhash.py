"""minhash scorer: Jaccard estimates against exact Jaccard, normalisation, band keys, nulls,
slice independence and bad parameters."""

from __future__ import annotations

import random

import numpy as np
import pyarrow as pa
import pytest

import datadiet
from datadiet.errors import ConfigError
from datadiet.scorers import minhash as mh
from datadiet.scorers.minhash import PRIME, MinHashScorer, affine_mod_prime
from tests.select.near_dup_data import jaccard, shingles


def _batch(texts: list[str | None]) -> pa.RecordBatch:
    return pa.RecordBatch.from_pydict({
        "doc_id": [f"d{i}" for i in range(len(texts))], "text": pa.array(texts, pa.string()),
        "n_tokens": pa.array([len((t or "").split()) for t in texts], pa.int64())})


def _signatures(out: dict) -> np.ndarray:
    sig = out["signature"]
    return sig.values.to_numpy().reshape(len(sig), -1)


def _pairs(rng: random.Random, n_pairs: int, length: int = 400):
    """Text pairs over random distinct words with a contiguous block replaced, so their
    shingle overlap spans the whole range of similarities."""
    vocab = [f"w{rng.randrange(10**9):09d}" for _ in range(20 * length)]
    pairs = []
    for i in range(n_pairs):
        a = rng.sample(vocab, length)
        b = list(a)
        span = int(length * (i + 0.5) / n_pairs)
        start = rng.randrange(length - span + 1)
        b[start : start + span] = rng.sample(vocab, span)
        pairs.append((" ".join(a), " ".join(b)))
    return pairs


@pytest.mark.parametrize("shingle,size,n_pairs", [("word", 5, 60), ("char", 9, 12)])
def test_jaccard_estimates_within_expected_error(shingle, size, n_pairs):
    k = 256
    pairs = _pairs(random.Random(7), n_pairs, length=400 if shingle == "word" else 60)
    texts = [t for pair in pairs for t in pair]
    sig = _signatures(MinHashScorer(shingle=shingle, shingle_size=size, num_perm=k, bands=32).score_batch(_batch(texts)))
    exact = np.array([jaccard(shingles(a, size, shingle == "char"), shingles(b, size, shingle == "char"))
                      for a, b in pairs])
    estimate = (sig[0::2] == sig[1::2]).mean(axis=1)
    sigma = np.sqrt(exact * (1 - exact) / k)
    assert exact.min() < 0.2 and exact.max() > 0.8  # the pairs cover the range
    err = np.abs(estimate - exact)
    assert (err <= 4.5 * sigma + 2 / k).all(), list(zip(exact.round(3), estimate.round(3)))
    # mean absolute error of an unbiased estimate with this variance is sigma * sqrt(2 / pi)
    assert err.mean() <= 1.5 * (sigma * np.sqrt(2 / np.pi)).mean() + 1 / k


@pytest.mark.parametrize("shingle,size", [("word", 5), ("char", 9)])
def test_shingle_sets_give_exact_jaccard(shingle, size):
    pairs = _pairs(random.Random(3), 12, length=120 if shingle == "word" else 40)
    texts = [t for pair in pairs for t in pair] + ["A a a a a a a. A A", "two words"]
    sets = MinHashScorer(shingle=shingle, shingle_size=size, num_perm=32, bands=4).score_batch(_batch(texts))["shingles"]
    got = [np.asarray(v, dtype=np.uint64) for v in sets.to_pylist()]
    want = [shingles(t, size, shingle == "char") for t in texts]
    assert [len(g) for g in got] == [len(w) for w in want]
    assert all((np.diff(g.astype(object)) > 0).all() for g in got)  # sorted and distinct
    for i in range(0, 2 * len(pairs), 2):
        inter = len(np.intersect1d(got[i], got[i + 1]))
        assert inter / (len(got[i]) + len(got[i + 1]) - inter) == jaccard(want[i], want[i + 1])


def test_sort_by_row_is_exact_where_top_bits_tie():
    rng = np.random.default_rng(1)
    for trial in range(60):
        n, rows = int(rng.integers(1, 300)), int(rng.integers(1, 40))
        row, values = rng.integers(0, rows, n), rng.integers(0, 1 << 64, n, dtype=np.uint64)
        if trial % 2:  # every value shares its top bits: all ties under the key
            values = (values & np.uint64(0xFF)) | np.uint64(0xABCD << 40)
        if trial % 3 == 0:
            values = rng.choice(values, n)  # repeats
        order, want = mh.sort_by_row(values, row, rows), np.lexsort((values, row))
        assert (row[order] == row[want]).all() and (values[order] == values[want]).all(), trial


def test_normalisation_case_punctuation_whitespace():
    texts = ["Hello, World! The quick brown fox jumps over the lazy dog.",
             "hello world the   quick brown\tfox jumps over the lazy dog",
             "hello world the quick brown fox jumps over the lazy cat"]
    for shingle in ("word", "char"):
        sig = _signatures(MinHashScorer(shingle=shingle).score_batch(_batch(texts)))
        assert (sig[0] == sig[1]).all(), shingle
        assert not (sig[0] == sig[2]).all(), shingle


def test_band_keys_hash_their_rows_of_the_signature():
    rng = random.Random(3)
    texts = [" ".join(rng.choice(["a", "b", "c", "d"]) for _ in range(12)) for _ in range(200)]
    out = MinHashScorer(shingle_size=2, num_perm=64, bands=8).score_batch(_batch(texts))
    sig = _signatures(out)
    bands = out["bands"].values.to_numpy().reshape(len(texts), 8)
    rows = sig.reshape(len(texts), 8, 8)
    same_rows = (rows[:, None] == rows[None, :]).all(axis=3)
    same_band = bands[:, None] == bands[None, :]
    assert same_band.sum() > same_band.shape[0] * 8  # some band collisions between different texts
    assert (same_rows == same_band).all()
    assert len(np.unique(bands)) > 8  # keys of different bands differ


def test_short_empty_and_missing_texts():
    out = MinHashScorer(shingle_size=5).score_batch(_batch(["two words", "", "  ... !!", None, "one two three four five six"]))
    assert out["signature"].is_valid().to_pylist() == [True, False, False, False, True]
    assert out["bands"].is_valid().to_pylist() == [True, False, False, False, True]
    assert out["shingles"].is_valid().to_pylist() == [True, False, False, False, True]
    assert [len(v) for v in out["shingles"].to_pylist() if v is not None] == [1, 2]
    assert out["null_reason"].to_pylist() == [None, "empty text", "empty text", "missing text", None]


def test_slices_blocks_and_batches_do_not_change_signatures(monkeypatch):
    rng = random.Random(5)
    texts = [" ".join(f"w{rng.randrange(300)}" for _ in range(rng.randrange(1, 120))) for _ in range(150)]
    for shingle in ("word", "char"):
        scorer = MinHashScorer(shingle=shingle, num_perm=32, bands=4)
        whole = _signatures(scorer.score_batch(_batch(texts)))
        with monkeypatch.context() as m:
            m.setattr(mh, "_SLICE_BYTES", 500)
            m.setattr(mh, "_BLOCK_VALUES", 32 * 7)
            sliced = _signatures(scorer.score_batch(_batch(texts)))
        halves = np.concatenate([_signatures(scorer.score_batch(_batch(texts[:70]))),
                                 _signatures(scorer.score_batch(_batch(texts[70:])))])
        assert (whole == sliced).all() and (whole == halves).all(), shingle
    other_seed = _signatures(MinHashScorer(num_perm=32, bands=4, seed=1).score_batch(_batch(texts)))
    assert not (other_seed == _signatures(MinHashScorer(num_perm=32, bands=4).score_batch(_batch(texts)))).all()


def test_permutation_is_exact_modular_arithmetic():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.integers(0, 1 << 32, 500, dtype=np.uint64), np.array([0, (1 << 32) - 1], np.uint64)])
    a = np.concatenate([rng.integers(1, PRIME, 9, dtype=np.uint64), np.array([1, PRIME - 1], np.uint64)])
    b = np.concatenate([rng.integers(0, PRIME, 9, dtype=np.uint64), np.array([0, PRIME - 1], np.uint64)])
    got = affine_mod_prime(x[:, None], a[None, :], b[None, :])
    want = [[(int(ai) * int(xi) + int(bi)) % PRIME for ai, bi in zip(a, b)] for xi in x]
    assert got.tolist() == want


@pytest.mark.parametrize("params,key", [
    ({"shingle_size": 0}, "shingle_size"), ({"shingle_size": -2}, "shingle_size"),
    ({"num_perm": 0}, "num_perm"), ({"bands": 0}, "bands"),
    ({"num_perm": 128, "bands": 3}, "bands"), ({"shingle": "line"}, "shingle"),
])
def test_bad_parameters_name_the_key(params, key):
    with pytest.raises(ConfigError, match=f"'{key}'"):
        MinHashScorer.from_config(params)


def test_bad_parameters_fail_before_compute(tmp_path, corpus):
    recipe = {"source": {"paths": str(corpus / "*.parquet"), "text_column": "text", "id_column": "id"},
              "scorers": [{"type": "minhash", "num_perm": 100, "bands": 16}],
              "output": {"path": str(tmp_path / "out")}, "execution": {"scheduler": "synchronous"}}
    with pytest.raises(ConfigError, match="'bands'.*'num_perm'"):
        datadiet.Pipeline.from_config(recipe).run()
    assert not (tmp_path / "out" / "scores").exists()
