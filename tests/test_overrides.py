"""--set KEY=VALUE and --budget edits of a recipe mapping."""

from __future__ import annotations

import pytest

from datadiet.errors import ConfigError
from datadiet.overrides import apply_set, apply_sets, blame, parse_budget, parse_value

RECIPE = {
    "scorers": ["length", {"type": "compression"}],
    "select": [{"type": "threshold", "rules": {"length.words": {"min": 20}}}, {"type": "top_k", "score": "x"}],
    "budget": {"tokens": 100},
}


def test_dotted_paths_walk_mappings_and_lists():
    out = apply_sets(RECIPE, ["budget.tokens=1e6", "scorers.1.level=9", "select.-1.keep=low",
                              "output.include_scores=true", "select.0.rules.length.words.min=30"])
    assert out["budget"] == {"tokens": 1_000_000}
    assert out["scorers"][1] == {"type": "compression", "level": 9}
    assert out["select"][1]["keep"] == "low" and out["output"] == {"include_scores": True}
    assert out["select"][0]["rules"] == {"length.words": {"min": 30}}
    assert RECIPE["budget"] == {"tokens": 100}  # the original is left alone


def test_a_component_given_by_name_becomes_a_mapping():
    assert apply_set(RECIPE, "scorers.0.tokenizer=tok")["scorers"][0] == {"type": "length", "tokenizer": "tok"}


@pytest.mark.parametrize("text,value", [("1e6", 1_000_000), ("0.5", 0.5), ("1.0", 1.0), ("2.5e-3", 0.0025),
                                        ("[1, 2]", [1, 2]), ("{min: 0.4}", {"min": 0.4}), ("null", None),
                                        ("text", "text"), ("true", True)])
def test_values_are_yaml_with_exponent_numbers(text, value):
    assert parse_value(text) == value and type(parse_value(text)) is type(value)


@pytest.mark.parametrize("assignment,needle", [
    ("budget", "expected KEY=VALUE"), ("=3", "expected KEY=VALUE"), ("scorers.5.level=1", "has 2 entries"),
    ("scorers.first.level=1", "is a list"), ("budget.tokens.max=3", "holds 100"),
])
def test_bad_assignments_name_themselves(assignment, needle):
    with pytest.raises(ConfigError, match=needle) as err:
        apply_set(RECIPE, assignment)
    assert assignment in str(err.value)


@pytest.mark.parametrize("text,budget", [
    ("tokens=1e6", {"tokens": 1_000_000}), ("documents=500", {"documents": 500}), ("10%", {"fraction": 0.1}),
    ("tokens=25%", {"fraction": 0.25, "fraction_of": "tokens"}),
    ("flops=1e18,model_params=1.2e8", {"flops": 1_000_000_000_000_000_000, "model_params": 120_000_000}),
])
def test_budget_forms(text, budget):
    assert parse_budget(text) == budget


def test_bad_budget_says_what_it_expects():
    with pytest.raises(ConfigError, match="expected UNIT=AMOUNT"):
        parse_budget("lots")


def test_blame_names_the_set_that_introduced_an_unknown_key():
    exc = ConfigError("output: unknown key 'colour'; expected one of: path")
    assert str(blame(exc, ["seed=1", "output.colour=red"])).startswith("--set output.colour=red: output:")
    assert blame(exc, ["seed=1"]) is exc
