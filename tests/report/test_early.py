"""The report's plots drawn in parts on the workers, beside the write, make the same page
as one pass drawn at the end."""

from __future__ import annotations

import shutil

import datadiet
from datadiet.report import build_report
from datadiet.report.early import MAX_ROWS_PER_PART, ReportTask, prepare_report, report_parts, run_diagnostics
from datadiet.report.html import figure_names, render
from tests.report.conftest import dsir_recipe


def _prepared(out, manifest, parts: int):
    return [prepare_report(ReportTask(str(out), manifest, k, parts)) for k in range(parts)]


def test_plots_drawn_in_parts_are_each_drawn_once_and_make_the_same_page(report_run):
    out, manifest = report_run
    whole = _prepared(out, manifest, 1)
    split = _prepared(out, manifest, 3)
    names = figure_names(whole[0])
    assert len(names) > 6 and set(whole[0].figures) == set(names)
    drawn = [set(part.figures) for part in split]
    assert set().union(*drawn) == set(names) and sum(map(len, drawn)) == len(names)  # disjoint shares
    diag_whole, summary_whole = run_diagnostics(out, manifest, whole)
    diag_split, summary_split = run_diagnostics(out, manifest, split)
    assert diag_whole == diag_split and summary_split.figures == summary_whole.figures
    assert render(out, manifest, summary_split) == render(out, manifest, summary_whole) == build_report(out, manifest)


class _ThreeWorkerSynchronous(datadiet.SynchronousExecutor):
    """Runs every task here, but plans for three workers: the report is drawn in parts."""

    n_workers = 3


def test_a_run_drawing_its_plots_in_parts_writes_the_page_drawn_from_scratch(tmp_path):
    from tests.conftest import SAMPLES

    corpus = tmp_path / "corpus"
    shutil.copytree(SAMPLES / "corpus", corpus)
    recipe = dsir_recipe(corpus, tmp_path / "out")
    manifest = datadiet.Pipeline.from_config(recipe).run(_ThreeWorkerSynchronous(progress=False)).manifest
    assert report_parts(3, manifest) >= 2
    page = (tmp_path / "out" / "report.html").read_bytes().decode("utf-8")  # as written: no newline translation
    assert page == build_report(tmp_path / "out", manifest)
    assert page.count("class='histogram'") > 6


def test_report_parts():
    def manifest(rows, columns):
        return {"counts": {"input_rows": rows}, "scorers": {"s": {"columns": [f"c{i}" for i in range(columns)]}}}

    assert report_parts(1, manifest(1000, 40)) == 1  # one worker: one part
    assert report_parts(8, manifest(1000, 40)) == 4  # at most four passes over the decisions
    assert report_parts(8, manifest(1000, 3)) == 1  # few plots: not worth a second pass
    assert report_parts(8, manifest(MAX_ROWS_PER_PART + 1, 40)) == 1  # the pass itself is the cost
