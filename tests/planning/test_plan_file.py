"""Plans as budgets: `plan --compute --json` from a run directory, `budget: {plan: ...}` in a
recipe, and the errors for another corpus or a bad file."""

from __future__ import annotations

import json
import math
import shutil

import pytest

from datadiet.cli import main
from datadiet.errors import BudgetError, ConfigError
from datadiet.pipeline.pipeline import Pipeline
from tests.conftest import base_recipe


@pytest.fixture
def run_dir(corpus, tmp_path):
    """A real (cheap) run over a copy of the sample corpus."""
    recipe = base_recipe(corpus / "*.parquet", tmp_path / "run", scorers=["length"],
                         select=[{"type": "top_k", "score": "length.words", "keep": "high"}])
    Pipeline.from_config(recipe).run()
    return tmp_path / "run"


@pytest.mark.slow
def test_plan_from_a_run_directory_becomes_a_recipe_budget(run_dir, corpus, tmp_path, capsys):
    manifest = json.loads((run_dir / "manifest.json").read_text())
    plan_path = tmp_path / "plan.json"
    assert main(["plan", "--compute", "--params", "5K", "--run-dir", str(run_dir), "--json", str(plan_path)]) == 0
    out = capsys.readouterr().out
    plan = json.loads(plan_path.read_text())
    tokens = manifest["tokens"]["input"]
    assert plan["selection"]["tokens"] == math.ceil(20 * 5000 / 4)
    assert plan["selection"]["fraction"] == pytest.approx(25000 / tokens)
    assert plan["corpus"]["tokens"] == tokens and plan["corpus"]["fingerprint"]
    assert f"keep {25000 / tokens:.1%} of it" in out

    recipe = base_recipe(corpus / "*.parquet", tmp_path / "out2", budget={"plan": str(plan_path)})
    pipe = Pipeline.from_config(recipe)
    assert pipe.budget.tokens == 25000
    result = pipe.run()
    assert 0 < result.manifest["budget"]["used"] <= 25000

    other = tmp_path / "other"
    shutil.copytree(corpus, other)
    (other / "part-00003.parquet").unlink()
    with pytest.raises(BudgetError, match=r"budget.plan: .*plan.json was made for another corpus"):
        Pipeline.from_config(base_recipe(other / "*.parquet", tmp_path / "out3", budget={"plan": str(plan_path)}))


def test_a_plan_without_a_corpus_fits_any_recipe(corpus, tmp_path):
    plan_path = tmp_path / "plan.json"
    assert main(["plan", "--compute", "--params", "1K", "--corpus-tokens", "1M", "--json", str(plan_path)]) == 0
    assert json.loads(plan_path.read_text())["corpus"]["fingerprint"] is None
    pipe = Pipeline.from_config(base_recipe(corpus / "*.parquet", tmp_path / "o", budget={"plan": str(plan_path)}))
    assert pipe.budget.tokens == 5000


def test_bad_plan_files(corpus, tmp_path):
    not_plan = tmp_path / "not_plan.json"
    not_plan.write_text(json.dumps({"tokens": 5}))
    for budget, match in (({"plan": str(not_plan)}, "not_plan.json is not a datadiet plan"),
                          ({"plan": str(tmp_path / "gone.json")}, "plan file not found: .*gone.json"),
                          ({"plan": str(not_plan), "tokens": 5}, "remove 'tokens'")):
        with pytest.raises(ConfigError, match=match):
            Pipeline.from_config(base_recipe(corpus / "*.parquet", tmp_path / "o", budget=budget))


def test_plan_for_a_recipe_corpus_and_a_model_config(corpus, tmp_path, capsys):
    from datadiet.planning.plan_file import source_fingerprint
    from tests.conftest import write_recipe

    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "config.json").write_text(json.dumps({
        "model_type": "llama", "hidden_size": 64, "intermediate_size": 172, "num_hidden_layers": 2,
        "num_attention_heads": 4, "vocab_size": 400}))
    recipe = write_recipe(tmp_path / "r.yaml", base_recipe(corpus / "*.parquet", tmp_path / "o"))
    plan_path = tmp_path / "plan.json"
    assert main(["plan", "--compute", str(recipe), "--model-config", str(tmp_path / "model"), "--gpu", "T4",
                 "--json", str(plan_path)]) == 0
    plan = json.loads(plan_path.read_text())
    pipe = Pipeline.from_yaml(recipe)
    assert plan["corpus"]["fingerprint"] == source_fingerprint(pipe.source)
    assert plan["model"]["params"] == 2 * 400 * 64 + 2 * (4 * 64 * 64 + 3 * 64 * 172 + 2 * 64) + 64
    assert plan["memory"][0]["fits"] and "estimated from" in capsys.readouterr().out
    budgeted = base_recipe(corpus / "*.parquet", tmp_path / "o", budget={"plan": str(plan_path)})
    assert Pipeline.from_config(budgeted).budget.tokens == plan["selection"]["tokens"]
