"""Text of the report's example rows: from the input files, or from rejected/ when the
inputs are gone."""

from __future__ import annotations

import copy

from datadiet.report.examples import fetch_texts
from datadiet.report.summary import summarize
from tests.report.conftest import HOSTILE


def _wanted(summary):
    return [(r[1], r[2], r[3]) for ext in summary.extremes.values() for r in ext.top + ext.bottom]


def test_texts_from_the_inputs(report_run):
    out, manifest = report_run
    summary = summarize(out, manifest)
    longest = summary.extremes["length.chars"].top[0]
    assert longest[1] == "hostile:0"
    texts, note = fetch_texts(out, manifest, _wanted(summary))
    assert note == "" and set(texts) == {w[0] for w in _wanted(summary)}
    assert texts["hostile:0"].startswith(HOSTILE)


def test_texts_from_rejected_when_the_inputs_are_gone(report_run, tmp_path):
    out, manifest = report_run
    summary = summarize(out, manifest)
    moved = copy.deepcopy(manifest)
    moved["recipe"]["source"]["paths"] = str(tmp_path / "gone" / "*.parquet")
    texts, note = fetch_texts(out, moved, _wanted(summary))
    assert "could not be read back" in note
    dropped = {r[1] for ext in summary.extremes.values() for r in ext.top + ext.bottom if not r[4]}
    kept = {r[1] for ext in summary.extremes.values() for r in ext.top + ext.bottom if r[4]}
    assert dropped and set(texts) == dropped  # data/ has no doc_id without include_scores
    assert kept and not kept & set(texts)
