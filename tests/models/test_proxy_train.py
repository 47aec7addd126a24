"""Proxy training: artifacts, optimizer state, log, determinism, config errors, CLI."""

# ruff: noqa: F811  (pytest fixtures imported from tests.proxy_fixtures)

from __future__ import annotations

import argparse
import json
import math

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoTokenizer

from datadiet.errors import ConfigError, InputError
from datadiet.models import ProxyTrainConfig, load_optimizer_state, train_proxy
from datadiet.models.cli import add_proxy_parser, run_proxy_train
from tests.proxy_fixtures import gpt2_proxy, llama_proxy, one_torch_thread, proxy_texts  # noqa: F401

TINY = dict(n_layer=1, n_embd=32, n_head=2, n_ctx=32, vocab_size=320, steps=6, batch_size=4, warmup=2,
            device="cpu", log_every=2)


def test_checkpoints_final_model_and_log(gpt2_proxy):
    out = gpt2_proxy.out_dir
    assert [c.name for c in gpt2_proxy.checkpoints] == ["checkpoint-100", "checkpoint-200", "checkpoint-300"]
    for d in [out, *gpt2_proxy.checkpoints]:
        for name in ("config.json", "model.safetensors", "optimizer.safetensors", "tokenizer.json",
                     "trainer_state.json"):
            assert (d / name).is_file(), d / name
        assert not list(d.glob("*.bin")) and not list(d.glob("*.pt"))
    records = [json.loads(line) for line in (out / "training_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [50, 100, 150, 200, 250, 300]
    assert all(set(r) == {"step", "loss", "lr", "tokens", "seconds"} for r in records)
    assert records[-1]["tokens"] == 300 * 8 * 64
    assert records[-1]["loss"] < records[0]["loss"] - 0.5
    assert json.loads((out / "proxy_config.json").read_text())["save_steps"] == [100, 200, 300]
    # the final model equals the last checkpoint
    final = load_file(out / "model.safetensors")
    last = load_file(gpt2_proxy.checkpoints[-1] / "model.safetensors")
    assert final.keys() == last.keys() and all(torch.equal(final[k], last[k]) for k in final)


def test_optimizer_state_is_safetensors_per_parameter(gpt2_proxy):
    model = AutoModelForCausalLM.from_pretrained(gpt2_proxy.checkpoints[0])
    moments, meta = load_optimizer_state(gpt2_proxy.checkpoints[0])
    params = dict(model.named_parameters())
    assert set(moments) == set(params)
    for name, m in moments.items():
        assert set(m) == {"exp_avg", "exp_avg_sq"}
        assert m["exp_avg"].shape == params[name].shape and bool((m["exp_avg_sq"] >= 0).all())
    assert meta["step"] == "100" and meta["optimizer_step"] == "100"
    assert json.loads(meta["betas"]) == [0.9, 0.95]
    early, _ = load_optimizer_state(gpt2_proxy.checkpoints[0])
    late, _ = load_optimizer_state(gpt2_proxy.checkpoints[-1])
    name = "transformer.h.0.mlp.c_fc.weight"
    assert not torch.equal(early[name]["exp_avg"], late[name]["exp_avg"])


def test_tokenizer_is_a_fast_byte_level_bpe(gpt2_proxy, llama_proxy):
    tok = AutoTokenizer.from_pretrained(gpt2_proxy.out_dir)
    assert tok.is_fast and tok.eos_token == "<|endoftext|>" and tok.pad_token == "<|pad|>"
    assert len(tok) <= 400
    text = "Unicode too: naïve café — ✓ and\ttabs"
    assert tok.decode(tok(text)["input_ids"]) == text
    assert tok(text)["input_ids"][0] != tok.eos_token_id  # nothing is added when encoding
    config = json.loads((llama_proxy.out_dir / "config.json").read_text())
    assert config["model_type"] == "llama" and config["vocab_size"] == len(AutoTokenizer.from_pretrained(llama_proxy.out_dir))


def test_training_is_deterministic_for_a_seed(tmp_path):
    texts = proxy_texts()[:60]
    threads = torch.get_num_threads()
    try:
        runs = [train_proxy(texts, tmp_path / name, seed=seed, **TINY) for name, seed in (("a", 3), ("b", 3), ("c", 4))]
    finally:
        torch.set_num_threads(threads)
    a, b, c = (load_file(r.out_dir / "model.safetensors") for r in runs)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)
    (opt_a, meta_a), (opt_b, meta_b) = (load_optimizer_state(r.out_dir) for r in runs[:2])
    assert meta_a == meta_b
    assert all(torch.equal(opt_a[n][k], opt_b[n][k]) for n in opt_a for k in opt_a[n])
    strip = [{k: v for k, v in json.loads(line).items() if k != "seconds"}
             for line in (runs[0].out_dir / "training_log.jsonl").read_text().splitlines()]
    again = [{k: v for k, v in json.loads(line).items() if k != "seconds"}
             for line in (runs[1].out_dir / "training_log.jsonl").read_text().splitlines()]
    assert strip == again


def test_shared_tokenizer_and_llama(tmp_path, gpt2_proxy):
    result = train_proxy(proxy_texts()[:30], tmp_path / "shared", tokenizer=str(gpt2_proxy.out_dir),
                         **{**TINY, "arch": "llama", "steps": 2})
    assert (result.out_dir / "tokenizer.json").read_text() == (gpt2_proxy.out_dir / "tokenizer.json").read_text()
    assert AutoModelForCausalLM.from_pretrained(result.out_dir).config.model_type == "llama"


def test_schedule():
    cfg = ProxyTrainConfig(lr=1.0, warmup=10, steps=110, min_lr_ratio=0.1)
    assert cfg.lr_at(5) == pytest.approx(0.5) and cfg.lr_at(10) == pytest.approx(1.0)
    assert cfg.lr_at(60) == pytest.approx(0.1 + 0.9 * 0.5)
    assert cfg.lr_at(110) == pytest.approx(0.1)
    assert ProxyTrainConfig(lr=1.0, warmup=0, steps=10, schedule="linear", min_lr_ratio=0.0).lr_at(5) == pytest.approx(0.5)
    assert ProxyTrainConfig(lr=2.0, warmup=0, steps=10, schedule="constant").lr_at(7) == 2.0
    assert math.isclose(ProxyTrainConfig(lr=1.0, warmup=0, steps=10).lr_at(0), 1.0)


@pytest.mark.parametrize("options,match", [
    ({"n_embd": 30, "n_head": 4}, "multiple of n_head"),
    ({"steps": 10, "save_steps": [5, 50]}, r"save_steps \[50\] are beyond steps"),
    ({"save_steps": [0]}, "'save_steps' parameter"),
    ({"arch": "bert"}, "'arch' parameter of ProxyTrainConfig must be 'gpt2' or 'llama'"),
    ({"lr": 0.0}, "'lr' parameter"),
    ({"layers": 2}, "unknown key 'layers'"),
])
def test_bad_options_are_config_errors(tmp_path, options, match):
    with pytest.raises(ConfigError, match=match):
        train_proxy(["some text here"], tmp_path / "x", **options)


def test_no_text_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="no non-empty texts"):
        train_proxy(["", ""], tmp_path / "x", **TINY)


def test_cli_trains_from_parquet(tmp_path, capsys):
    path = tmp_path / "train.parquet"
    pq.write_table(pa.table({"body": proxy_texts()[:40]}), path)
    (tmp_path / "opts.yaml").write_text("n_ctx: 32\nwarmup: 1\nlog_every: 1\n")
    parser = argparse.ArgumentParser()
    add_proxy_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args([
        "proxy", "train", "--input", str(path), "--text-column", "body", "-o", str(tmp_path / "out"),
        "--config", str(tmp_path / "opts.yaml"), "--layers", "1", "--width", "32", "--heads", "2",
        "--vocab", "300", "--steps", "4", "--batch-size", "2", "--save-steps", "2,4", "--seed", "1",
        "--max-rows", "20", "--device", "cpu",
    ])
    assert args.func(args) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["checkpoints"] == [str(tmp_path / "out" / "checkpoint-2"), str(tmp_path / "out" / "checkpoint-4")]
    saved = json.loads((tmp_path / "out" / "proxy_config.json").read_text())
    assert (saved["n_layer"], saved["n_embd"], saved["n_ctx"], saved["log_every"], saved["seed"]) == (1, 32, 32, 1, 1)
    assert len((tmp_path / "out" / "training_log.jsonl").read_text().splitlines()) == 4
    # a custom reader sees --max-rows and the text column
    seen = {}

    def reader(paths, column, limit):
        seen.update(paths=paths, column=column, limit=limit)
        return proxy_texts()[:limit]

    args.output = str(tmp_path / "out2")
    assert run_proxy_train(args, read_texts=reader) == 0
    assert seen == {"paths": [str(path)], "column": "body", "limit": 20}
    with pytest.raises(SystemExit):
        parser.parse_args(["proxy", "train", "--input", "x", "-o", "y", "--save-steps", "a,b"])
