"""Sections that depend on what a manifest holds: drawn when present, left out when absent."""

from __future__ import annotations

from datadiet.report.html import _curriculum, _ranking
from datadiet.report.text import budget_lines, requested_budget


def test_marginal_gain_and_curriculum_when_present():
    manifest = {
        "ranking": {"marginal_gain": {"tokens": [1000, 2000, 3000, 4000], "gain": [0.9, 0.5, 0.2, 0.05],
                                      "stop_tokens": 3000, "threshold": 0.1}},
        "curriculum": {"pacing": "root", "phases": [{"phase": 0, "tokens": 100, "share": 0.2},
                                                    {"phase": 1, "tokens": 300, "share": 0.5},
                                                    {"phase": 2, "tokens": 600, "share": 1.0}]},
    }
    gain = _ranking(manifest)
    assert "Marginal gain" in gain and gain.count("<img") == 1 and "stop_tokens" in gain
    cur = _curriculum(manifest)
    assert "Curriculum pacing" in cur and "root" in cur and cur.count("<img") == 1


def test_sections_left_out_when_absent():
    assert _ranking({}) == "" and _ranking({"ranking": {}}) == "" and _curriculum({}) == ""


def test_unknown_shapes_are_shown_escaped():
    out = _curriculum({"curriculum": "<b>phase</b>"})
    assert "&lt;b&gt;phase&lt;/b&gt;" in out and "<b>" not in out


def test_budget_in_words():
    assert requested_budget({"fraction": 0.3, "fraction_of": "tokens"}) == "30% of the tokens"
    lines = dict(budget_lines({"budget": {"unit": "tokens", "limit": 1000, "used": 990, "available": 500,
                                          "exceeds_available": True, "requested": {"tokens": 1000}},
                               "reasons": {}}))
    assert lines["requested"] == "1,000 tokens" and lines["what bound it"].startswith("the filters")


def test_average_ranks_match_scipy_rankdata_with_ties():
    import numpy as np
    from scipy.stats import rankdata

    from datadiet.report.html import average_ranks

    rng = np.random.default_rng(0)
    matrix = np.column_stack([rng.integers(0, 5, 500).astype(float), rng.random(500), np.zeros(500),
                              rng.integers(0, 50, 500) * 0.5])
    assert np.array_equal(average_ranks(matrix), rankdata(matrix, axis=0))
