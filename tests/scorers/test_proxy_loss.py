"""loss, perplexity, el2n and reducible_loss against direct transformers computations."""

# ruff: noqa: F811  (pytest fixtures imported from tests.proxy_fixtures)

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest
import torch

from datadiet.errors import ConfigError
from datadiet.scorers import get_scorer
from datadiet.scorers.el2n import EL2NScorer
from datadiet.scorers.loss import LossScorer, PerplexityScorer
from datadiet.scorers.reducible_loss import ReducibleLossScorer
from tests.proxy_fixtures import (  # noqa: F401
    direct_loss,
    gpt2_proxy,
    gpt_neo_model,
    llama_proxy,
    long_text,
    one_torch_thread,
    plain_model,
    proxy_texts,
    text_batch,
)


def short_texts(model_dir, n=14, max_tokens=64) -> list[str]:
    """Real texts cut to varied lengths that fit the proxy's context."""
    _, tok = plain_model(model_dir)
    out = []
    for i, text in enumerate(proxy_texts()):
        cut = text[: 25 + 17 * (i % 9)]
        if 2 <= len(tok(cut)["input_ids"]) <= max_tokens:
            out.append(cut)
        if len(out) == n:
            break
    return out


def scores(scorer, texts, key="score") -> np.ndarray:
    return np.asarray(scorer.score_batch(text_batch(texts))[key].to_numpy(zero_copy_only=False), dtype=float)


def test_registered_names():
    assert get_scorer("loss") is LossScorer
    assert get_scorer("perplexity") is PerplexityScorer
    assert get_scorer("el2n") is EL2NScorer
    assert get_scorer("reducible_loss") is ReducibleLossScorer


def test_loss_matches_direct_model_loss(gpt2_proxy):
    texts = short_texts(gpt2_proxy.out_dir)
    scorer = LossScorer.from_config({"model": str(gpt2_proxy.out_dir), "device": "cpu"})
    out = scorer.score_batch(text_batch(texts))
    got = out["score"].to_numpy()
    for text, value, n in zip(texts, got, out["n_scored_tokens"].to_pylist()):
        expected, n_expected = direct_loss(gpt2_proxy.out_dir, text)
        assert value == pytest.approx(expected, abs=1e-4)
        assert n == n_expected
    assert out["score"].type == "float" and out["n_scored_tokens"].type == "int64"
    assert out["null_reason"].null_count == len(texts)


def test_batching_and_order_change_no_score(gpt2_proxy):
    texts = short_texts(gpt2_proxy.out_dir)
    model = str(gpt2_proxy.out_dir)
    reference = scores(LossScorer(model=model, batch_tokens=64), texts)  # about one document per batch
    perm = np.random.default_rng(0).permutation(len(texts))
    for batch_tokens in (130, 500, 100_000):
        scorer = LossScorer(model=model, batch_tokens=batch_tokens)
        np.testing.assert_allclose(scores(scorer, texts), reference, atol=1e-4)
        shuffled = scores(scorer, [texts[i] for i in perm])
        np.testing.assert_allclose(shuffled, reference[perm], atol=1e-4)
    # the same documents scored inside a larger, mixed batch
    mixed = scores(LossScorer(model=model), texts + proxy_texts()[:10])
    np.testing.assert_allclose(mixed[: len(texts)], reference, atol=1e-4)


def manual_windowed(model_dir, text, max_length, stride) -> tuple[float, int]:
    """The Hugging Face perplexity guide's strided loop, token-weighted."""
    model, tok = plain_model(model_dir)
    ids = torch.tensor([tok(text)["input_ids"]])
    n = ids.shape[1]
    nll_sum, count, prev_end = 0.0, 0, 0
    for begin in range(0, n, stride):
        end = min(begin + max_length, n)
        trg_len = end - prev_end
        window = ids[:, begin:end]
        labels = window.clone()
        labels[:, :-trg_len] = -100
        with torch.no_grad():
            loss = model(input_ids=window, labels=labels).loss
        valid = int((labels[:, 1:] != -100).sum())
        nll_sum += float(loss) * valid
        count += valid
        prev_end = end
        if end == n:
            break
    return nll_sum / count, count


@pytest.mark.parametrize("stride", [16, 48])
def test_long_document_is_windowed_like_manual_loop(gpt2_proxy, stride):
    text = long_text()
    _, tok = plain_model(gpt2_proxy.out_dir)
    n_tokens = len(tok(text)["input_ids"])
    assert n_tokens > 5 * 64
    scorer = LossScorer(model=str(gpt2_proxy.out_dir), max_length=64, stride=stride)
    out = scorer.score_batch(text_batch([text, "A short one about the zebra."]))
    expected, count = manual_windowed(gpt2_proxy.out_dir, text, 64, stride)
    assert out["score"][0].as_py() == pytest.approx(expected, abs=1e-4)
    assert out["n_scored_tokens"][0].as_py() == count == n_tokens - 1  # every token scored once


def test_defaults_follow_model_context(gpt2_proxy):
    scorer = LossScorer(model=str(gpt2_proxy.out_dir))
    scorer.setup()
    settings = scorer.resolved_settings()
    assert settings["max_length"] == 64 and settings["stride"] == 32
    with pytest.raises(ConfigError, match="model context"):
        LossScorer(model=str(gpt2_proxy.out_dir), max_length=128).setup()


def test_perplexity_is_exp_of_loss(gpt2_proxy):
    texts = short_texts(gpt2_proxy.out_dir, n=5) + [long_text()]
    loss = scores(LossScorer(model=str(gpt2_proxy.out_dir)), texts)
    ppl = scores(PerplexityScorer(model=str(gpt2_proxy.out_dir)), texts)
    np.testing.assert_allclose(ppl, np.exp(loss), rtol=1e-5)


@pytest.mark.parametrize("cls", [LossScorer, PerplexityScorer, EL2NScorer])
def test_unscorable_rows_are_null_with_reason(gpt2_proxy, cls):
    out = cls(model=str(gpt2_proxy.out_dir)).score_batch(text_batch([None, "", "a", "The zebra eats grass."]))
    assert out["score"].to_pylist()[:3] == [None, None, None]
    assert out["null_reason"].to_pylist() == ["null_text", "empty_text", "too_few_tokens", None]
    assert math.isfinite(out["score"][3].as_py())
    assert out["n_scored_tokens"].to_pylist()[:3] == [0, 0, 0]


def test_el2n_in_range_and_matches_manual(gpt2_proxy):
    texts = short_texts(gpt2_proxy.out_dir, n=6)
    got = scores(EL2NScorer(model=str(gpt2_proxy.out_dir)), texts)
    assert np.all((got >= 0) & (got <= math.sqrt(2)))
    model, tok = plain_model(gpt2_proxy.out_dir)
    for text, value in zip(texts, got):
        ids = torch.tensor([tok(text)["input_ids"]])
        with torch.no_grad():
            probs = torch.softmax(model(input_ids=ids).logits[0, :-1].double(), dim=-1)
        onehot = torch.nn.functional.one_hot(ids[0, 1:], probs.shape[-1]).double()
        assert value == pytest.approx(float((probs - onehot).norm(dim=-1).mean()), abs=1e-4)


def test_reducible_loss_is_difference_of_two_losses(gpt2_proxy):
    texts = short_texts(gpt2_proxy.out_dir, n=6) + [long_text()]
    main, ref = str(gpt2_proxy.out_dir), str(gpt2_proxy.checkpoints[0])
    out = ReducibleLossScorer(model=main, reference_model=ref).score_batch(text_batch(texts))
    loss_main = scores(LossScorer(model=main), texts)
    loss_ref = scores(LossScorer(model=ref), texts)
    np.testing.assert_allclose(out["loss"].to_numpy(), loss_main, atol=1e-5)
    np.testing.assert_allclose(out["reference_loss"].to_numpy(), loss_ref, atol=1e-5)
    np.testing.assert_allclose(out["score"].to_numpy(), loss_main - loss_ref, atol=1e-5)
    assert np.mean(loss_main < loss_ref) > 0.5  # the later checkpoint learned something


def test_reducible_loss_with_different_tokenizers(gpt2_proxy, llama_proxy):
    texts = short_texts(gpt2_proxy.out_dir, n=5) + ["", "Jupiter is the largest planet."]
    main, ref = str(gpt2_proxy.out_dir), str(llama_proxy.out_dir)
    out = ReducibleLossScorer(model=main, reference_model=ref).score_batch(text_batch(texts))
    expected = scores(LossScorer(model=main), texts) - scores(LossScorer(model=ref), texts)
    np.testing.assert_allclose(out["score"].to_numpy(zero_copy_only=False)[:-2], expected[:-2], atol=1e-5)
    assert out["score"][5].as_py() is None and out["null_reason"][5].as_py() == "empty_text"


def test_llama_and_generic_models_match_direct_loss(llama_proxy, gpt_neo_model):
    for path in (llama_proxy.out_dir, gpt_neo_model):
        texts = short_texts(path, n=5)
        got = scores(LossScorer(model=str(path), batch_tokens=100), texts)
        for text, value in zip(texts, got):
            assert value == pytest.approx(direct_loss(path, text)[0], abs=1e-4)


def test_parameter_errors_name_the_parameter(gpt2_proxy):
    model = str(gpt2_proxy.out_dir)
    with pytest.raises(ConfigError, match=r"'max_length' parameter of LossScorer must be an int >= 2. Got 0"):
        LossScorer.from_config({"model": model, "max_length": 0})
    with pytest.raises(ConfigError, match="stride"):
        LossScorer.from_config({"model": model, "max_length": 32, "stride": 32})
    with pytest.raises(ConfigError, match="max_memory"):
        LossScorer.from_config({"model": model, "max_memory": "lots"})
    with pytest.raises(ConfigError, match="missing required key 'model'"):
        LossScorer.from_config({})
    with pytest.raises(ConfigError, match="dtype"):
        LossScorer.from_config({"model": model, "dtype": "float8"})


def test_max_memory_bounds_the_batch_without_changing_scores(gpt2_proxy):
    model = str(gpt2_proxy.out_dir)
    texts = short_texts(gpt2_proxy.out_dir)
    small = LossScorer(model=model, max_memory="2.5MB")
    small.setup()
    big = LossScorer(model=model, max_memory="1GB")
    big.setup()
    assert 64 <= small.resolved_settings()["batch_tokens"] < big.resolved_settings()["batch_tokens"]
    np.testing.assert_allclose(scores(small, texts), scores(big, texts), atol=1e-4)
    with pytest.raises(ConfigError, match="max_memory"):
        LossScorer(model=model, max_memory="100KB").setup()


def test_flops_per_token_and_pickling(gpt2_proxy):
    scorer = LossScorer(model=str(gpt2_proxy.out_dir))
    model, _ = plain_model(gpt2_proxy.out_dir)
    assert scorer.flops_per_token() == 2 * sum(p.numel() for p in model.parameters())
    scorer.setup()
    clone = pickle.loads(pickle.dumps(scorer))
    assert not hasattr(clone, "_engine") and clone.get_params() == scorer.get_params()
    texts = short_texts(gpt2_proxy.out_dir, n=3)
    np.testing.assert_allclose(scores(clone, texts), scores(scorer, texts), atol=1e-6)
