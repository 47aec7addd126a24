"""datadiet eval: a target-aware selection beats random on held-out target loss; held-out
rows never reach training; random draws are seeded; bad inputs give clear errors."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pyarrow.parquet as pq
import pytest

from datadiet import Pipeline
from datadiet.cli import main
from datadiet.errors import BudgetError, ConfigError, InputError
from datadiet.evaluate import evaluate, split_target
from datadiet.evaluate.arms import Pool, heldout_hashes, random_draw, read_pool
from datadiet.evaluate.runs import load_run, read_texts
from datadiet.evaluate.targets import read_targets
from datadiet.readers.source import Source
from tests.conftest import SAMPLES

TARGET = str(SAMPLES / "target" / "prose.jsonl")
TINY = ["--layers", "1", "--width", "64", "--heads", "2", "--context", "64", "--vocab", "1024", "--batch-size", "8"]
TINY_TRAIN = {"n_layer": 1, "n_embd": 64, "n_head": 2, "n_ctx": 64, "vocab_size": 1024, "batch_size": 8}


def _write_jsonl(path, texts):
    path.write_text("".join(json.dumps({"id": f"t{i}", "text": t}) + "\n" for i, t in enumerate(texts)))
    return path


def _run(out, **recipe):
    config = {
        "source": {"paths": str(SAMPLES / "corpus" / "*.parquet"), "id_column": "id", "source_column": "source"},
        "output": {"path": str(out)}, "execution": {"scheduler": "synchronous", "progress": False}, "seed": 0,
        **recipe,
    }
    Pipeline.from_config(config).run()
    return out


@pytest.fixture(scope="module")
def dsir_run(tmp_path_factory):
    """DSIR toward the half of the prose target that eval does not hold out."""
    tmp = tmp_path_factory.mktemp("eval")
    _, texts = read_texts(Source(paths=TARGET))
    fit_part, _ = split_target(texts, split_seed=0, heldout_fraction=0.5)
    target = _write_jsonl(tmp / "target_fit.jsonl", fit_part)
    return _run(
        tmp / "dsir", target={"paths": str(target)},
        scorers=["exact_hash", "length", {"type": "dsir", "num_buckets": 10000, "ngram_order": 2}],
        select=[{"type": "exact_dedup"}, {"type": "threshold", "rules": {"length.words": {"min": 20}}},
                {"type": "dsir_resample", "score": "dsir"}],
        budget={"tokens": 40_000},
    )


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A run that keeps only 3 short documents: too little to train on."""
    return _run(tmp_path_factory.mktemp("tiny") / "run", scorers=["length"],
                select=[{"type": "top_k", "score": "length.words", "keep": "low"}], budget={"documents": 3})


@pytest.mark.slow
def test_target_aware_selection_beats_random_on_dask(dsir_run, tmp_path, capsys):
    out = tmp_path / "eval"
    rc = main(["eval", str(dsir_run), "--target", f"prose={TARGET}", "--seeds", "2", "--steps", "40", *TINY,
               "-o", str(out), "--scheduler", "local", "--workers", "2", "-q"])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "selection - random on prose" in printed and "prose loss" in printed
    record = json.loads((out / "eval.json").read_text())
    loss = record["scores"]
    sel, rnd = loss["selection"]["prose"]["loss"], loss["random"]["prose"]["loss"]
    assert len(sel["values"]) == len(rnd["values"]) == 2
    assert sel["mean"] < rnd["mean"], printed
    bpb = loss["selection"]["prose"]["bpb"]
    assert 0 < bpb["mean"] < sel["mean"] / np.log(2)  # more than one byte per token
    # same training budget for every (arm, seed); random arms match the selection's tokens
    assert {r["tokens_seen"] for r in record["results"]} == {40 * 8 * 64}
    arms = {a["name"]: a for a in record["arms"]}
    assert all(abs(t - arms["selection"]["tokens"][0]) < 0.05 * arms["selection"]["tokens"][0]
               for t in arms["random"]["tokens"])
    # the random subset is drawn again per seed; held-out target rows never reach training
    seed_files = [pq.read_table(out / "arms" / f"random-seed{s}.parquet")["text"].to_pylist() for s in (0, 1)]
    assert seed_files[0] != seed_files[1]
    held = set(pq.read_table(out / "targets" / "prose.parquet")["text"].to_pylist())
    for f in (out / "arms").glob("*.parquet"):
        assert not held & set(pq.read_table(f)["text"].to_pylist())
    assert (out / "eval.png").stat().st_size > 1000


@pytest.mark.slow
def test_same_seed_same_losses(dsir_run, tmp_path):
    def losses(out):
        result = evaluate([dsir_run], [TARGET], out, seeds=[3], steps=4, train=TINY_TRAIN, scheduler="synchronous",
                          progress=False)
        return [(r["arm"], r["seed"], r["targets"]["prose"]["nll"]) for r in result.results]

    first = losses(tmp_path / "a")
    assert first == losses(tmp_path / "b")
    assert [a for a, _, _ in first] == ["selection", "random"]


@pytest.mark.slow
def test_heldout_target_rows_are_dropped_from_the_pool(tmp_path):
    """A target made of corpus rows: every held-out one leaves the pool, the others stay."""
    run = load_run(_run(tmp_path / "run", scorers=["length"],
                        select=[{"type": "top_k", "score": "length.words", "keep": "high"}],
                        budget={"documents": 5}))
    _, corpus = read_texts(run.pool_source())
    inside = [t for t in corpus if t.startswith("Assert") or "statement" in t][:40]
    target = _write_jsonl(tmp_path / "inside.jsonl", inside)
    [held] = read_targets([str(target)], split_seed=0, heldout_fraction=0.5)
    assert 0 < len(held.texts) < len(inside)
    pool = read_pool(run, heldout_hashes([held]))
    assert pool.dropped_heldout >= len(held.texts)
    assert not set(held.texts) & set(pool.texts)
    assert set(inside) - set(held.texts) <= set(pool.texts)


def test_random_draw_is_seeded_and_matches_tokens():
    ids, texts = read_texts(Source(paths=str(SAMPLES / "corpus" / "*.parquet"), id_column="id"))
    pool = Pool(ids, texts, np.array([len(t) // 4 + 1 for t in texts]))
    a, b, c = (random_draw(pool, 50_000, seed) for seed in (0, 0, 1))
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    for take in (a, c):
        assert abs(int(pool.tokens[take].sum()) - 50_000) <= pool.tokens.max()
        assert len(set(take.tolist())) == len(take)


def test_split_target_is_a_seeded_partition():
    _, texts = read_texts(Source(paths=TARGET))
    fit, held = split_target(texts, split_seed=0)
    assert sorted(fit + held) == sorted(texts) and 25 < len(held) < 75
    assert split_target(texts, split_seed=0) == (fit, held)
    assert split_target(texts, split_seed=1)[1] != held


def test_not_a_finished_run(tmp_path, capsys):
    (tmp_path / "data").mkdir()
    with pytest.raises(InputError, match=f"{tmp_path}.*no manifest.json"):
        evaluate([tmp_path], [TARGET])
    assert main(["eval", str(tmp_path), "--target", TARGET]) == 2
    assert "no manifest.json" in capsys.readouterr().err
    with pytest.raises(InputError, match="not found: .*missing"):
        evaluate([tmp_path / "missing"], [TARGET])


def test_target_without_rows(dsir_run, tmp_path):
    empty = _write_jsonl(tmp_path / "empty.jsonl", ["", "   "])
    with pytest.raises(InputError, match=f"target {empty} has no rows"):
        evaluate([dsir_run], [str(empty)], tmp_path / "out")
    with pytest.raises(InputError, match="missing.jsonl"):
        evaluate([dsir_run], [str(tmp_path / "missing.jsonl")], tmp_path / "out")


@pytest.mark.slow
def test_budget_too_small_to_train_on(tiny_run, tmp_path):
    with pytest.raises(BudgetError, match="arm 'selection' \\(run run\\) has [0-9,]+ training tokens, fewer than 10 batches"):
        evaluate([tiny_run], [TARGET], tmp_path / "a", seeds=1, train=TINY_TRAIN, scheduler="synchronous")
    with pytest.raises(BudgetError, match="fewer than one batch"):
        evaluate([tiny_run], [TARGET], tmp_path / "b", seeds=1, steps=5, train={**TINY_TRAIN, "batch_size": 64},
                 scheduler="synchronous")


def test_bad_settings(dsir_run, tmp_path):
    with pytest.raises(ConfigError, match="train.seed is set by eval"):
        evaluate([dsir_run], [TARGET], tmp_path, train={"seed": 3})
    with pytest.raises(ConfigError, match="n_layr"):
        evaluate([dsir_run], [TARGET], tmp_path, train={"n_layr": 3})
    with pytest.raises(ConfigError, match="seeds"):
        evaluate([dsir_run], [TARGET], tmp_path, seeds=0)


@pytest.mark.slow
def test_several_runs_each_against_random_of_its_size(dsir_run, tmp_path):
    longest = _run(tmp_path / "longest", scorers=["length"],
                   select=[{"type": "top_k", "score": "length.words", "keep": "high"}], budget={"documents": 20})
    result = evaluate([dsir_run, longest], [TARGET], tmp_path / "eval", seeds=[0], steps=2, pool=True,
                      train=TINY_TRAIN, scheduler="synchronous", progress=False)
    record = json.loads(result.json_path.read_text())
    arms = {a["name"]: a for a in record["arms"]}
    assert list(arms) == ["dsir", "random@dsir", "longest", "random@longest", "pool"]
    assert arms["longest"]["baseline"] == "random@longest" and arms["pool"]["baseline"] is None
    assert {(c["arm"], c["baseline"]) for c in result.summary["comparisons"]} == {
        ("dsir", "random@dsir"), ("longest", "random@longest")}
    assert "longest - random@longest on prose" in result.table


def test_runs_over_different_pools(tiny_run, tmp_path):
    other = _run(tmp_path / "other", source={"paths": str(SAMPLES / "corpus" / "part-00000.parquet"), "id_column": "id"},
                 scorers=["length"], select=[{"type": "top_k", "score": "length.words"}], budget={"documents": 3})
    with pytest.raises(ConfigError, match=f"{other} and {tiny_run} ran over different inputs"):
        evaluate([tiny_run, other], [TARGET], tmp_path / "eval")


@pytest.mark.slow
def test_pool_that_moved(corpus, tmp_path):
    run = _run(tmp_path / "run", source={"paths": str(corpus / "*.parquet"), "id_column": "id"}, scorers=["length"],
               select=[{"type": "top_k", "score": "length.words", "keep": "low"}], budget={"documents": 3})
    shutil.rmtree(corpus)
    with pytest.raises(InputError, match=f"pool of {run}.*--pool-input"):
        evaluate([run], [TARGET], tmp_path / "a")
    # with the new location the pool is read, and the 3-row selection is too small to train on
    with pytest.raises(BudgetError, match="training tokens"):
        evaluate([run], [TARGET], tmp_path / "b", pool_paths=str(SAMPLES / "corpus" / "*.parquet"), seeds=1,
                 train=TINY_TRAIN)
