"""Progress of one stage, counted in rows (and tokens when known) with rates and an ETA: a
tqdm bar on a terminal, plain log lines every ``DATADIET_PROGRESS_INTERVAL`` seconds
(default 10) otherwise, so a batch job's log (SLURM, Kubernetes) shows progress too.
Lines go to the ``datadiet.progress`` logger, or straight to the stream when logging is
not configured at all (a plain script), so they are never lost silently.

Example::

    with StageProgress("score", total=4000, unit="rows") as progress:
        progress.advance(1000, tokens=250_000)   # as each partition finishes
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time

from tqdm.auto import tqdm

INTERVAL_ENV = "DATADIET_PROGRESS_INTERVAL"
DEFAULT_INTERVAL = 10.0
log = logging.getLogger("datadiet.progress")


def progress_interval() -> float:
    """Seconds between plain progress lines (``DATADIET_PROGRESS_INTERVAL``)."""
    try:
        return max(0.05, float(os.environ.get(INTERVAL_ENV, DEFAULT_INTERVAL)))
    except ValueError:
        return DEFAULT_INTERVAL


def human(n: float) -> str:
    """1234 -> '1,234'; 2.5e6 -> '2.5M'."""
    for bound, suffix in ((1e9, "G"), (1e6, "M")):
        if abs(n) >= bound:
            return f"{n / bound:.1f}{suffix}"
    return f"{n:,.0f}"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}" if h else f"{rest // 60}:{rest % 60:02d}"


def _isatty(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class StageProgress:
    """Counts done work of a stage; shows it as a bar (terminal) or periodic log lines."""

    def __init__(self, desc: str, total: int, unit: str = "rows", enabled: bool = True, stream=None,
                 interval: float | None = None):
        self.desc, self.total, self.unit = desc, total, unit
        self.done, self.tokens = 0, 0
        self.started = time.monotonic()
        self.stream = stream or sys.stderr
        self.enabled = enabled and total > 0
        self.tty = self.enabled and _isatty(self.stream)
        self.interval = progress_interval() if interval is None else interval
        self._stop = threading.Event()
        self._bar = None
        self._thread = None
        if self.enabled:
            if self.tty:
                self._bar = tqdm(total=total, desc=desc, unit=unit, unit_scale=True, file=self.stream, leave=False,
                                 dynamic_ncols=True, mininterval=0.5)
            self._thread = threading.Thread(target=self._tick, name=f"progress-{desc}", daemon=True)
            self._thread.start()

    def advance(self, amount: int, tokens: int | None = None) -> None:
        self.done += amount
        self.tokens += tokens or 0
        if self._bar is not None:
            self._bar.update(amount)
            if self.tokens:
                self._bar.set_postfix_str(f"{human(self.tokens / self.elapsed)} tokens/s", refresh=False)

    @property
    def elapsed(self) -> float:
        return max(time.monotonic() - self.started, 1e-9)

    def line(self) -> str:
        """``score: 1,200/4,000 rows (30%) | 450 rows/s | 120.0k tokens/s | elapsed 0:03 | ETA 0:06``."""
        rate = self.done / self.elapsed
        eta = (self.total - self.done) / rate if rate > 0 else None
        parts = [f"{self.desc}: {self.done:,}/{self.total:,} {self.unit} ({100 * self.done / self.total:.0f}%)",
                 f"{human(rate)} {self.unit}/s"]
        if self.tokens:
            parts.append(f"{human(self.tokens / self.elapsed)} tokens/s")
        parts += [f"elapsed {duration(self.elapsed)}", f"ETA {duration(eta)}"]
        return " | ".join(parts)

    def summary(self) -> str:
        tokens = f", {self.tokens:,} tokens" if self.tokens else ""
        return (f"{self.desc}: {self.done:,} {self.unit}{tokens} in {self.elapsed:.1f} s "
                f"({human(self.done / self.elapsed)} {self.unit}/s)")

    def _tick(self) -> None:
        # also while no partition finishes: the bar's clock moves, the log gets its lines
        while not self._stop.wait(1.0 if self.tty else self.interval):
            if self._bar is not None:
                self._bar.refresh()
            else:
                self._emit(self.line())

    def _emit(self, line: str) -> None:
        if log.hasHandlers():
            log.info(line)
        else:
            print(line, file=self.stream, flush=True)

    def close(self, finished: bool = True) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self._bar is not None:
            self._bar.close()
        if self.enabled and finished:
            self._emit(self.summary())

    def __enter__(self) -> StageProgress:
        return self

    def __exit__(self, exc_type, *exc) -> None:
        self.close(finished=exc_type is None)
