"""report.html at the end of a run; the page itself is built in :mod:`datadiet.report`."""

from __future__ import annotations

from ..report import write_report

__all__ = ["write_report"]
