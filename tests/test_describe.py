"""`datadiet describe` / `list -v` show each component's parameters, defaults, constraints,
output columns and docstring; docs/recipe-reference.md is generated from them and current."""

from __future__ import annotations

import re

import pytest

from datadiet.cli import main
from datadiet.describe import component_info, recipe_reference, render_text
from datadiet.registry import FAMILIES, names
from tests.conftest import ROOT

REFERENCE = ROOT / "docs" / "recipe-reference.md"


def test_recipe_reference_is_current():
    assert REFERENCE.read_text() == recipe_reference(), (
        "docs/recipe-reference.md is stale; regenerate it: "
        "make docs (= .venv/bin/datadiet describe --all --markdown > docs/recipe-reference.md)")


def test_reference_covers_every_registered_component():
    text = REFERENCE.read_text()
    for family in FAMILIES:
        for name in names(family):
            assert f"### `{name}`" in text, (family, name)


def test_describe_shows_parameters_defaults_constraints_columns_and_doc(capsys):
    assert main(["describe", "compression", "exact_dedup", "budget"]) == 0
    out = capsys.readouterr().out
    assert "scorer compression: datadiet.scorers.compression.CompressionScorer" in out
    assert "compression.ratio: float" in out and "Repetitive or boilerplate text" in out
    assert "selector exact_dedup (group)" in out and "'first' or 'longest' = 'first'" in out
    assert "duplicate_of: string" in out
    assert "recipe section budget" in out and re.search(r"tokens +int or None = None; an int >= 1", out)


def test_required_parameters_and_scorer_columns():
    info = component_info("scorer", "loss")
    assert {p.name: p.default for p in info.params}["model"] == "required"
    assert ("loss", "float") in info.columns and ("loss.n_scored_tokens", "int64") in info.columns
    assert "repetition.top_ngram_char_frac_2" in [c for c, _ in component_info("scorer", "repetition").columns]
    assert "model" in render_text(info)


def test_list_verbose_shows_parameters(capsys):
    assert main(["list", "-v"]) == 0
    out = capsys.readouterr().out
    assert "  compression(" in out and "  top_k(score, keep='high')" in out


def test_unknown_name_is_a_clear_error(capsys):
    assert main(["describe", "compresion"]) == 2
    err = capsys.readouterr().err
    assert "no component or recipe section is called 'compresion'" in err and "compression" in err


@pytest.fixture(autouse=True)
def _no_cli_log_handler():
    import logging

    yield
    logging.getLogger("datadiet").handlers.clear()
