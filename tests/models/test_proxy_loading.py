"""Model directory checks, loading once per process, parameter counts and fingerprints."""

# ruff: noqa: F811  (pytest fixtures imported from tests.proxy_fixtures)

from __future__ import annotations

import json
import shutil

import pytest
import torch

from datadiet.errors import ConfigError, ModelError
from datadiet.models.loading import (
    check_model_dir,
    count_parameters,
    load_causal_lm,
    load_tokenizer,
    model_fingerprint,
    resolve_device,
    resolve_dtype,
)
from datadiet.scorers.loss import LossScorer
from tests.proxy_fixtures import gpt2_proxy, one_torch_thread  # noqa: F401


def copy_model(src, dst, skip=()):
    dst.mkdir()
    for f in src.iterdir():
        if f.is_file() and f.name not in skip:
            shutil.copy(f, dst / f.name)
    return dst


def test_missing_directory(tmp_path):
    path = tmp_path / "nope"
    with pytest.raises(ModelError, match=f"{path}.*does not exist"):
        check_model_dir(path)
    with pytest.raises(ModelError, match=str(path)):
        LossScorer(model=str(path)).check_models()
    with pytest.raises(ModelError, match="empty"):
        check_model_dir("")


def test_file_instead_of_directory(tmp_path):
    f = tmp_path / "model.txt"
    f.write_text("x")
    with pytest.raises(ModelError, match="not a directory"):
        check_model_dir(f)


def test_no_config_or_no_weights(gpt2_proxy, tmp_path):
    no_config = copy_model(gpt2_proxy.out_dir, tmp_path / "a", skip={"config.json"})
    with pytest.raises(ModelError, match=f"{no_config}.*config.json"):
        check_model_dir(no_config)
    no_weights = copy_model(gpt2_proxy.out_dir, tmp_path / "b", skip={"model.safetensors", "optimizer.safetensors"})
    with pytest.raises(ModelError, match=f"{no_weights}.*safetensors"):
        check_model_dir(no_weights)
    (no_weights / "pytorch_model.bin").write_bytes(b"pickle")
    with pytest.raises(ModelError, match="pickled weights"):
        LossScorer(model=str(no_weights)).setup()
    no_tok = copy_model(gpt2_proxy.out_dir, tmp_path / "c", skip={"tokenizer.json", "tokenizer_config.json"})
    with pytest.raises(ModelError, match="tokenizer"):
        check_model_dir(no_tok)
    bad = copy_model(gpt2_proxy.out_dir, tmp_path / "d")
    (bad / "config.json").write_text("{not json")
    with pytest.raises(ModelError, match="config.json cannot be read"):
        check_model_dir(bad)


def test_remote_code_needs_permission(gpt2_proxy, tmp_path):
    path = copy_model(gpt2_proxy.out_dir, tmp_path / "remote")
    config = json.loads((path / "config.json").read_text())
    config["auto_map"] = {"AutoModelForCausalLM": "modeling_x.XForCausalLM"}
    (path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelError, match=f"{path}.*remote code.*trust_remote_code"):
        check_model_dir(path)
    with pytest.raises(ModelError, match="trust_remote_code"):
        LossScorer(model=str(path)).setup()
    assert check_model_dir(path, trust_remote_code=True) == path.resolve()


def test_loaded_once_per_key(gpt2_proxy):
    a = load_causal_lm(gpt2_proxy.out_dir, dtype="float32", device="cpu")
    b = load_causal_lm(str(gpt2_proxy.out_dir) + "/", dtype="auto", device="auto")
    assert a is b  # auto resolves to float32 on CPU
    assert not a.training and not any(p.requires_grad for p in a.parameters())
    from transformers.activations import GELUTanh, NewGELUActivation

    assert not any(isinstance(m, NewGELUActivation) for m in a.modules())  # fused on load
    assert sum(isinstance(m, GELUTanh) for m in a.modules()) == a.config.n_layer
    c = load_causal_lm(gpt2_proxy.out_dir, dtype="bfloat16", device="cpu")
    assert c is not a and next(c.parameters()).dtype == torch.bfloat16
    assert load_tokenizer(gpt2_proxy.out_dir) is load_tokenizer(gpt2_proxy.out_dir)


def test_device_and_dtype_resolution():
    cpu = resolve_device("cpu")
    assert resolve_dtype("auto", cpu) == torch.float32
    assert resolve_dtype("bfloat16", cpu) == torch.bfloat16
    with pytest.raises(ConfigError, match="dtype"):
        resolve_dtype("int4", cpu)
    with pytest.raises(ConfigError, match="device"):
        resolve_device("tpu-ish")
    if not torch.cuda.is_available():
        assert resolve_device("auto").type == "cpu"
        with pytest.raises(ConfigError, match="CUDA"):
            resolve_device("cuda")


def test_parameter_count_and_fingerprint(gpt2_proxy, tmp_path):
    model = load_causal_lm(gpt2_proxy.out_dir, dtype="float32", device="cpu")
    assert count_parameters(gpt2_proxy.out_dir) == sum(p.numel() for p in model.parameters())
    copy = copy_model(gpt2_proxy.out_dir, tmp_path / "copy")
    assert model_fingerprint(copy) == model_fingerprint(gpt2_proxy.out_dir)
    shutil.copy(gpt2_proxy.checkpoints[0] / "model.safetensors", copy / "model.safetensors")
    assert model_fingerprint(copy) != model_fingerprint(gpt2_proxy.out_dir)
    fp = LossScorer(model=str(copy)).state_fingerprint()
    assert fp == model_fingerprint(copy)
