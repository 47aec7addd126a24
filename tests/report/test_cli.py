"""``datadiet report OUT``."""

from __future__ import annotations

import pytest

from datadiet.cli import main


@pytest.mark.slow
def test_report_command(report_run, tmp_path, capsys):
    out, _ = report_run
    target = tmp_path / "page.html"
    assert main(["report", str(out), "-o", str(target)]) == 0
    assert str(target) in capsys.readouterr().out
    assert "datadiet run report" in target.read_text(encoding="utf-8")


def test_report_on_a_directory_that_is_not_a_run(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert str(tmp_path) in err and "no manifest.json" in err and "Traceback" not in err
