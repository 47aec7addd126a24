"""Dry runs (`datadiet plan RECIPE`, `datadiet run RECIPE --dry-run`) against real runs of the
same recipes on data_samples: rows, tokens and scorer seconds within 2x. The cheap scorers'
sides run in fresh processes, so their one-time costs (lazy tables) fall the same way."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from datadiet.cli import main
from datadiet.pipeline.pipeline import Pipeline
from datadiet.planning.dry_run import dry_run
from tests.conftest import SAMPLES, write_recipe

SLOW_ENOUGH = 0.2  # seconds: shorter scorer times are timer noise on a shared machine


def datadiet(*args, env):
    done = subprocess.run([sys.executable, "-m", "datadiet", *args], capture_output=True, text=True, env=env,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def compare(est: dict, real: dict, sample_rows: int) -> int:
    """Checks the estimate against the run; returns how many scorers' seconds were compared."""
    assert est["sample_rows"] <= sample_rows + 16 and est["rows_read"] <= 4 * sample_rows + 64  # a sample only
    assert 0.5 <= est["rows"] / real["counts"]["input_rows"] <= 2
    assert 0.5 <= est["tokens"] / real["tokens"]["input"] <= 2
    seconds = {s["name"]: s["seconds"] for s in est["scorers"]}
    compared = 0
    for name, info in real["scorers"].items():
        if info["seconds"] >= SLOW_ENOUGH:
            assert 0.5 <= seconds[name] / info["seconds"] <= 2, (name, seconds[name], info["seconds"])
            compared += 1
    total_real = sum(s["seconds"] for s in real["scorers"].values())
    assert 0.5 <= sum(seconds.values()) / total_real <= 2, (seconds, total_real)
    return compared


@pytest.mark.slow
def test_cheap_scorers_on_the_parquet_corpus(tmp_path, capsys):
    out = tmp_path / "out"
    recipe = write_recipe(tmp_path / "r.yaml", {
        "source": {"paths": str(SAMPLES / "corpus" / "*.parquet"), "id_column": "id", "source_column": "source"},
        "scorers": ["length", "compression", "repetition", "charstats"],
        "select": [{"type": "top_k", "score": "compression.ratio", "keep": "high"}],
        "budget": {"tokens": 100_000},
        "output": {"path": str(out)},
        "execution": {"scheduler": "synchronous", "progress": False},
    })
    env = {**os.environ, "DATADIET_CACHE_DIR": str(tmp_path / "cache")}
    table = datadiet("plan", str(recipe), "--sample-rows", "256", "--json", str(tmp_path / "est.json"), env=env)
    datadiet("run", str(recipe), "-q", env=env)
    est = json.loads((tmp_path / "est.json").read_text())
    real = json.loads((out / "manifest.json").read_text())
    compare(est, real, 256)
    assert est["rows"] == real["counts"]["input_rows"]  # Parquet metadata: exact
    assert est["shards"] == len(real["inputs"]) and est["workers"] == 1
    assert est["budget"]["limit"] == 100_000 and est["budget"]["unit"] == "tokens"
    assert "compression" in table and "budget:" in table

    plan_out = tmp_path / "plan_only"  # `run --dry-run` prints the same table and writes nothing
    assert main(["run", str(recipe), "--dry-run", "-o", str(plan_out)]) == 0
    printed = capsys.readouterr().out
    assert "charstats" in printed and "FLOPs/token" in printed
    assert not plan_out.exists()


@pytest.mark.slow
def test_a_model_scorer_on_jsonl_instructions(tmp_path, gpt2_proxy, monkeypatch):
    """In one process: the model's one-time costs are in setup(), which neither side times.
    The 201 sample pairs, six times over (unique ids), so the loss scorer's real time is
    long enough to compare on a fast, quiet machine too."""
    out = tmp_path / "out"
    rows = [json.loads(line) for line in (SAMPLES / "instruct" / "train.jsonl").read_text().splitlines() if line]
    pool = tmp_path / "instruct.jsonl"
    pool.write_text("".join(json.dumps({**r, "id": f"{r['id']}#{k}"}) + "\n" for k in range(6) for r in rows))
    recipe = write_recipe(tmp_path / "r.yaml", {
        "source": {"paths": str(pool), "instruction_column": "instruction",
                   "response_column": "response", "id_column": "id"},
        "scorers": ["length", {"type": "loss", "model": str(gpt2_proxy.out_dir)}],
        "select": [{"type": "top_k", "score": "loss", "keep": "low"}],
        "budget": {"fraction": 0.5},
        "output": {"path": str(out)},
        "execution": {"scheduler": "synchronous", "progress": False},
    })
    monkeypatch.setenv("DATADIET_CACHE_DIR", str(tmp_path / "cache"))
    est = dry_run(str(recipe), sample_rows=64).to_dict()
    assert not out.exists()
    real = Pipeline.from_yaml(recipe).run().manifest
    compared = compare(est, real, 64)
    assert compared >= 1  # the loss scorer's time was long enough to compare
    loss = next(s for s in est["scorers"] if s["name"] == "loss")
    assert loss["flops_per_token"] == real["scorers"]["loss"]["flops_per_token"]
    assert loss["calibrated"].startswith("measured")

