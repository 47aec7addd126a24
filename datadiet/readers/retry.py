"""Retries of transient read failures (``OSError``, ``TimeoutError``) with exponential
backoff, for filesystem calls and for reads of open files.

A failed file read is retried from the same byte offset, reopening the file when the
handle itself is broken, so a flaky network read never changes what a reader sees.
Errors that retrying cannot fix (missing file, permission) are raised at once.

Example::

    fs = RetryingFS(fs, attempts=4, backoff=0.5)
    with fs.open(path, "rb") as fh:   # every read of fh is retried the same way
        data = fh.read()
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

PERMANENT = (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError)
MAX_DELAY = 30.0


def is_transient(exc: BaseException) -> bool:
    return isinstance(exc, (OSError, TimeoutError)) and not isinstance(exc, PERMANENT)


def call_with_retries(fn: Callable[[], Any], attempts: int, backoff: float, what: str) -> Any:
    """``fn()``, retried up to ``attempts`` times in all on transient errors, sleeping
    ``backoff * 2**k`` seconds (+ up to 50% jitter, capped at MAX_DELAY) before try k + 2."""
    for k in range(attempts):
        try:
            return fn()
        except BaseException as exc:
            if not is_transient(exc) or k == attempts - 1:
                raise
            delay = min(MAX_DELAY, backoff * 2 ** k) * (1 + random.random() / 2)
            log.info("%s failed (%s: %s); retry %d of %d in %.2fs", what, type(exc).__name__, exc,
                     k + 1, attempts - 1, delay)
            time.sleep(delay)
    raise AssertionError("unreachable")


class RetryingFile:
    """A read-only file whose reads and seeks are retried; reopens the file on failure and
    resumes at the offset where the failed call started."""

    def __init__(self, opener: Callable[[], Any], attempts: int, backoff: float, name: str):
        self._opener, self._attempts, self._backoff, self.name = opener, attempts, backoff, name
        self._pos = 0
        self._fh = call_with_retries(opener, attempts, backoff, f"opening {name}")

    def _retry(self, op: Callable[[Any], Any], what: str) -> Any:
        start = self._pos
        first = [True]

        def attempt():
            if not first[0]:
                self._reopen(start)
            first[0] = False
            return op(self._fh)

        return call_with_retries(attempt, self._attempts, self._backoff, f"{what} {self.name} at byte {start}")

    def _reopen(self, pos: int) -> None:
        try:
            self._fh.close()
        except Exception:  # the broken handle may not even close
            pass
        self._fh = self._opener()
        self._fh.seek(pos)

    def read(self, size: int = -1) -> bytes:
        data = self._retry(lambda fh: fh.read(size), "reading")
        self._pos += len(data)
        return data

    def readinto(self, buffer) -> int:
        n = self._retry(lambda fh: fh.readinto(buffer), "reading")
        self._pos += n or 0
        return n

    def seek(self, offset: int, whence: int = 0) -> int:
        self._pos = self._retry(lambda fh: fh.seek(offset, whence), "seeking")
        return self._pos

    def tell(self) -> int:
        return self._pos

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def writable(self) -> bool:
        return False

    @property
    def closed(self) -> bool:
        return self._fh.closed

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> RetryingFile:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class RetryingFS:
    """An fsspec filesystem whose metadata calls and opened files retry transient errors.
    ``exists`` and ``isdir`` are answered from ``info``, and listings ask fsspec to raise,
    so that a transient error is retried instead of being taken for "no such path" or an
    empty directory (what fsspec's defaults do)."""

    RETRIED = ("info", "ls", "cat_file", "size")

    def __init__(self, fs, attempts: int = 4, backoff: float = 0.5):
        self.fs, self.attempts, self.backoff = fs, max(1, attempts), backoff

    def __getattr__(self, name: str) -> Any:
        value = getattr(self.fs, name)
        if name not in self.RETRIED:
            return value

        def retried(*args, **kwargs):
            what = f"{name} {args[0] if args else ''}".strip()
            return call_with_retries(lambda: value(*args, **kwargs), self.attempts, self.backoff, what)

        return retried

    def open(self, path: str, mode: str = "rb", compression: str | None = None, **kwargs):
        """A retrying raw file; decompression (``compression``, "infer" from the name) runs
        on top of it, so each raw read is retried on its own."""
        if mode not in ("rb", "r"):
            raise ValueError(f"RetryingFS opens files for reading only, not {mode!r}")
        from fsspec.compression import compr
        from fsspec.utils import infer_compression

        raw = RetryingFile(lambda: self.fs.open(path, "rb", **kwargs), self.attempts, self.backoff, path)
        if compression == "infer":
            compression = infer_compression(path)
        fh = compr[compression](raw, mode="rb") if compression else raw
        return fh if mode == "rb" else _TextFile(fh)

    def glob(self, path: str) -> list[str]:
        return self._listing(self.fs.glob, path)

    def find(self, path: str) -> list[str]:
        return self._listing(self.fs.find, path)

    def _listing(self, fn, path: str) -> list[str]:
        def attempt():
            try:
                return fn(path, on_error="raise")
            except TypeError:  # a filesystem whose listing takes no on_error
                return fn(path)

        return call_with_retries(attempt, self.attempts, self.backoff, f"listing {path}")

    def exists(self, path: str) -> bool:
        try:
            self.info(path)
        except FileNotFoundError:
            return False
        return True

    def isdir(self, path: str) -> bool:
        try:
            return self.info(path).get("type") == "directory"
        except FileNotFoundError:
            return False


class _TextFile:
    """Text-mode view of a RetryingFile (UTF-8), for small files such as ``state.json``."""

    def __init__(self, raw):
        self.raw = raw

    def read(self, size: int = -1) -> str:
        return self.raw.read(size).decode("utf-8")

    def close(self) -> None:
        self.raw.close()

    def __enter__(self) -> _TextFile:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
