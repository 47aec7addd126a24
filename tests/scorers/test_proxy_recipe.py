"""Every proxy scorer from a recipe, end to end on the synchronous pipeline."""

# ruff: noqa: F811  (pytest fixtures imported from tests.proxy_fixtures)

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import datadiet
from datadiet.errors import ModelError
from datadiet.scorers.loss import LossScorer
from tests.proxy_fixtures import QA, gpt2_proxy, one_torch_thread, proxy_texts, qa_proxy, text_batch  # noqa: F401


def sidecar(out, name) -> pa.Table:
    return pa.concat_tables(pq.read_table(p) for p in sorted((out / "scores" / name).glob("*/*.parquet")))


def recipe(source: dict, scorers: list, out, select_score: str) -> dict:
    return {
        "source": source,
        "scorers": scorers,
        "select": [{"type": "top_k", "score": select_score, "keep": "low"}],
        "budget": {"fraction": 0.5},
        "output": {"path": str(out)},
        "execution": {"scheduler": "synchronous", "progress": False},
        "seed": 0,
    }


def test_text_scorers_from_a_recipe(tmp_path, gpt2_proxy):
    texts = [t[:160] for t in proxy_texts()[:40]]
    pq.write_table(pa.table({"id": [f"t{i}" for i in range(40)], "text": texts}), tmp_path / "in.parquet")
    model, ckpt = str(gpt2_proxy.out_dir), str(gpt2_proxy.checkpoints[0])
    scorers = [
        {"type": "loss", "model": model},
        {"type": "perplexity", "model": model},
        {"type": "el2n", "model": model},
        {"type": "reducible_loss", "model": model, "reference_model": ckpt},
        {"type": "learning_dynamics", "checkpoints": model, "n_trajectory_clusters": 2, "fit_sample_size": 20},
    ]
    out = tmp_path / "out"
    source = {"paths": str(tmp_path / "in.parquet"), "text_column": "text", "id_column": "id"}
    datadiet.Pipeline.from_config(recipe(source, scorers, out, "loss")).run()
    manifest = json.loads((out / "manifest.json").read_text())
    assert set(manifest["scorers"]) == {"loss", "perplexity", "el2n", "reducible_loss", "learning_dynamics"}
    assert "learning_dynamics.trajectory_cluster" in manifest["scorers"]["learning_dynamics"]["columns"]
    assert manifest["scorers"]["loss"]["flops_per_token"] > 0

    loss = sidecar(out, "loss")
    ids = loss.column("doc_id").to_pylist()
    direct = LossScorer(model=model).score_batch(text_batch([texts[int(i[1:])] for i in ids]))["score"].to_numpy()
    np.testing.assert_allclose(loss.column("loss").to_numpy(), direct, atol=1e-4)
    ppl = sidecar(out, "perplexity").sort_by("doc_id")
    np.testing.assert_allclose(ppl.column("perplexity").to_numpy(),
                               np.exp(loss.sort_by("doc_id").column("loss").to_numpy()), rtol=1e-5)
    assert sidecar(out, "learning_dynamics").column("learning_dynamics.region").null_count == 0

    by_id = dict(zip(ids, loss.column("loss").to_pylist()))
    kept = pq.read_table(out / "data").column("id").to_pylist()
    dropped = [i for i in by_id if i not in kept]
    assert len(kept) == 20 and max(by_id[i] for i in kept) <= min(by_id[i] for i in dropped)


def test_ifd_from_a_recipe(tmp_path, qa_proxy):
    rows = [{"id": f"q{i}", "instruction": q, "response": a} for i, (q, a) in enumerate(QA)]
    rows += [{"id": f"u{i}", "instruction": "Describe how the interpreter handles integer literals.", "response": a}
             for i, (_, a) in enumerate(QA)]
    (tmp_path / "pairs.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    source = {"paths": str(tmp_path / "pairs.jsonl"), "instruction_column": "instruction",
              "response_column": "response", "id_column": "id"}
    out = tmp_path / "out"
    datadiet.Pipeline.from_config(recipe(source, [{"type": "ifd", "model": str(qa_proxy.out_dir)}], out, "ifd")).run()
    ifd = dict(zip(*(sidecar(out, "ifd").column(c).to_pylist() for c in ("doc_id", "ifd"))))
    assert np.mean([ifd[f"q{i}"] for i in range(len(QA))]) < np.mean([ifd[f"u{i}"] for i in range(len(QA))])
    kept = set(pq.read_table(out / "data").column("id").to_pylist())
    assert sum(k.startswith("q") for k in kept) > len(kept) / 2  # low IFD = the instruction helps


def test_missing_model_fails_before_scoring(tmp_path):
    pq.write_table(pa.table({"text": ["one text here", "another text"]}), tmp_path / "in.parquet")
    missing = tmp_path / "no_model"
    source = {"paths": str(tmp_path / "in.parquet"), "text_column": "text"}
    with pytest.raises(ModelError, match=str(missing)):
        datadiet.Pipeline.from_config(recipe(source, [{"type": "loss", "model": str(missing)}], tmp_path / "o", "loss")).run()
    assert not (tmp_path / "o" / "scores").exists()
