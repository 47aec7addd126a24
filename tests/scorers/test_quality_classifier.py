"""quality_classifier: ranking on data_samples, fitted state round trip and reuse under fits/,
models trained elsewhere (scikit-learn npz+json, fastText .bin), unsafe files and bad input."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

import datadiet
from datadiet.errors import ConfigError, ModelError
from datadiet.scorers.base import InMemoryFitContext
from datadiet.scorers.quality_classifier import QualityClassifierScorer, export_linear_model
from tests.conftest import SAMPLES


def _view(ids, texts) -> pa.Table:
    texts = pa.array(texts, pa.string())
    return pa.table({"doc_id": pa.array(ids, pa.string()), "text": texts,
                     "n_tokens": pa.array([len((t or "").split()) for t in texts.to_pylist()], pa.int64())})


@pytest.fixture(scope="module")
def samples():
    corpus = pa.concat_tables(pq.read_table(p) for p in sorted((SAMPLES / "corpus").glob("*.parquet")))
    pool = _view(corpus.column("id").to_pylist(), corpus.column("text").to_pylist())
    rows = [json.loads(line) for line in (SAMPLES / "target" / "prose.jsonl").read_text().splitlines()]
    target = _view([r["id"] for r in rows], [r["text"] for r in rows])
    return {"pool": pool, "target": target, "source": np.asarray(corpus.column("source").to_pylist())}


def _scores(scorer, table: pa.Table) -> np.ndarray:
    out = scorer.score_batch(table.combine_chunks().to_batches()[0])["score"]
    return out.to_numpy(zero_copy_only=False)


def _auc(pos: np.ndarray, neg: np.ndarray) -> float:
    """P(score of a random positive > that of a random negative), ties half."""
    pos, neg = pos[np.isfinite(pos)], neg[np.isfinite(neg)]
    greater = (pos[:, None] > neg[None, :]).mean()
    return float(greater + 0.5 * (pos[:, None] == neg[None, :]).mean())


@pytest.fixture(scope="module")
def fitted(samples):
    # Half of the target set trains; the other half is held out.
    train = samples["target"].slice(0, 50)
    scorer = QualityClassifierScorer(num_features=1 << 18)
    scorer.fit(InMemoryFitContext(pool=samples["pool"], target=train, seed=0))
    return scorer


def test_ranks_held_out_target_rows_above_junk(samples, fitted):
    held_out = _scores(fitted, samples["target"].slice(50))
    pool = _scores(fitted, samples["pool"])
    source = samples["source"]
    # junk: random bytes, a repeated line, digits (the dup:* rows copy real rows; empty ones are null)
    ids = np.asarray(samples["pool"].column("doc_id").to_pylist())
    junk = pool[np.array([i.startswith(("junk:binary", "junk:repeat", "junk:digits")) for i in ids])]
    code, boiler = pool[source == "code"], pool[source == "boilerplate"]
    assert junk.size == 6 and np.isfinite(junk).all()
    assert np.median(held_out) > junk.max()
    assert _auc(held_out, junk) >= 0.9
    assert _auc(held_out, boiler) >= 0.95
    assert _auc(held_out, code) >= 0.95
    # held-out target rows are target-like: mostly positive log-odds
    assert np.mean(held_out > 0) >= 0.8
    # the pool's own prose (never in the target) ranks in the top of the pool
    top = np.argsort(-np.nan_to_num(pool, nan=-np.inf), kind="stable")[: int((source == "prose").sum())]
    assert np.mean(source[top] == "prose") >= 0.8
    assert fitted.n_positive_ == 50 and fitted.n_negative_ > 1000


def test_empty_and_null_texts_are_null_with_reason(fitted):
    out = fitted.score_batch(_view(["a", "b", "c"], ["", None, "some prose text"]).to_batches()[0])
    assert out["score"].is_null().to_pylist() == [True, True, False]
    assert out["null_reason"].to_pylist() == ["no n-grams", "no n-grams", None]


def test_fit_is_deterministic(samples, fitted):
    again = QualityClassifierScorer(num_features=1 << 18)
    again.fit(InMemoryFitContext(pool=samples["pool"], target=samples["target"].slice(0, 50), seed=0))
    assert again.coef_.tobytes() == fitted.coef_.tobytes() and again.intercept_ == fitted.intercept_


def test_state_round_trip_and_model_path(tmp_path, samples, fitted):
    fitted.save_state(tmp_path / "state")
    assert sorted(p.name for p in (tmp_path / "state").iterdir()) == ["state.json", "state.npz"]
    loaded = QualityClassifierScorer(num_features=1 << 18).load_state(tmp_path / "state")
    expected = fitted.score_batch(samples["pool"].combine_chunks().to_batches()[0])["score"]
    assert loaded.score_batch(samples["pool"].combine_chunks().to_batches()[0])["score"].equals(expected)
    by_path = QualityClassifierScorer(model_path=str(tmp_path / "state"))
    by_path.check()
    assert not by_path.requires_fit
    assert by_path.score_batch(samples["pool"].combine_chunks().to_batches()[0])["score"].equals(expected)
    assert by_path.state_fingerprint() and by_path.state_fingerprint() == by_path.state_fingerprint()


def test_sklearn_model_trained_elsewhere(tmp_path, samples):
    from sklearn.feature_extraction.text import HashingVectorizer
    from sklearn.linear_model import LogisticRegression

    texts = samples["target"].column("text").to_pylist() + [
        t for t, s in zip(samples["pool"].column("text").to_pylist(), samples["source"]) if s == "code"][:300]
    labels = ["good"] * 100 + ["bad"] * (len(texts) - 100)
    vec = HashingVectorizer(n_features=1 << 16, ngram_range=(1, 2), alternate_sign=False)
    clf = LogisticRegression(max_iter=200).fit(vec.transform(texts), labels)
    export_linear_model(tmp_path / "model", clf, vec, positive_class="good")
    scorer = QualityClassifierScorer(model_path=str(tmp_path / "model"))
    scorer.check()
    probe = samples["pool"].slice(0, 64)
    got = _scores(scorer, probe)
    want = clf.decision_function(vec.transform(probe.column("text").to_pylist()))  # > 0 means "good"
    assert clf.classes_[1] == "good"
    finite = np.isfinite(got)
    np.testing.assert_allclose(got[finite], want[finite], rtol=1e-4, atol=1e-4)


def test_fasttext_bin_trained_elsewhere(tmp_path, samples):
    fasttext = pytest.importorskip("fasttext")
    good = samples["target"].column("text").to_pylist()
    bad = [t for t, s in zip(samples["pool"].column("text").to_pylist(), samples["source"]) if s == "code"][:100]
    lines = [f"__label__hq {t}" for t in good] + [f"__label__cc {t}" for t in bad]
    (tmp_path / "train.txt").write_text("\n".join(line.replace("\n", " ") for line in lines) + "\n")
    # Trained in a fresh process: fastText 0.9.3's trainer reports NaN in a process where
    # other numeric libraries have run, and sporadically on tiny data (hence the retries).
    script = (
        "import fasttext, sys\n"
        "for seed in range(10):\n"
        "    try:\n"
        "        m = fasttext.train_supervised(sys.argv[1], epoch=10, wordNgrams=2, dim=16, bucket=20000,\n"
        "                                      thread=1, seed=seed, verbose=0)\n"
        "        m.save_model(sys.argv[2]); break\n"
        "    except RuntimeError as exc:\n"
        "        assert 'NaN' in str(exc)\n"
        "else:\n"
        "    sys.exit('fastText training gave NaN 10 times')\n"
    )
    subprocess.run([sys.executable, "-c", script, str(tmp_path / "train.txt"), str(tmp_path / "q.bin")],
                   check=True, timeout=120)
    model = fasttext.load_model(str(tmp_path / "q.bin"))
    with pytest.raises(ConfigError, match="positive_label"):
        QualityClassifierScorer(model_path=str(tmp_path / "q.bin")).check()
    scorer = QualityClassifierScorer(model_path=str(tmp_path / "q.bin"), positive_label="__label__hq")
    scorer.check()
    pool = _scores(scorer, samples["pool"])
    source = samples["source"]
    assert _auc(pool[source == "prose"], pool[source == "code"]) >= 0.9
    labels, probs = model.predict(["the assert statement is a convenient way"], k=-1)
    p = dict(zip(labels[0], probs[0]))["__label__hq"]
    got = _scores(scorer, _view(["x"], ["the assert statement is a convenient way"]))[0]
    assert got == pytest.approx(np.log(p) - np.log1p(-p), abs=1e-3)
    with pytest.raises(ConfigError, match="not a label"):
        QualityClassifierScorer(model_path=str(tmp_path / "q.bin"), positive_label="__label__x").setup()


@pytest.mark.parametrize("name", ["model.pkl", "model.joblib", "model.bin"])
def test_pickle_and_joblib_files_are_refused(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(pickle.dumps({"coef_": [1.0, 2.0]}, protocol=4))
    with pytest.raises(ModelError, match=rf"{name}.*pickle"):
        QualityClassifierScorer(model_path=str(path)).check()


def test_pickle_inside_a_model_directory_is_refused(tmp_path, fitted):
    fitted.save_state(tmp_path / "m")
    (tmp_path / "m" / "extra.pkl").write_bytes(pickle.dumps([1]))
    with pytest.raises(ModelError, match="extra.pkl"):
        QualityClassifierScorer(model_path=str(tmp_path / "m")).check()


def test_bad_model_paths(tmp_path):
    with pytest.raises(ModelError, match="does not exist"):
        QualityClassifierScorer(model_path=str(tmp_path / "missing")).check()
    (tmp_path / "random.bin").write_bytes(b"\x00\x01\x02\x03 not a model")
    with pytest.raises(ModelError, match="random.bin.*neither a fastText"):
        QualityClassifierScorer(model_path=str(tmp_path / "random.bin")).check()
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match="state.npz and state.json"):
        QualityClassifierScorer(model_path=str(tmp_path / "empty")).check()
    with pytest.raises(ConfigError, match="cannot be combined"):
        QualityClassifierScorer(model_path=str(tmp_path / "empty"), target="prose").check()
    with pytest.raises(ConfigError, match="not both"):
        QualityClassifierScorer(target="prose", label_column="x").check()
    with pytest.raises(ConfigError, match="num_features"):
        QualityClassifierScorer(num_features=0).check()


def test_no_positives_or_no_negatives(samples):
    empty_target = _view(["t0", "t1"], ["", "   "])
    with pytest.raises(ConfigError, match="no positive examples"):
        QualityClassifierScorer(num_features=1024).fit(InMemoryFitContext(pool=samples["pool"], target=empty_target))
    empty_pool = _view(["p0", "p1"], [None, ""])
    with pytest.raises(ConfigError, match="no negative examples"):
        QualityClassifierScorer(num_features=1024).fit(
            InMemoryFitContext(pool=empty_pool, target=samples["target"]))


def test_label_column(samples):
    pool = samples["pool"].append_column("is_prose", pa.array(samples["source"] == "prose"))
    scorer = QualityClassifierScorer(label_column="is_prose", num_features=1 << 16)
    assert scorer.required_inputs() == ("is_prose",)
    scorer.fit(InMemoryFitContext(pool=pool, seed=0))
    scores = _scores(scorer, samples["target"])
    assert np.mean(scores > 0) >= 0.8
    all_false = pool.set_column(pool.num_columns - 1, "is_prose", pa.array(np.zeros(pool.num_rows, bool)))
    with pytest.raises(ConfigError, match="no positive examples.*is_prose"):
        QualityClassifierScorer(label_column="is_prose", num_features=1024).fit(InMemoryFitContext(pool=all_false))


@pytest.mark.slow
def test_recipe_fits_once_under_fits_and_reuses(tmp_path):
    recipe = {
        "source": {"paths": str(SAMPLES / "corpus" / "*.parquet"), "id_column": "id", "source_column": "source"},
        "target": {"paths": str(SAMPLES / "target" / "prose.jsonl"), "id_column": "id"},
        "scorers": [{"type": "quality_classifier", "num_features": 65536}],
        "select": [{"type": "top_k", "score": "quality_classifier", "keep": "high"}],
        "budget": {"documents": 200},
        "output": {"path": str(tmp_path / "out"), "include_scores": True},
        "execution": {"scheduler": "synchronous", "progress": False},
    }
    result = datadiet.Pipeline.from_config(recipe).run()
    fits = list((tmp_path / "out" / "fits" / "quality_classifier").glob("*/state.npz"))
    assert len(fits) == 1
    kept = result.load()
    assert np.mean(np.asarray(kept["source"]) == "prose") >= 0.9
    mtime = fits[0].stat().st_mtime_ns
    again = datadiet.Pipeline.from_config(recipe).run()
    assert fits[0].stat().st_mtime_ns == mtime  # reused, not refitted
    first = pq.read_table(sorted((tmp_path / "out" / "data").glob("*.parquet"))[0])
    assert pc.all(pc.equal(again.load().data.table.column("doc_id"), first.column("doc_id"))).as_py()


@pytest.mark.slow
def test_recipe_label_column_from_an_earlier_scorer(tmp_path):
    """Labels from a first-round score column (dsir > 0: closer to the target than the pool)."""
    recipe = {
        "source": {"paths": str(SAMPLES / "corpus" / "*.parquet"), "id_column": "id", "source_column": "source"},
        "target": {"paths": str(SAMPLES / "target" / "prose.jsonl"), "id_column": "id"},
        "scorers": [{"type": "dsir", "num_buckets": 4096},
                    {"type": "quality_classifier", "label_column": "dsir", "num_features": 65536}],
        "select": [{"type": "top_k", "score": "quality_classifier", "keep": "high"}],
        "budget": {"documents": 200},
        "output": {"path": str(tmp_path / "out")},
        "execution": {"scheduler": "synchronous", "progress": False},
    }
    pipe = datadiet.Pipeline.from_config(recipe)
    assert [[s.name for s in r] for r in pipe.validate().rounds] == [["dsir"], ["quality_classifier"]]
    kept = pipe.run().load()
    assert np.mean(np.asarray(kept["source"]) == "prose") >= 0.9
