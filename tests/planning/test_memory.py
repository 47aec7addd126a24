"""Training memory: bytes per parameter, LoRA worked example, Korthikanti activations,
micro-batch fitting; shapes from config.json."""

from __future__ import annotations

import json

import pytest

from datadiet.errors import ConfigError, InputError
from datadiet.planning.memory import activation_bytes_per_layer, lora_params, training_memory
from datadiet.planning.shapes import ModelShape, shape_for_params, shape_from_config

LLAMA2_7B = {"model_type": "llama", "hidden_size": 4096, "intermediate_size": 11008, "num_hidden_layers": 32,
             "num_attention_heads": 32, "num_key_value_heads": 32, "vocab_size": 32000, "hidden_act": "silu",
             "tie_word_embeddings": False, "max_position_embeddings": 4096}


@pytest.fixture
def llama7b(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(LLAMA2_7B))
    return shape_from_config(tmp_path)


def test_llama2_7b_params_from_config(llama7b):
    assert llama7b.params == 6_738_415_616  # Llama-2-7b's published count


def test_full_finetuning_bf16_adam_is_16_bytes_per_param():
    shape = shape_for_params(7e9)
    est = training_memory(shape, "full", "bf16")
    assert shape.params == 7e9
    assert est.static_bytes / shape.params == pytest.approx(16.0)  # 2 weights + 2 grads + 4 master + 8 Adam
    assert training_memory(shape, "full", "fp32").static_bytes / shape.params == pytest.approx(16.0)
    assert training_memory(shape, "full", "bf16", optimizer="adamw-8bit").static_bytes / shape.params == \
        pytest.approx(10.0)


def test_lora_worked_example(llama7b):
    # PEFT's count for Llama-2-7B, r=16 on q,k,v,o,gate,up,down: 32 x (4 x 16 x 8192 + 3 x 16 x 15104)
    assert lora_params(llama7b, 16, "all") == 39_976_960
    assert lora_params(llama7b, 8, "attention") == 32 * 4 * 8 * 8192
    est = training_memory(llama7b, "lora", "bf16", lora_rank=16)
    # frozen bf16 base (2 bytes) + fp32 adapters with gradients and two Adam moments (16 bytes)
    assert est.static_bytes == 6_738_415_616 * 2 + 39_976_960 * 16
    assert est.trainable_params == 39_976_960


def test_qlora_stores_linear_weights_in_4_bits(llama7b):
    q = training_memory(llama7b, "qlora", "bf16")
    linear = 32 * (4 * 4096 * 4096 + 3 * 4096 * 11008)
    rest = 6_738_415_616 - linear
    dequant_buffer = 4096 * 11008 * 2
    assert q.weights == pytest.approx(linear * 4.127 / 8 + rest * 2 + dequant_buffer + 39_976_960 * 4)
    lora = training_memory(llama7b, "lora", "bf16")
    assert q.static_bytes < lora.static_bytes / 3


def test_activations_follow_korthikanti_eq1():
    # GPT-style block (GELU MLP of width 4h): s b h (34 + 5 a s / h) bytes per layer with 16-bit activations
    shape = ModelShape(hidden=1024, layers=24, heads=16, intermediate=4096, vocab=50257, gated=False)
    s = 2048
    assert activation_bytes_per_layer(shape, s, 2, flash_attention=False) == s * 1024 * (34 + 5 * 16 * s / 1024)
    assert activation_bytes_per_layer(shape, s, 2, flash_attention=True) == s * 1024 * 34


def test_checkpointing_keeps_layer_inputs_only():
    shape = shape_for_params(1e9)
    off = training_memory(shape, "full", "bf16", seq_len=2048, checkpointing=False)
    on = training_memory(shape, "full", "bf16", seq_len=2048, checkpointing=True)
    per_layer = activation_bytes_per_layer(shape, 2048, 2)
    logits = 2048 * shape.vocab * 6
    assert off.activations_per_sequence == pytest.approx(shape.layers * per_layer + logits + 2 * 2048 * shape.hidden)
    assert on.activations_per_sequence == pytest.approx(shape.layers * 2 * 2048 * shape.hidden + per_layer + logits
                                                        + 2 * 2048 * shape.hidden)


def test_largest_micro_batch_that_fits():
    est = training_memory(shape_for_params(1e9), "full", "bf16")
    memory = est.overhead + est.static_bytes + 3.5 * est.activations_per_sequence
    assert est.max_micro_batch(memory) == 3
    assert est.total(3) <= memory < est.total(4)
    assert est.max_micro_batch(est.static_bytes) == 0


def test_bad_options_and_configs(tmp_path):
    shape = shape_for_params(1e9)
    with pytest.raises(ConfigError, match="--precisions"):
        training_memory(shape, precision="fp8")
    with pytest.raises(ConfigError, match="--lora-targets"):
        lora_params(shape, 8, "mlp")
    with pytest.raises(InputError, match="config.json"):
        shape_from_config(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"hidden_size": 8}))
    with pytest.raises(InputError, match="num_hidden_layers"):
        shape_from_config(tmp_path)
