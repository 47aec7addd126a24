"""``datadiet report OUT``: (re)writes the report of a finished run."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from . import build_report
from .data import read_manifest


def add_report_parser(sub) -> None:
    report = sub.add_parser("report", help="write the HTML report of a finished run (OUT/report.html)")
    report.add_argument("run_dir", help="a finished run's output directory")
    report.add_argument("-o", "--output", help="where to write the page (default: RUN_DIR/report.html)")
    report.set_defaults(func=_report)


def _report(args) -> int:
    from ..urls import local_run_dir

    args.run_dir = local_run_dir(args.run_dir, "report")
    manifest = read_manifest(args.run_dir)
    target = Path(args.output) if args.output else Path(args.run_dir) / "report.html"
    html = build_report(args.run_dir, manifest)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.tmp")
    tmp.write_text(html, encoding="utf-8")
    os.replace(tmp, target)
    print(f"report: {target}")
    return 0
