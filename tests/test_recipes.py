"""Every example recipe in data_samples/recipes runs end to end (model paths pointed at a
proxy trained in this session; other paths resolve against the recipe's directory) and
accounts for every row."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

import datadiet
from tests.conftest import SAMPLES
from tests.proxy_fixtures import gpt2_proxy  # noqa: F401

RECIPES = sorted((SAMPLES / "recipes").glob("*.yaml"))
PROXY = "../../out/proxy"  # where `make proxy` writes, relative to data_samples/recipes/


def _localise(value, proxy_dir: Path):
    if isinstance(value, dict):
        return {k: _localise(v, proxy_dir) for k, v in value.items()}
    if isinstance(value, list):
        return [_localise(v, proxy_dir) for v in value]
    if isinstance(value, str) and value.startswith(PROXY):
        return str(proxy_dir) + value[len(PROXY):]
    return value


def _uses_model(config) -> bool:
    return any(isinstance(s, dict) and ("model" in s or "checkpoints" in s) for s in config.get("scorers", []))


@pytest.mark.parametrize("recipe", RECIPES, ids=[p.stem for p in RECIPES])
def test_example_recipe_runs(recipe, tmp_path, gpt2_proxy):  # noqa: F811
    config = _localise(yaml.safe_load(recipe.read_text()), Path(gpt2_proxy.out_dir))
    if _uses_model(config) and "corpus" in str(config["source"]["paths"]):
        # model scoring on 2 CPU cores: 120 rows keep the suite fast
        head = pq.read_table(SAMPLES / "corpus" / "part-00000.parquet").slice(0, 120)
        pq.write_table(head, tmp_path / "head.parquet")
        config["source"]["paths"] = str(tmp_path / "head.parquet")
    config["output"]["path"] = str(tmp_path / "out")
    config["execution"] = {"scheduler": "synchronous", "progress": False}
    result = datadiet.Pipeline.from_config(config, recipe_dir=recipe.parent).run()
    c = result.manifest["counts"]
    assert c["input_rows"] == c["selected_rows"] + c["rejected_rows"] + c["quarantined_rows"] > 0
    assert c["selected_rows"] > 0
    if result.manifest["budget"]:
        b = result.manifest["budget"]
        assert b["used"] <= b["limit"]
