"""The report's pass over a run's decisions, and its plots, made on the workers while the
run writes its output (the decisions are final once selection is done); only the
diagnostics that need the written selection wait for the write."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import DatadietError
from .diagnostics import diagnostics
from .html import draw_figures
from .summary import RunSummary, summarize

#: plots are drawn in up to this many parts, each after its own pass over the decisions ...
MAX_PARTS = 4
#: ... of at least this many plots ...
MIN_PLOTS_PER_PART = 6
#: ... while that pass is cheap next to drawing (rows: about a second's reading)
MAX_ROWS_PER_PART = 2_000_000


def report_parts(n_workers: int, manifest: dict) -> int:
    """How many tasks draw the report's plots, for a manifest as of the end of selection."""
    if manifest["counts"]["input_rows"] > MAX_ROWS_PER_PART:
        return 1
    plots = 2 + sum(len(s["columns"]) for s in (manifest.get("scorers") or {}).values())
    return max(1, min(n_workers, MAX_PARTS, plots // MIN_PLOTS_PER_PART))


@dataclass
class ReportTask:
    """A run's directory, its manifest as of the end of selection, and which share of the
    plots to draw (every ``parts``-th from ``part`` on)."""

    run_dir: str
    manifest: dict
    part: int = 0
    parts: int = 1


def prepare_report(task: ReportTask) -> RunSummary | str:
    """The summary of a run's decisions with its share of the report's plots drawn, or why
    the decisions could not be read back (recorded in the manifest; the finished run stands).

    Example::

        pending = [executor.submit(prepare_report, ReportTask(str(run.root), manifest, k, 2), desc="report")
                   for k in range(2)]
    """
    try:
        summary = summarize(task.run_dir, task.manifest)
    except (DatadietError, OSError) as exc:
        return f"diagnostics could not be computed: {exc}"
    draw_figures(summary, task.part, task.parts)
    return summary


def run_diagnostics(run_dir: str | Path, manifest: dict,
                    prepared: list[RunSummary | str]) -> tuple[dict, RunSummary | None]:
    """The manifest's diagnostics from the :func:`prepare_report` parts, and the summary
    (holding every part's plots)."""
    summary = prepared[0]
    if isinstance(summary, str):
        return {"unavailable": summary}, None
    for other in prepared[1:]:
        if isinstance(other, RunSummary):
            summary.figures.update(other.figures)
    return diagnostics(run_dir, manifest, summary), summary
