"""Calibrated scorer throughput: docs/s and tokens/s measured on a small sample on this
machine, cached per machine in ``~/.cache/datadiet/calibration.json`` (or
``$DATADIET_CACHE_DIR/calibration.json``), keyed by the scorer's fingerprint (class, version,
parameters, model files), the hostname, the CPU count and the torch thread count.

The timed part is ``score_batch`` only, as the run's per-scorer seconds are. The sample is
scored twice: the second pass gives the steady rate, and what the first took beyond it is a
once-per-process cost (lazy tables, first kernels) that a run pays once per worker.

Example::

    cal = calibrate(scorer, sample_view)      # Calibration(docs_per_s=..., tokens_per_s=..., cached=False)
    cal.seconds_for(tokens=2_000_000)
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import pyarrow as pa

from ..fingerprint import component_fingerprint

CACHE_FILE = "calibration.json"


@dataclass
class Calibration:
    """Throughput of one scorer on this machine, and the resident memory its setup and
    scoring added to the process."""

    key: str
    docs_per_s: float
    tokens_per_s: float
    n_docs: int
    n_tokens: int
    seconds: float
    first_call_seconds: float
    setup_seconds: float
    memory_bytes: int
    cached: bool = False

    def seconds_for(self, tokens: float, processes: int = 1) -> float:
        """Scorer-seconds for ``tokens``, summed over ``processes`` worker processes."""
        steady = tokens / self.tokens_per_s if self.tokens_per_s > 0 else float("inf")
        return steady + self.first_call_seconds * processes


def cache_path() -> Path:
    root = os.environ.get("DATADIET_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "datadiet")
    return Path(root) / CACHE_FILE


def _torch_threads() -> int:
    try:
        import torch
    except ImportError:  # pragma: no cover
        return 1
    return torch.get_num_threads()


def machine_key(scorer) -> str:
    scorer_fp = component_fingerprint(scorer, scorer.state_fingerprint())
    return f"{scorer_fp}|{socket.gethostname()}|cpus={os.cpu_count()}|threads={_torch_threads()}"


def _load(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def _store(path: Path, key: str, cal: Calibration) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = _load(path)
    data[key] = {k: v for k, v in asdict(cal).items() if k not in ("key", "cached")}
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
    tmp.replace(path)


@contextlib.contextmanager
def torch_threads(n: int | None):
    """Run torch on ``n`` threads inside the block (as a single-threaded Dask worker does)."""
    if n is None:
        yield
        return
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _rss() -> int:
    import psutil

    return psutil.Process().memory_info().rss


def calibrate(scorer, view: pa.Table, batch_size: int = 2048, use_cache: bool = True) -> Calibration:
    """Measure ``scorer`` on ``view`` (scoring view rows, with any input columns it reads),
    or return the cached figure for this machine."""
    key = machine_key(scorer)
    path = cache_path()
    if use_cache:
        hit = _load(path).get(key)
        if isinstance(hit, dict):
            with contextlib.suppress(TypeError):
                return Calibration(key=key, cached=True, **hit)
    before = _rss()
    started = time.perf_counter()
    scorer.setup()
    setup_seconds = time.perf_counter() - started
    timed = view.combine_chunks()  # run-sized batches, not one per sampled shard
    passes = []
    for _ in range(2):
        seconds = 0.0
        for batch in timed.to_batches(max_chunksize=batch_size):
            started = time.perf_counter()
            scorer.score_batch(batch)
            seconds += time.perf_counter() - started
        passes.append(seconds)
    seconds = passes[1]
    n_docs = timed.num_rows
    n_tokens = int(pa.compute.sum(timed.column("n_tokens")).as_py() or 0) if n_docs else 0
    seconds = max(seconds, 1e-9)
    cal = Calibration(key=key, docs_per_s=n_docs / seconds, tokens_per_s=n_tokens / seconds, n_docs=n_docs,
                      n_tokens=n_tokens, seconds=seconds, first_call_seconds=max(0.0, passes[0] - passes[1]),
                      setup_seconds=setup_seconds,
                      memory_bytes=max(0, _rss() - before))
    if use_cache and n_docs:
        _store(path, key, cal)
    return cal
