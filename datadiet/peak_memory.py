"""This process's peak resident memory.

``getrusage().ru_maxrss`` is the wrong figure for a child process on Linux: the kernel
keeps the high-water mark across ``execve``, so a child started by a large parent (a test
runner, a benchmark driver) reports the parent's peak. ``VmHWM`` belongs to the address
space and starts afresh at exec.

Example::

    from datadiet.peak_memory import peak_rss_mb
    print(f"peak {peak_rss_mb():.0f} MB")
"""

from __future__ import annotations

import resource
import sys


def peak_rss_mb() -> float:
    """Peak RSS of this process in MiB: ``VmHWM`` where /proc has it, else ``ru_maxrss``."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB elsewhere
