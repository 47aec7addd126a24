"""Memory allocation settings of a process that runs tasks, applied once per process.

- Arrow buffers come from the system allocator unless the user chose one
  (``ARROW_DEFAULT_MEMORY_POOL``): mimalloc keeps freed pages, so a long stage's RSS would
  grow with the data it streams; the system allocator gives them back.
- On glibc, buffers up to 32 MiB are served from the heap and reused, and the heap is
  trimmed once 64 MiB at its top are free. Dask starts its workers with
  ``MALLOC_TRIM_THRESHOLD_=65536``, which also fixes the mmap threshold at 128 KiB: every
  Arrow buffer is then a fresh mmap whose pages fault in one by one, and a scoring or
  writing task spends about 30% more CPU. A user's own ``MALLOC_MMAP_THRESHOLD_`` is kept.

Example::

    from datadiet.allocator import configure_allocator
    configure_allocator()
"""

from __future__ import annotations

import ctypes
import os

MMAP_THRESHOLD = 32 << 20
TRIM_THRESHOLD = 64 << 20
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt parameters, from glibc's malloc.h
_done = False


def configure_allocator() -> None:
    global _done
    if _done:
        return
    _done = True
    if "ARROW_DEFAULT_MEMORY_POOL" not in os.environ:
        import pyarrow as pa

        if pa.default_memory_pool().backend_name != "system":
            pa.set_memory_pool(pa.system_memory_pool())
    if "MALLOC_MMAP_THRESHOLD_" not in os.environ:
        reuse_heap_buffers()


def reuse_heap_buffers() -> bool:
    """glibc's mallopt: mmap threshold 32 MiB, trim threshold 64 MiB. False where the C
    library is not glibc (nothing is changed there)."""
    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    if not hasattr(libc, "gnu_get_libc_version"):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
