"""The structured engine equals exact per-example gradients under the same factorised
projection; exact per-example gradients equal a loop of single-example backward passes."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from datadiet.errors import ConfigError
from datadiet.gradients.exact import ExactEngine, per_example_grads
from datadiet.gradients.featurize import featurize
from datadiet.gradients.params import add_lora, resolve_layers
from datadiet.gradients.structured import StructuredEngine, weighted_loss

torch = pytest.importorskip("torch")


def tiny(arch: str):
    """A randomly initialised tiny GPT-2 (Conv1D layers) or Llama (nn.Linear), float64, tied head."""
    from transformers import AutoModelForCausalLM, GPT2Config, LlamaConfig

    torch.manual_seed(0)
    if arch == "gpt2":
        cfg = GPT2Config(n_layer=2, n_embd=32, n_head=4, vocab_size=97, n_positions=32, bos_token_id=0,
                         eos_token_id=0, pad_token_id=1)
    else:
        cfg = LlamaConfig(num_hidden_layers=2, hidden_size=32, intermediate_size=64, num_attention_heads=4,
                          num_key_value_heads=4, vocab_size=97, max_position_embeddings=32, tie_word_embeddings=True,
                          bos_token_id=0, eos_token_id=0, pad_token_id=1)
    return AutoModelForCausalLM.from_config(cfg).double().eval().requires_grad_(False)


def inputs(batch=3, width=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, 97, (batch, width), generator=g)
    labels = torch.randint(0, 97, (batch, width), generator=g)
    weights = torch.rand((batch, width), generator=g, dtype=torch.float64)
    weights[0, 8:] = 0  # a shorter row: its tail is padding
    return ids, labels, weights


def factorised(engine, grads, layers):
    parts = []
    for layer, (p_out, p_in) in zip(layers, engine.factors):
        g = grads[f"{layer.name}.weight"]
        parts.append(torch.einsum("ko,boi,ji->bkj", p_out.double(), g, p_in.double()).reshape(g.shape[0], -1))
    return torch.cat(parts, dim=1)


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_structured_equals_exact_factorised(arch):
    model = tiny(arch)
    layers = resolve_layers(model, "linear")
    assert len(layers) == 2 * (4 if arch == "gpt2" else 7) + 1
    ids, labels, weights = inputs()
    engine = StructuredEngine(model, layers, d=512, seed=1)
    got = engine.features(ids, labels, weights).double()
    want = factorised(engine, per_example_grads(model, layers, ids, labels, weights, chunk=2), layers)
    assert engine.dim == got.shape[1] == want.shape[1] > 400
    scale = float(want.abs().max())
    assert float((got - want).abs().max()) <= 1e-5 * scale
    assert scale > 0


def test_exact_equals_a_loop_of_single_backward_passes():
    model = tiny("gpt2")
    layers = resolve_layers(model, ["last:1", "lm_head", "transformer.ln_f"])
    ids, labels, weights = inputs()
    grads = per_example_grads(model, layers, ids, labels, weights, chunk=2)
    # reference: an untied copy, so the head's gradient is that of the head alone
    ref = copy.deepcopy(model)
    ref.lm_head.weight = torch.nn.Parameter(ref.lm_head.weight.detach().clone())
    ref_layers = resolve_layers(ref, ["last:1", "lm_head", "transformer.ln_f"])
    params = [getattr(la.module, p) for la in ref_layers for p in la.param_names()]
    for b in range(ids.shape[0]):
        for p in params:
            p.requires_grad_(True)
        loss = weighted_loss(ref, ids[b : b + 1], labels[b : b + 1], weights[b : b + 1])
        single = torch.autograd.grad(loss, params)
        for p in params:
            p.requires_grad_(False)
        i = 0
        for la in ref_layers:
            for name in la.param_names():
                g = single[i].T if la.kind == "conv1d" else single[i]
                np.testing.assert_allclose(grads[f"{la.name}.{name}"][b].numpy(), g.numpy(), atol=1e-5, rtol=0)
                i += 1
    assert any(la.kind == "other" for la in layers)


def test_lora_and_preconditioned_structured_features():
    model = add_lora(tiny("llama"), rank=4, alpha=8.0, seed=0)
    layers = resolve_layers(model, "lora")
    assert layers and all(".lora_" in la.name for la in layers)
    ids, labels, weights = inputs()
    grads = per_example_grads(model, layers, ids, labels, weights, chunk=3)
    g = torch.Generator().manual_seed(5)
    scales = [(torch.rand(la.out_features, generator=g, dtype=torch.float32) + 0.5,
               torch.rand(la.in_features, generator=g, dtype=torch.float32) + 0.5) for la in layers]
    engine = StructuredEngine(model, layers, d=256, seed=2, scales=scales)
    scaled = {f"{la.name}.weight": grads[f"{la.name}.weight"] * (s_out[:, None] * s_in[None, :]).double()
              for la, (s_out, s_in) in zip(layers, scales)}
    want = factorised(engine, scaled, layers)
    got = engine.features(ids, labels, weights).double()
    assert float((got - want).abs().max()) <= 1e-5 * float(want.abs().max())
    assert float(want.abs().max()) > 0  # lora_B has a gradient even though B starts at zero


def test_windows_add_up_to_the_document_gradient():
    """A document longer than max_length: its windows' features sum to the projected gradient
    of its mean token loss (computed here in one pass over the whole document)."""
    model = tiny("gpt2")
    layers = resolve_layers(model, "last:1")
    engine = StructuredEngine(model, layers, d=128, seed=0)
    rng = np.random.default_rng(0)
    seqs = [rng.integers(2, 97, size=n).astype(np.int64) for n in (30, 9, 2)]
    [windowed], counts = featurize([engine], seqs, max_length=16, stride=8, batch_tokens=64)
    assert counts.tolist() == [29, 8, 1]
    for i, s in enumerate(seqs):
        ids = torch.from_numpy(s[None, :])
        labels = torch.zeros_like(ids)
        labels[0, :-1] = ids[0, 1:]
        w = torch.zeros(ids.shape, dtype=torch.float64)
        w[0, :-1] = 1.0 / (len(s) - 1)
        whole = engine.features(ids, labels, w).double().numpy()[0]
        if len(s) <= 16:
            np.testing.assert_allclose(windowed[i], whole, rtol=1e-5, atol=1e-7)
        else:
            # windows see less context than the whole pass, so only close, not equal
            cos = windowed[i] @ whole / np.linalg.norm(windowed[i]) / np.linalg.norm(whole)
            assert cos > 0.8


def test_engine_errors():
    model = tiny("gpt2")
    with pytest.raises(ConfigError, match="matches no parameter.*transformer.h.0.attn.c_attn"):
        resolve_layers(model, "transformer.h.9.*")
    with pytest.raises(ConfigError, match="last:K"):
        resolve_layers(model, "last:5")
    with pytest.raises(ConfigError, match="linear layers only"):
        StructuredEngine(model, resolve_layers(model, "transformer.ln_f"), d=16, seed=0)
    with pytest.raises(ConfigError, match="projection_dim"):
        ExactEngine(model, resolve_layers(model, "transformer.ln_f"), d=10_000, seed=0)
