"""Relative paths in a recipe resolve against the recipe file's directory; --input and -o
stay relative to the current directory."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import datadiet
from datadiet.errors import InputError
from tests.conftest import SAMPLES, base_recipe, write_recipe


@pytest.fixture
def layout(tmp_path, monkeypatch):
    """recipes/r.yaml next to recipes/data/, and an unrelated working directory."""
    recipes = tmp_path / "recipes"
    shutil.copytree(SAMPLES / "corpus", recipes / "data")
    recipe = base_recipe("data/*.parquet", "out")
    recipe["scorers"].append({"type": "loss", "name": "ppl", "model": "models/proxy"})
    write_recipe(recipes / "r.yaml", recipe)
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    return recipes


def test_recipe_paths_resolve_against_the_recipe_file(layout):
    pipe = datadiet.Pipeline.from_yaml(layout / "r.yaml")
    assert Path(pipe.source.paths) == layout / "data" / "*.parquet"
    assert pipe.output == layout / "out"
    assert Path(pipe.specs[-1].scorer.model) == layout / "models" / "proxy"
    assert len(pipe.plan().shards) == 4


def test_command_line_paths_stay_relative_to_the_current_directory(layout):
    shutil.copytree(layout / "data", Path.cwd() / "mine")
    pipe = datadiet.Pipeline.from_yaml(layout / "r.yaml", input="mine/*.parquet", output="o")
    assert pipe.source.paths == "mine/*.parquet" and pipe.output == Path("o")
    assert len(pipe.plan().shards) == 4


def test_no_match_says_how_the_path_was_resolved(layout):
    recipe = base_recipe("nope/*.parquet", "out")
    write_recipe(layout / "bad.yaml", recipe)
    with pytest.raises(InputError) as err:
        datadiet.Pipeline.from_yaml(layout / "bad.yaml")
    message = str(err.value)
    assert "no input matches 'nope/*.parquet'" in message
    assert f"resolved relative to the recipe file directory {layout}" in message
