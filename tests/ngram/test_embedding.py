"""embedding scorer end to end on tiny models trained/built in the session."""

from __future__ import annotations

import shutil

import numpy as np
import pyarrow as pa
import pytest

from datadiet.errors import ModelError
from datadiet.scorers.embedding import EmbeddingScorer

from .conftest import make_table


def vectors(column: pa.Array) -> np.ndarray:
    return np.asarray(column.flatten().to_numpy(zero_copy_only=False), dtype=np.float32).reshape(len(column), -1)


@pytest.fixture(scope="module")
def texts(mixture):
    return [t[: 50 + 37 * i] for i, t in enumerate(mixture["pool"].column("text").to_pylist()[:40])]


def test_shape_normalisation_and_batching(tiny_model_dir, texts):
    scorer = EmbeddingScorer(model=str(tiny_model_dir), max_length=64, batch_size=8)
    assert scorer.output_columns() == {"score": pa.list_(pa.float16(), 32)}
    assert getattr(scorer, "_model", None) is None  # the dimension came from config.json alone
    table = make_table(texts + ["", None])
    out = scorer.score_batch(table.to_batches()[0])
    column = out["score"]
    assert column.type == pa.list_(pa.float16(), 32) and len(column) == len(texts) + 2
    assert column.null_count == 2 and out["null_reason"].to_pylist()[-2:] == ["no tokens", "no tokens"]
    v = vectors(column.filter(column.is_valid()))
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=2e-3)
    assert np.unique(v.round(2), axis=0).shape[0] == len(texts)  # distinct texts, distinct vectors
    # the same embeddings whatever the batching and padding
    other = EmbeddingScorer(model=str(tiny_model_dir), max_length=64, batch_size=3)
    parts = [other.score_batch(table.slice(a, b - a).to_batches()[0])["score"] for a, b in [(0, 11), (11, 29), (29, 42)]]
    again = pa.concat_arrays(parts)
    np.testing.assert_allclose(vectors(again.filter(again.is_valid())), v, atol=2e-3)


def test_matches_manual_mean_pooling(tiny_model_dir, texts):
    import torch
    from transformers import AutoModel, AutoTokenizer

    model = AutoModel.from_pretrained(tiny_model_dir, local_files_only=True).eval()
    tok = AutoTokenizer.from_pretrained(tiny_model_dir, local_files_only=True)
    scorer = EmbeddingScorer(model=str(tiny_model_dir), max_length=64, normalize=False)
    got = vectors(scorer.score_batch(make_table(texts[:6]).to_batches()[0])["score"])
    for i, text in enumerate(texts[:6]):
        ids = tok(text, truncation=True, max_length=64, return_tensors="pt")
        with torch.no_grad():
            expected = model(**ids).last_hidden_state[0].mean(dim=0).numpy()
        np.testing.assert_allclose(got[i], expected, rtol=2e-2, atol=2e-3)


def test_encoder_directory(tmp_path, tiny_model_dir, texts):
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    tok = AutoTokenizer.from_pretrained(tiny_model_dir, local_files_only=True)
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(tok), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=128)
    BertModel(config).save_pretrained(tmp_path, safe_serialization=True)
    tok.save_pretrained(tmp_path)
    out = EmbeddingScorer(model=str(tmp_path), max_length=64).score_batch(make_table(texts[:5]).to_batches()[0])
    assert out["score"].type == pa.list_(pa.float16(), 16)
    np.testing.assert_allclose(np.linalg.norm(vectors(out["score"]), axis=1), 1.0, atol=2e-3)


def test_bad_model_directories(tmp_path, tiny_model_dir):
    with pytest.raises(ModelError, match="'model' parameter"):
        EmbeddingScorer(model="").check()
    missing = tmp_path / "nowhere"
    with pytest.raises(ModelError, match=str(missing)):
        EmbeddingScorer(model=str(missing)).check()
    no_weights = tmp_path / "no_weights"
    no_weights.mkdir()
    shutil.copy(tiny_model_dir / "config.json", no_weights / "config.json")
    with pytest.raises(ModelError, match=f"{no_weights}.*safetensors"):
        EmbeddingScorer(model=str(no_weights)).setup()
    with pytest.raises(ModelError, match="config.json"):
        EmbeddingScorer(model=str(tmp_path)).output_columns()


def test_pickles_without_the_model(tiny_model_dir, texts):
    import pickle

    scorer = EmbeddingScorer(model=str(tiny_model_dir), max_length=32)
    batch = make_table(texts[:4]).to_batches()[0]
    before = scorer.score_batch(batch)["score"]
    clone = pickle.loads(pickle.dumps(scorer))
    assert getattr(clone, "_model", None) is None
    assert clone.score_batch(batch)["score"].equals(before)
