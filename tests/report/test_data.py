"""The report's decisions source: a finished run's rows, kept flags and scores, read
back without the text; clear errors for directories that are not finished runs."""

from __future__ import annotations

import json
import shutil

import pyarrow as pa
import pytest

from datadiet.errors import InputError
from datadiet.report.data import load_decisions, locate, read_manifest
from datadiet.report.summary import summarize


def test_decisions_match_the_manifest(report_run):
    out, manifest = report_run
    tables = list(load_decisions(out, manifest))
    assert len(tables) == len(manifest["inputs"])
    rows = pa.concat_tables(tables)
    c = manifest["counts"]
    assert rows.num_rows == c["selected_rows"] + c["rejected_rows"]
    assert sum(rows.column("kept").to_pylist()) == c["selected_rows"]
    kept_tokens = sum(t for t, k in zip(rows.column("n_tokens").to_pylist(), rows.column("kept").to_pylist()) if k)
    assert kept_tokens == manifest["tokens"]["selected"]
    reasons = [r for r, k in zip(rows.column("reason").to_pylist(), rows.column("kept").to_pylist()) if not k]
    assert {r: reasons.count(r) for r in set(reasons)} == manifest["reasons"]
    assert "text" not in rows.column_names
    for col in ("doc_id", "source", "n_tokens", "kept", "reason", "rank_key", "dsir", "length.chars"):
        assert col in rows.column_names
    assert "exact_hash" not in rows.column_names  # an identifier, not a score
    # a ranked row has a key; rows dropped before the ranker have none
    ranked = rows.filter(pa.array([r != "exact duplicate" and not (r or "").startswith("threshold")
                                   for r in rows.column("reason").to_pylist()]))
    assert ranked.column("rank_key").null_count == 0


def test_the_sample_is_bounded_and_seeded(report_run):
    out, manifest = report_run
    first = summarize(out, manifest, max_sample_rows=300)
    again = summarize(out, manifest, max_sample_rows=300)
    assert 150 < first.sample.num_rows < 450 and first.rate < 0.25
    assert first.sample.column("doc_id").to_pylist() == again.sample.column("doc_id").to_pylist()
    full = summarize(out, manifest)
    assert full.rate == 1 and full.sample.num_rows == manifest["counts"]["input_rows"] - 4
    # exact totals do not depend on the sample
    assert first.by_source == full.by_source


def test_not_a_finished_run(tmp_path, report_run):
    with pytest.raises(InputError, match=str(tmp_path / "missing")):
        read_manifest(tmp_path / "missing")
    with pytest.raises(InputError, match="no manifest.json"):
        read_manifest(tmp_path)
    out, _ = report_run
    copy = tmp_path / "run"
    shutil.copytree(out, copy)
    (copy / ".datadiet").mkdir(exist_ok=True)
    (copy / ".datadiet" / "in_progress.json").write_text("{}")
    with pytest.raises(InputError, match="in progress"):
        read_manifest(copy)
    (copy / ".datadiet" / "in_progress.json").unlink()
    (copy / "manifest.json").write_text("[1, 2")
    with pytest.raises(InputError, match="not readable JSON"):
        read_manifest(copy)


def test_missing_decisions_are_named(tmp_path, report_run):
    out, manifest = report_run
    copy = tmp_path / "run"
    shutil.copytree(out, copy)
    shutil.rmtree(copy / ".staging")
    with pytest.raises(InputError, match="selection decisions"):
        locate(copy, json.loads((copy / "manifest.json").read_text()))


def test_report_without_decisions_still_describes_the_run(tmp_path, report_run):
    from datadiet.report import build_report

    out, manifest = report_run
    copy = tmp_path / "run"
    shutil.copytree(out, copy)
    shutil.rmtree(copy / ".staging")
    html = build_report(copy, manifest)
    assert "Not drawn:" in html and "selection decisions" in html
    assert f"{manifest['counts']['selected_rows']:,}</span> kept" in html
    assert "KL divergence to the target (DSIR" in html  # from the manifest alone


def test_decisions_at_the_paths_the_manifest_records(tmp_path, report_run):
    out, manifest = report_run
    copy = tmp_path / "run"
    shutil.copytree(out, copy)
    found = locate(copy, manifest)
    state, narrow = found.shards[0].state.parent, found.shards[0].narrow.parent
    shutil.move(state, copy / "decided")
    shutil.move(narrow, copy / "narrow")
    recorded = {**manifest, "decisions": {"narrow": "narrow", "state": "decided", "rank_keys": "decided/keys"}}
    again = locate(copy, recorded)
    assert again.ranked and again.shards[0].state == copy.resolve() / "decided" / f"{again.shards[0].key}.parquet"
    rows = pa.concat_tables(list(load_decisions(copy, recorded, again)))
    assert sum(rows.column("kept").to_pylist()) == manifest["counts"]["selected_rows"]
    assert rows.column("rank_key").null_count < rows.num_rows
