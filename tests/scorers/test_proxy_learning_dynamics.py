"""learning_dynamics over the proxy's three checkpoints."""

# ruff: noqa: F811  (pytest fixtures imported from tests.proxy_fixtures)

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from datadiet.errors import ConfigError
from datadiet.scorers import InMemoryFitContext, get_scorer
from datadiet.scorers.learning_dynamics import LearningDynamicsScorer, expand_checkpoints
from datadiet.scorers.loss import LossScorer
from tests.proxy_fixtures import gpt2_proxy, long_text, one_torch_thread, proxy_texts, text_batch  # noqa: F401


def docs() -> list[str]:
    return proxy_texts()[:24] + [long_text(), "", None]


def test_checkpoints_expand_from_parent_in_step_order(gpt2_proxy):
    expanded = expand_checkpoints(str(gpt2_proxy.out_dir))
    assert [p.rsplit("-", 1)[1] for p in expanded] == ["100", "200", "300"]
    assert expand_checkpoints([str(c) for c in gpt2_proxy.checkpoints[:2]]) == [str(c) for c in gpt2_proxy.checkpoints[:2]]
    with pytest.raises(ConfigError, match="at least 2 checkpoints"):
        LearningDynamicsScorer(checkpoints=[str(gpt2_proxy.checkpoints[0])]).model_paths()


def test_documented_columns_types_and_definitions(gpt2_proxy):
    assert get_scorer("learning_dynamics") is LearningDynamicsScorer
    scorer = LearningDynamicsScorer.from_config(
        {"checkpoints": str(gpt2_proxy.out_dir), "keep_trajectory": True, "forget_delta": 0.0,
         "variability_threshold": 0.5, "confidence_threshold": 0.02}
    )
    assert not scorer.requires_fit
    out = scorer.score_batch(text_batch(docs()))
    expected_types = {"score": pa.float32(), "std_loss": pa.float32(), "learnability": pa.float32(),
                      "forgetting": pa.int32(), "confidence": pa.float32(), "region": pa.string(),
                      "losses": pa.list_(pa.float32())}
    assert scorer.output_columns() == expected_types
    for key, tp in expected_types.items():
        assert out[key].type == tp and len(out[key]) == len(docs())

    # per-checkpoint losses equal the loss scorer run on each checkpoint
    per_ckpt = np.stack([
        LossScorer(model=str(c)).score_batch(text_batch(docs()))["score"].to_numpy(zero_copy_only=False)
        for c in gpt2_proxy.checkpoints
    ], axis=1)
    valid = slice(0, 25)
    losses = np.asarray(out["losses"].to_pylist()[valid], dtype=float)
    np.testing.assert_allclose(losses, per_ckpt[valid], atol=1e-4)
    np.testing.assert_allclose(out["score"].to_numpy(zero_copy_only=False)[valid], losses.mean(1), atol=1e-5)
    np.testing.assert_allclose(out["std_loss"].to_numpy(zero_copy_only=False)[valid], losses.std(1), atol=1e-5)
    np.testing.assert_allclose(out["learnability"].to_numpy(zero_copy_only=False)[valid],
                               losses[:, 0] - losses[:, -1], atol=1e-5)
    confidence = np.exp(-losses).mean(1)
    np.testing.assert_allclose(out["confidence"].to_numpy(zero_copy_only=False)[valid], confidence, rtol=1e-5)
    assert out["forgetting"].to_pylist()[valid] == list((np.diff(losses, axis=1) > 0).sum(1))
    std = losses.std(1)
    expected_region = np.where(std > 0.5, "ambiguous", np.where(confidence >= 0.02, "easy", "hard"))
    assert out["region"].to_pylist()[valid] == list(expected_region)
    assert np.mean(losses[:, 0] > losses[:, -1]) > 0.5  # training lowered most losses
    # unscorable rows
    assert out["null_reason"].to_pylist()[25:] == ["empty_text", "null_text"]
    for key in expected_types:
        assert out[key].to_pylist()[25:] == [None, None]


def test_trajectory_clusters_fit_score_and_round_trip(gpt2_proxy, tmp_path):
    pool = text_batch(proxy_texts()[:60])
    scorer = LearningDynamicsScorer(checkpoints=str(gpt2_proxy.out_dir), n_trajectory_clusters=3,
                                    fit_sample_size=40)
    assert scorer.requires_fit and not scorer.is_fitted()
    with pytest.raises(ConfigError, match="fitted"):
        scorer.score_batch(pool)
    scorer.fit(InMemoryFitContext(pool=pa.Table.from_batches([pool]), seed=0))
    assert scorer.centers_.shape == (3, 3)
    assert np.all(np.diff(scorer.centers_.mean(axis=1)) > 0)  # numbered by mean loss
    out = scorer.score_batch(pool)
    clusters = np.asarray(out["trajectory_cluster"].to_pylist())
    assert out["trajectory_cluster"].type == pa.int32() and set(clusters) <= {0, 1, 2}
    losses, _ = scorer.loss_matrix(pool)
    nearest = ((losses[:, None, :] - scorer.centers_[None]) ** 2).sum(2).argmin(1)
    np.testing.assert_array_equal(clusters, nearest)

    scorer.save_state(tmp_path)
    again = LearningDynamicsScorer(checkpoints=str(gpt2_proxy.out_dir), n_trajectory_clusters=3).load_state(tmp_path)
    assert again.score_batch(pool)["trajectory_cluster"].to_pylist() == list(clusters)
