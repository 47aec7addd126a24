"""The run report: ``build_report`` renders report.html from a finished run directory."""

from __future__ import annotations

from pathlib import Path

from .data import load_decisions, read_manifest
from .diagnostics import diagnostics

__all__ = ["build_report", "diagnostics", "load_decisions", "read_manifest", "write_report"]


def build_report(run_dir: str | Path, manifest: dict, summary=None) -> str:
    """The HTML of the report of the run in ``run_dir`` (its manifest already read;
    ``summary``, a :class:`~datadiet.report.summary.RunSummary` of it, saves a pass)."""
    from ..errors import InputError
    from .html import render
    from .summary import summarize

    if summary is None:
        try:
            summary = summarize(run_dir, manifest)
        except InputError as exc:
            return render(run_dir, manifest, None, str(exc))
    return render(run_dir, manifest, summary)


def write_report(run, manifest: dict, summary=None) -> Path:
    """Writes ``OUT/report.html`` for a :class:`~datadiet.rundir.RunDir` atomically."""
    return run.write_text(build_report(run.root, manifest, summary), run.report)
