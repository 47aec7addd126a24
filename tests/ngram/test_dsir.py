"""DSIR scorer: weights against a from-scratch computation, tokenization, KL diagnostic,
the prose-target mixture, and bad input."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pyarrow as pa
import pytest
import regex
import xxhash

import datadiet.scorers.dsir as dsir_module
from datadiet.errors import ConfigError
from datadiet.scorers.base import InMemoryFitContext
from datadiet.scorers.dsir import DSIRScorer, DSIRTargetScorer, hashed_ngrams, ngram_hash

from .conftest import make_table

TARGET = [
    "The cat sat on the mat. The cat was happy!",
    "A dog and a cat played in the garden; the dog ran.",
    "Birds sing in the morning, and the cat listens.",
]
POOL = [
    "def f(x): return x + 1  # the cat",
    "The stock market fell 3% on Monday, analysts said.",
    "The cat and the dog sat in the garden.",
    "import numpy as np; np.zeros((3, 3))",
    "Dogs, cats and birds: the garden was loud.",
    "",
    "   \n\t ",
    "Der Hund läuft schnell — très vite, naïve café!",
]


def reference_counts(text: str, order: int, buckets: int) -> Counter:
    """Hashed n-gram counts computed from scratch: NLTK's WordPunct tokens (its pattern in
    the ``regex`` module) of ``text.lower()``, xxh64 per token, ngram_hash to combine,
    modulo the bucket count."""
    tokens = regex.findall(r"\w+|[^\w\s]+", text.lower())
    hashes = [xxhash.xxh64_intdigest(t.encode("utf-8")) for t in tokens]
    counts = Counter()
    for n in range(1, order + 1):
        for i in range(len(hashes) - n + 1):
            counts[ngram_hash(hashes[i : i + n]) % buckets] += 1
    return counts


def reference_weights(target, pool, order, buckets, alpha, epsilon=0.0):
    def model(texts):
        total = np.zeros(buckets)
        for t in texts:
            for b, c in reference_counts(t, order, buckets).items():
                total[b] += c
        total += alpha
        return np.log(total / total.sum() + epsilon)

    log_ratio = model(target) - model(pool)
    return [sum(c * log_ratio[b] for b, c in reference_counts(t, order, buckets).items()) for t in pool]


@pytest.mark.parametrize("smoothing,epsilon", [(0.5, 0.0), (0.0, 1e-8)])
@pytest.mark.parametrize("order,buckets", [(1, 50), (2, 64), (3, 1000)])
def test_weights_match_direct_computation(order, buckets, smoothing, epsilon):
    """Add-alpha smoothing, and the paper's / official package's MLE + 1e-8 (the default)."""
    scorer = DSIRScorer(ngram_order=order, num_buckets=buckets, smoothing=smoothing, epsilon=epsilon)
    scorer.fit(InMemoryFitContext(pool=make_table(POOL), target=make_table(TARGET)))
    out = scorer.score_batch(make_table(POOL).to_batches()[0])
    expected = reference_weights(TARGET, POOL, order, buckets, smoothing, epsilon)
    got = out["score"].to_pylist()
    for text, g, e in zip(POOL, got, expected):
        if reference_counts(text, order, buckets):
            assert g == pytest.approx(e, rel=1e-5, abs=1e-4)
        else:
            assert g is None
    n_features = [sum(reference_counts(t, order, buckets).values()) for t in POOL]
    assert out["n_features"].to_pylist() == n_features


def test_sklearn_backend_matches_its_analyzer():
    from sklearn.feature_extraction.text import HashingVectorizer
    from sklearn.utils import murmurhash3_32

    buckets = 97
    scorer = DSIRScorer(num_buckets=buckets, backend="sklearn", smoothing=1.0)
    scorer.fit(InMemoryFitContext(pool=make_table(POOL), target=make_table(TARGET)))
    analyzer = HashingVectorizer(ngram_range=(1, 2), token_pattern=dsir_module.TOKEN_PATTERN).build_analyzer()

    def counts(texts):
        total = np.zeros(buckets)
        for t in texts:
            for gram in analyzer(t):
                total[abs(murmurhash3_32(gram, seed=0)) % buckets] += 1
        return total + 1.0

    log_ratio = np.log(counts(TARGET) / counts(TARGET).sum()) - np.log(counts(POOL) / counts(POOL).sum())
    got = scorer.score_batch(make_table(POOL).to_batches()[0])["score"].to_pylist()
    for text, g in zip(POOL, got):
        grams = analyzer(text)
        expected = sum(log_ratio[abs(murmurhash3_32(x, seed=0)) % buckets] for x in grams)
        assert (g is None) == (not grams)
        if grams:
            assert g == pytest.approx(expected, rel=1e-5, abs=1e-4)


def test_tokens_match_nltk_wordpunct_on_unicode():
    """Tokens as NLTK's WordPunctTokenizer (the official DSIR's): ``regex``'s \\w takes
    combining marks, joiners and variation selectors but not superscripts; lower-casing is
    ``str.lower`` (İ, final sigma)."""
    texts = [
        "Ünïcode wörds, naïve café — “quoted” text… and a_snake_case name!",
        "日本語のテキスト、漢字とかな。 Ελληνικά κείμενα; русский текст?!",
        "emoji 🙂🙂 and 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 math, e\u0301 combining, nbsp\u00a0here, tab\there",
        "x==y!=z -> (a+b)*c; 3.14159 $100 #tag @user",
        "x² + y³ = ½; ΟΔΟΣ İstanbul 🧙\u200d♂\ufe0f \"🥇\", \x1c sep",
        "ascii only, no lowering surprises",
    ]
    rows, buckets, _ = hashed_ngrams(texts, ngram_order=1, num_buckets=1 << 62)
    for i, text in enumerate(texts):
        tokens = regex.findall(r"\w+|[^\w\s]+", text.lower())
        expected = [xxhash.xxh64_intdigest(t.encode()) % (1 << 62) for t in tokens]
        assert buckets[rows == i].tolist() == expected


def test_ngrams_never_cross_documents_or_chunks(monkeypatch):
    texts = ["alpha beta", "gamma delta", "", "epsilon"] * 50
    rows, buckets, _ = hashed_ngrams(texts, ngram_order=2, num_buckets=1 << 62)
    assert np.bincount(rows, minlength=len(texts)).tolist() == [3, 3, 0, 1] * 50
    monkeypatch.setattr(dsir_module, "_CHUNK_BYTES", 17)  # force many featurization slices
    rows2, buckets2, _ = hashed_ngrams(texts, ngram_order=2, num_buckets=1 << 62)
    def pairs(r, b):
        order = np.lexsort((b, r))
        return r[order].tolist(), b[order].tolist()

    assert pairs(rows2, buckets2) == pairs(rows, buckets)


def test_no_ngrams_gives_null_with_reason():
    scorer = DSIRScorer(num_buckets=128).fit(InMemoryFitContext(pool=make_table(POOL), target=make_table(TARGET)))
    batch = make_table(["", "  \n ", "the cat", None]).to_batches()[0]
    out = scorer.score_batch(batch)
    assert out["score"].to_pylist()[:2] == [None, None] and out["score"][3].as_py() is None
    assert out["score"][2].as_py() is not None
    assert out["null_reason"].to_pylist() == ["no n-grams", "no n-grams", None, "no n-grams"]


def test_scores_do_not_depend_on_batching(mixture):
    pool = mixture["pool"]
    scorer = DSIRScorer(num_buckets=4096).fit(InMemoryFitContext(pool=pool, target=mixture["target"]))

    def in_chunks(k):
        bounds = np.linspace(0, pool.num_rows, k + 1).astype(int)
        parts = [scorer.score_batch(pool.slice(a, b - a).to_batches()[0])["score"] for a, b in zip(bounds, bounds[1:])]
        return np.concatenate([p.to_numpy(zero_copy_only=False) for p in parts])

    np.testing.assert_array_equal(in_chunks(2), in_chunks(5))


def test_prose_target_top_decile_is_prose(mixture):
    pool = mixture["pool"]
    scorer = DSIRScorer().fit(InMemoryFitContext(pool=pool, target=mixture["target"]))
    weights = scorer.score_batch(pool.combine_chunks().to_batches()[0])["score"].to_numpy(zero_copy_only=False)
    weights = np.where(np.isnan(weights), -np.inf, weights)
    top = np.argsort(-weights, kind="stable")[: len(weights) // 10]
    share = float(np.mean(mixture["labels"][top] == "prose"))
    assert share >= 0.9, share


def test_kl_reduction_positive_toward_target(mixture):
    pool = mixture["pool"]
    scorer = DSIRScorer().fit(InMemoryFitContext(pool=pool, target=mixture["target"]))
    weights = scorer.score_batch(pool.to_batches()[0])["score"].to_numpy(zero_copy_only=False)
    weights = np.where(np.isnan(weights), -np.inf, weights)
    chosen = np.sort(np.argsort(-weights)[: pool.num_rows // 5])
    stats = scorer.selection_stats(pool.take(pa.array(chosen)).to_batches()[0])
    summary = scorer.summarize_selection(stats)
    assert summary["kl_reduction"] > 0
    assert summary["kl_reduction"] == pytest.approx(summary["kl_target_raw"] - summary["kl_target_selected"])
    # selecting only code moves away from the prose target
    code = np.flatnonzero(mixture["labels"] == "code")
    away = scorer.summarize_selection(scorer.selection_stats(pool.take(pa.array(code)).to_batches()[0]))
    assert away["kl_reduction"] < 0 < summary["kl_reduction"]


def test_state_round_trip(tmp_path, mixture):
    pool = mixture["pool"].slice(0, 200)
    scorer = DSIRScorer(num_buckets=2048).fit(InMemoryFitContext(pool=pool, target=mixture["target"]))
    scorer.save_state(tmp_path)
    loaded = DSIRScorer(num_buckets=2048).load_state(tmp_path)
    batch = pool.to_batches()[0]
    assert loaded.score_batch(batch)["score"].equals(scorer.score_batch(batch)["score"])
    assert loaded.log_target_.dtype == np.float64
    with pytest.raises(ConfigError, match="2048 buckets but num_buckets is 4096"):
        DSIRScorer(num_buckets=4096).load_state(tmp_path).setup()


@pytest.mark.parametrize("buckets", [0, -5])
def test_bad_bucket_count(buckets):
    with pytest.raises(ConfigError, match="num_buckets"):
        DSIRScorer(num_buckets=buckets).validate_params()
    with pytest.raises(ConfigError, match="num_buckets"):
        DSIRScorer(num_buckets=buckets).fit(InMemoryFitContext(pool=make_table(POOL), target=make_table(TARGET)))


@pytest.mark.parametrize("target", [[], ["", "   "]])
def test_empty_target_set(target):
    ctx = InMemoryFitContext(pool=make_table(POOL), target=make_table(target))
    with pytest.raises(ConfigError, match="empty target set"):
        DSIRScorer(num_buckets=64).fit(ctx)


def test_dsir_target_assigns_closest_target():
    code = ["def f(x): return x", "import os; os.path.join(a, b)", "class A: pass"]
    ctx_prose = InMemoryFitContext(pool=make_table(POOL), target=make_table(TARGET))
    ctx_code = InMemoryFitContext(pool=make_table(POOL), target=make_table(code))
    prose_scorer = DSIRScorer(num_buckets=256).fit(ctx_prose)
    code_scorer = DSIRScorer(num_buckets=256).fit(ctx_code)
    docs = make_table(["the cat sat in the garden", "def g(y): return os.path.join(y)", ""])
    batch = docs.to_batches()[0]
    table = pa.table({"w_prose": prose_scorer.score_batch(batch)["score"], "w_code": code_scorer.score_batch(batch)["score"]})
    out = DSIRTargetScorer(columns=["w_prose", "w_code"]).score_batch(table.to_batches()[0])
    assert out["score"].to_pylist() == ["w_prose", "w_code", None]
    assert out["null_reason"].to_pylist() == [None, None, "no dsir weight"]
    with pytest.raises(ConfigError, match="columns"):
        DSIRTargetScorer(columns=[]).validate_params()


def test_zero_smoothing_and_epsilon_is_a_config_error():
    with pytest.raises(ConfigError, match="'smoothing' > 0 or 'epsilon' > 0"):
        DSIRScorer(smoothing=0.0, epsilon=0.0).validate_params()
    with pytest.raises(ConfigError, match="epsilon"):
        DSIRScorer(epsilon=-1.0).validate_params()
