"""Gradient scorers (grad_norm, grad_features, less, tracin) on real proxy checkpoints: LESS
finds the target's domain, GraNd's projected norm estimates the exact norm, the pipeline runs
them from recipes, and every bad input is a clear error before any shard is scored."""

# ruff: noqa: F811  (pytest fixtures imported from tests.proxy_fixtures)

from __future__ import annotations

import json
import shutil

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

import datadiet
from datadiet.errors import ConfigError, ModelError
from datadiet.scorers import InMemoryFitContext, get_scorer
from tests.conftest import SAMPLES
from tests.proxy_fixtures import _train, gpt2_proxy, one_torch_thread, text_batch  # noqa: F401


def corpus_rows(start: int, n: int, chars: int = 300) -> pa.Table:
    t = pq.read_table(SAMPLES / "corpus").slice(start, n)
    return t.set_column(1, "text", pc.utf8_slice_codeunits(t.column("text"), 0, chars))


def view(table: pa.Table, id_col: str = "id") -> pa.Table:
    return pa.table({"doc_id": table.column(id_col), "text": table.column("text"),
                     "n_tokens": pa.array(np.zeros(table.num_rows, np.int64))})


def prose_target(n: int = 40) -> pa.Table:
    rows = [json.loads(line) for line in (SAMPLES / "target" / "prose.jsonl").read_text().splitlines()][:n]
    return view(pa.table({"id": [r["id"] for r in rows], "text": [r["text"][:300] for r in rows]}))


@pytest.fixture(scope="module")
def mix_proxy(tmp_path_factory):
    """A tiny GPT-2 trained briefly on the sample corpus mixture (code and prose), so its
    gradients tell the domains apart (a proxy that memorised the prose target would not)."""
    texts = [t for t in corpus_rows(600, 400, 400).column("text").to_pylist() if t]
    return _train("mix", tmp_path_factory.mktemp("proxy"), texts, n_layer=2, n_embd=32, n_head=4, n_ctx=64,
                  vocab_size=300, steps=80, batch_size=8, lr=1e-2, warmup=10, save_steps=[80], seed=0, log_every=20)


@pytest.mark.slow
def test_less_puts_the_target_domain_in_the_top_decile(mix_proxy):
    pool_rows = corpus_rows(0, 300)
    pool, sources = view(pool_rows), np.asarray(pool_rows.column("source").to_pylist())
    scorer = get_scorer("less").from_config({"checkpoints": [str(mix_proxy.checkpoints[0])], "params": "lm_head",
                                             "projection_dim": 512})
    scorer.fit(InMemoryFitContext(pool=pool, target=prose_target()))
    out = scorer.score_batch(pool.combine_chunks().to_batches(max_chunksize=1000)[0])
    scores = out["score"].to_numpy(zero_copy_only=False)
    valid = ~np.isnan(scores)
    assert out["score"].null_count == int((~valid).sum()) > 0  # the empty junk rows
    order = np.argsort(-np.where(valid, scores, -np.inf), kind="stable")[: len(scores) // 10]
    share = float(np.mean(sources == "prose"))
    top_share = float(np.mean(sources[order] == "prose"))
    assert top_share >= 2.5 * share, (top_share, share)


def test_grad_norm_estimates_the_exact_norm(gpt2_proxy):
    import torch

    from datadiet.gradients.exact import per_example_grads
    from datadiet.gradients.featurize import window_batch
    from datadiet.models.batching import make_windows

    ckpt = str(gpt2_proxy.checkpoints[0])
    texts = ["The assignment statement binds names to objects.", "def f(x):\n    return x + 1\n", "", "ok ok"]
    scorer = get_scorer("grad_norm")(checkpoints=ckpt, params="last:1", projection_dim=2048, engine="exact")
    out = scorer.score_batch(text_batch(texts))
    structured = get_scorer("grad_norm")(checkpoints=ckpt, params="last:1", projection_dim=2048)
    rough = structured.score_batch(text_batch(texts))["score"].to_numpy(zero_copy_only=False)
    assert out["null_reason"].to_pylist()[2] == "empty_text"
    got = out["score"].to_numpy(zero_copy_only=False)
    seqs, _, _ = scorer._sequences(text_batch(texts[:2]))
    w = make_windows(np.array([len(s) for s in seqs]), 64, 32)
    ids, labels, weights = window_batch(seqs, w, np.arange(len(w)), 1.0 / np.array([len(s) - 1 for s in seqs]))
    model, layers = scorer._engines[0].model, scorer._engines[0].layers
    grads = per_example_grads(model, layers, torch.from_numpy(ids), torch.from_numpy(labels), torch.from_numpy(weights))
    exact = torch.sqrt(sum((g.double() ** 2).flatten(1).sum(1) for g in grads.values())).numpy()
    np.testing.assert_allclose(got[:2], exact, rtol=0.1)  # dense JL: relative error ~ sqrt(2/d) ~ 3%
    # the factorised projection of a few-token gradient (nearly rank one) is noisier: each side
    # is a JL projection to only ~sqrt(d / layers) dims
    np.testing.assert_allclose(rough[:2], exact, rtol=0.4)
    assert got[0] != got[1]


def test_features_are_deterministic_and_float16(gpt2_proxy):
    ckpt = str(gpt2_proxy.checkpoints[1])
    texts = [f"Example number {i} says something about lists and loops." for i in range(6)]
    a = get_scorer("grad_features")(checkpoints=ckpt, params="lm_head", projection_dim=256)
    cols = a.score_batch(text_batch(texts))["score"]
    assert cols.type == pa.list_(pa.float16(), 256) == a.output_columns()["score"]
    b = get_scorer("grad_features")(checkpoints=ckpt, params="lm_head", projection_dim=256)
    again = pa.concat_arrays([b.score_batch(text_batch(texts[:2]))["score"], b.score_batch(text_batch(texts[2:]))["score"]])
    np.testing.assert_allclose(np.stack(again.to_numpy(zero_copy_only=False)).astype(np.float32),
                               np.stack(cols.to_numpy(zero_copy_only=False)).astype(np.float32), atol=2e-3, rtol=1e-2)
    other_seed = get_scorer("grad_features")(checkpoints=ckpt, params="lm_head", projection_dim=256, seed=1)
    assert other_seed.state_fingerprint() == a.state_fingerprint()  # seed enters via the parameters
    assert other_seed.non_default_params() != a.non_default_params()


def _pipeline(tmp_path, scorer: dict, target_rows: list[str] | None = None):
    pq.write_table(pa.table({"id": ["a", "b"], "text": ["some text here", "more text there"]}), tmp_path / "in.parquet")
    config = {"source": {"paths": str(tmp_path / "in.parquet"), "id_column": "id"}, "scorers": [scorer],
              "output": {"path": str(tmp_path / "out")}, "execution": {"scheduler": "synchronous", "progress": False}}
    if target_rows is not None:
        (tmp_path / "t.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in target_rows))
        config["target"] = {"paths": str(tmp_path / "t.jsonl")}
    return datadiet.Pipeline.from_config(config)


def test_bad_inputs_fail_before_compute(tmp_path, gpt2_proxy):
    ckpt = gpt2_proxy.checkpoints[0]
    base = {"type": "less", "checkpoints": str(ckpt)}
    with pytest.raises(ConfigError, match=r"params: 'transformer.h.7.\*' matches no parameter.*transformer.h.0.attn.c_attn"):
        _pipeline(tmp_path, {**base, "params": "transformer.h.7.*"}).validate()
    with pytest.raises(ConfigError, match="'projection_dim' parameter of LessScorer must be an int >= 1"):
        _pipeline(tmp_path, {**base, "projection_dim": 0}).validate()
    with pytest.raises(ConfigError, match="projection_dim.*<= the number of covered parameters"):
        _pipeline(tmp_path, {**base, "params": "lm_head", "projection_dim": 10**6}).validate()
    with pytest.raises(ConfigError, match="structured engine covers linear layers only"):
        _pipeline(tmp_path, {**base, "params": "transformer.ln_f", "projection_dim": 16}).validate()
    bare = tmp_path / "no_optimizer"
    shutil.copytree(ckpt, bare)
    (bare / "optimizer.safetensors").unlink()
    with pytest.raises(ModelError, match="precondition: adam needs .*optimizer.safetensors"):
        _pipeline(tmp_path, {**base, "checkpoints": str(bare), "precondition": "adam"}).validate()
    other = tmp_path / "other_tokenizer"
    shutil.copytree(ckpt, other)
    tok = json.loads((other / "tokenizer.json").read_text())
    vocab = tok["model"]["vocab"]
    a, b = sorted(vocab)[100:102]
    vocab[a], vocab[b] = vocab[b], vocab[a]
    (other / "tokenizer.json").write_text(json.dumps(tok))
    with pytest.raises(ModelError, match="other_tokenizer has a different tokenizer"):
        _pipeline(tmp_path, {**base, "checkpoints": [str(ckpt), str(other)]}).validate()
    # a target set with no scorable row: an error naming it, in the fit step before scoring
    with pytest.raises(ConfigError, match="target set '\\(default\\)' has no scorable rows"):
        _pipeline(tmp_path, {**base, "params": "lm_head", "projection_dim": 64}, ["", "x"]).run()
    assert not list((tmp_path / "out" / "scores").glob("less/*/*.parquet"))


@pytest.mark.slow
def test_tracin_and_less_from_a_pipeline_with_two_targets(tmp_path, gpt2_proxy):
    texts = corpus_rows(0, 24, 200)
    pq.write_table(texts, tmp_path / "in.parquet")
    (tmp_path / "prose.jsonl").write_text("".join(json.dumps({"text": t}) + "\n"
                                                  for t in prose_target(8).column("text").to_pylist()))
    code = [t for t, s in zip(corpus_rows(400, 60, 200).column("text").to_pylist(),
                              corpus_rows(400, 60).column("source").to_pylist()) if s == "code"][:8]
    (tmp_path / "code.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in code))
    ckpts = [str(c) for c in gpt2_proxy.checkpoints[:2]]
    config = {
        "source": {"paths": str(tmp_path / "in.parquet"), "id_column": "id", "source_column": "source"},
        "targets": {"prose": {"paths": str(tmp_path / "prose.jsonl")}, "code": {"paths": str(tmp_path / "code.jsonl")}},
        "scorers": [{"type": "less", "checkpoints": ckpts, "params": "lm_head", "projection_dim": 256,
                     "target": ["prose", "code"], "reduce": "max", "ivf_threshold": 4, "keep_features": True},
                    {"type": "tracin", "checkpoints": ckpts, "params": "last:1", "projection_dim": 256,
                     "target": "prose", "precondition": "adam"}],
        "select": [{"type": "top_k", "score": "less", "keep": "high"}],
        "budget": {"documents": 10},
        "output": {"path": str(tmp_path / "out"), "include_scores": True},
        "execution": {"scheduler": "synchronous", "progress": False},
    }
    result = datadiet.Pipeline.from_config(config).run()
    c = result.manifest["counts"]
    assert c["input_rows"] == c["selected_rows"] + c["rejected_rows"] + c["quarantined_rows"] == 24
    assert c["selected_rows"] == 10
    info = result.manifest["scorers"]
    assert {"less.target_prose", "less.target_code", "less.features"} <= set(info["less"]["columns"])
    assert info["less"]["flops_per_token"] > 0 and info["tracin"]["flops_per_token"] > 0
    table = pa.concat_tables(pq.read_table(p) for p in sorted((tmp_path / "out" / "scores" / "less").glob("*/*.parquet")))
    scored = table.filter(pc.is_valid(table.column("less")))
    best = np.maximum(scored.column("less.target_prose").to_numpy(), scored.column("less.target_code").to_numpy())
    np.testing.assert_allclose(scored.column("less").to_numpy(), best)
    assert scored.column("less.features").type == pa.list_(pa.float16(), 512)
    tracin = pa.concat_tables(pq.read_table(p) for p in (tmp_path / "out" / "scores" / "tracin").glob("*/*.parquet"))
    assert tracin.column("tracin").null_count < tracin.num_rows
    # a rerun reuses every sidecar and fit (same fingerprints)
    again = datadiet.Pipeline.from_config(config).run()
    assert again.manifest["counts"]["reused_shards"] == 1
    assert again.manifest["counts"]["selected_rows"] == 10
    assert sorted(again.load()["id"]) == sorted(result.load()["id"])
