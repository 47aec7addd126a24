"""A child's peak RSS is its own, not the peak of the large process that started it."""

from __future__ import annotations

import subprocess
import sys

from datadiet.peak_memory import peak_rss_mb

CHILD = "from datadiet.peak_memory import peak_rss_mb; print(peak_rss_mb())"


def test_a_child_started_by_a_large_parent_reports_its_own_peak():
    ballast = bytearray(1536 << 20)  # touched pages: 1.5 GB resident in this process
    ballast[::4096] = b"x" * len(ballast[::4096])
    assert peak_rss_mb() > 1536
    child = float(subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True,
                                 check=True).stdout)
    del ballast
    assert 0 < child < 1024, f"the child reported {child:.0f} MB: its parent's peak, carried over the exec"
