"""A task process reuses freed heap buffers even under Dask's worker environment
(``MALLOC_TRIM_THRESHOLD_=65536``, which otherwise makes every large buffer a fresh mmap)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

CHILD = """
import resource, sys
if sys.argv[1] == "configured":
    from datadiet.allocator import configure_allocator
    configure_allocator()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(50):
    buffer = bytearray(8 << 20)  # zeroed: every page is touched
    del buffer
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _page_faults(mode: str) -> int:
    env = {**os.environ, "MALLOC_TRIM_THRESHOLD_": "65536"}
    env.pop("MALLOC_MMAP_THRESHOLD_", None)
    out = subprocess.run([sys.executable, "-c", CHILD, mode], env=env, capture_output=True, text=True, check=True)
    return int(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt: Linux only")
def test_freed_buffers_are_reused_instead_of_faulted_in_again():
    fresh, reused = _page_faults("default"), _page_faults("configured")
    assert fresh > 50 * 1500  # 50 fresh mmaps of 2,048 pages each
    assert reused < fresh / 10, (fresh, reused)
