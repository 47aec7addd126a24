"""Scorer costs: model scorers' FLOPs per token from parameter counts and passes, and the
per-machine calibration cache."""

from __future__ import annotations

import json
import os
import socket

import pyarrow as pa
import pytest

from datadiet.models.loading import count_parameters
from datadiet.planning.calibration import cache_path, calibrate
from datadiet.scorers import get_scorer
from tests.proxy_fixtures import proxy_texts, text_batch


def test_model_scorers_declare_2n_flops_per_forward_token(gpt2_proxy, llama_proxy):
    n_gpt2, n_llama = count_parameters(gpt2_proxy.out_dir), count_parameters(llama_proxy.out_dir)
    model = str(gpt2_proxy.out_dir)
    assert get_scorer("loss")(model=model).flops_per_token() == 2 * n_gpt2
    assert get_scorer("el2n")(model=model).flops_per_token() == 2 * n_gpt2
    assert get_scorer("ifd")(model=model).flops_per_token() == 2 * 2 * n_gpt2  # response scored twice
    rho = get_scorer("reducible_loss")(model=model, reference_model=str(llama_proxy.out_dir))
    assert rho.flops_per_token() == 2 * (n_gpt2 + n_llama)
    dynamics = get_scorer("learning_dynamics")(checkpoints=model)
    assert dynamics.flops_per_token() == 2 * sum(count_parameters(c) for c in gpt2_proxy.checkpoints)
    assert len(gpt2_proxy.checkpoints) == 3
    embedding = get_scorer("embedding")(model=model)
    before = embedding.flops_per_token()
    assert before == 2 * n_gpt2
    embedding.setup()
    assert embedding.flops_per_token() == before  # the loaded model has the counted weights
    assert get_scorer("length")().flops_per_token() == 100


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("DATADIET_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _view(texts):
    batch = text_batch(texts)
    from datadiet.stages.ingest import count_word_pieces

    return pa.Table.from_batches([batch]).set_column(2, "n_tokens", count_word_pieces(batch.column("text")))


def test_calibration_measures_and_caches_per_machine(cache_dir, gpt2_proxy):
    view = _view(proxy_texts()[:40])
    scorer = get_scorer("loss")(model=str(gpt2_proxy.out_dir))
    first = calibrate(scorer, view)
    assert not first.cached and first.n_docs == 40 and first.docs_per_s > 0
    assert first.tokens_per_s == pytest.approx(first.n_tokens / first.seconds)
    assert cache_path() == cache_dir / "calibration.json"
    stored = json.loads(cache_path().read_text())
    [key] = stored
    assert f"|{socket.gethostname()}|cpus={os.cpu_count()}|" in key
    again = calibrate(get_scorer("loss")(model=str(gpt2_proxy.out_dir)), view)
    assert again.cached and again.docs_per_s == first.docs_per_s
    other = calibrate(get_scorer("loss")(model=str(gpt2_proxy.out_dir), max_length=32), view)
    assert not other.cached  # other parameters: another fingerprint
    assert len(json.loads(cache_path().read_text())) == 2
    fresh = calibrate(scorer, view, use_cache=False)
    assert not fresh.cached
