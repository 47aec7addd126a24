"""Executors run a stage's tasks: synchronously in this process, on a local Dask cluster
(one single-threaded worker process per core) or on an existing dask.distributed scheduler.
Results come back in task order, whatever order the tasks finish in."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from functools import partial

from tqdm.auto import tqdm

from ..errors import ConfigError, StageError


def bounded_memory_pool() -> None:
    """Use the system allocator for Arrow buffers unless the user chose one
    (``ARROW_DEFAULT_MEMORY_POOL``): mimalloc keeps freed pages, so a long stage's RSS
    would grow with the data it streams; the system allocator gives them back."""
    if "ARROW_DEFAULT_MEMORY_POOL" not in os.environ:
        import pyarrow as pa

        if pa.default_memory_pool().backend_name != "system":
            pa.set_memory_pool(pa.system_memory_pool())


def run_task(fn: Callable, item):
    """What every task runs: the stage function, in a process with a bounded memory pool."""
    bounded_memory_pool()
    return fn(item)


def _progress(total: int, desc: str, enabled: bool):
    # disable=None: bars only on a terminal, so logs of batch jobs stay clean
    return tqdm(total=total, desc=desc, unit="task", file=sys.stderr, disable=None if enabled and total else True,
                mininterval=0.5, leave=False)


class Executor:
    """Base executor. ``map(fn, items, desc)`` → results in the order of ``items``."""

    n_workers = 1

    def __init__(self, progress: bool = True):
        self.progress = progress

    def map(self, fn: Callable, items: Sequence, desc: str, labels: Sequence[str] | None = None,
            resources: dict | None = None) -> list:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class SynchronousExecutor(Executor):
    """Runs every task in this process, in order: for debugging and tests.

    Example::

        SynchronousExecutor().map(len, [[1], [2, 3]], desc="len")  # [1, 2]
    """

    def map(self, fn, items, desc, labels=None, resources=None):
        out = []
        with _progress(len(items), desc, self.progress) as bar:
            for i, item in enumerate(items):
                try:
                    out.append(run_task(fn, item))
                except StageError:
                    raise
                except Exception as exc:
                    raise _stage_error(desc, labels[i] if labels else str(i), exc) from exc
                bar.update(1)
        return out


def _stage_error(desc: str, label: str, exc: Exception) -> Exception:
    from ..errors import DatadietError

    if isinstance(exc, DatadietError):
        return exc
    return StageError(f"stage {desc!r} failed on {label}: {type(exc).__name__}: {exc}")


class DaskExecutor(Executor):
    """Runs tasks on dask.distributed: a new LocalCluster (``address=None``) with
    ``n_workers`` single-threaded processes, or the scheduler at ``address``.

    Example::

        with DaskExecutor(n_workers=2) as ex:
            ex.map(fn, shards, desc="score")
    """

    def __init__(self, address: str | None = None, n_workers: int | None = None, progress: bool = True):
        super().__init__(progress)
        from dask.distributed import Client, LocalCluster

        self._cluster = None
        if address:
            try:
                self.client = Client(address, timeout="10s")
            except OSError as exc:
                raise ConfigError(f"cannot reach the Dask scheduler at {address!r}: {exc}") from None
            self.n_workers = max(1, len(self.client.scheduler_info().get("workers", {})))
        else:
            self.n_workers = n_workers or os.cpu_count() or 1
            gpus = local_gpu_count()
            self._cluster = LocalCluster(
                n_workers=self.n_workers, threads_per_worker=1, processes=True,
                dashboard_address=None, silence_logs=40, resources={"GPU": 1} if gpus else None,
            )
            self.client = Client(self._cluster)

    def offers(self, resources: dict | None) -> bool:
        """Whether some worker has these resources (tasks asking for absent ones would wait forever)."""
        if not resources:
            return False
        workers = self.client.scheduler_info().get("workers", {}).values()
        return any(all(w.get("resources", {}).get(k, 0) >= v for k, v in resources.items()) for w in workers)

    def map(self, fn, items, desc, labels=None, resources=None):
        from dask.base import tokenize
        from dask.distributed import as_completed

        if not items:
            return []
        keys = [f"{desc}-{i}-{tokenize(fn, item)}" for i, item in enumerate(items)]
        extra = {"resources": resources} if self.offers(resources) else {}
        futures = self.client.map(partial(run_task, fn), items, key=keys, pure=False, retries=0, **extra)
        index = {f.key: i for i, f in enumerate(futures)}
        results: list = [None] * len(items)
        try:
            with _progress(len(items), desc, self.progress) as bar:
                for future in as_completed(futures):
                    i = index[future.key]
                    if future.status == "error":
                        exc = future.exception()
                        raise _stage_error(desc, labels[i] if labels else str(i), exc) from exc
                    results[i] = future.result()
                    bar.update(1)
        finally:
            for f in futures:
                f.release()
        return results

    def close(self):
        self.client.close()
        if self._cluster is not None:
            self._cluster.close()


def local_gpu_count() -> int:
    """NVIDIA GPUs visible to this machine's driver, without importing torch."""
    import glob

    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return len([d for d in visible.split(",") if d.strip() and d.strip() != "-1"])
    return len(glob.glob("/proc/driver/nvidia/gpus/*"))


def make_executor(scheduler: str = "local", workers: int | None = None, progress: bool = True) -> Executor:
    """``synchronous``, ``local`` (a LocalCluster), or ``tcp://HOST:PORT``."""
    if scheduler in ("synchronous", "sync"):
        return SynchronousExecutor(progress)
    if scheduler in ("local", "processes", None):
        return DaskExecutor(None, workers, progress)
    if "://" in scheduler or ":" in scheduler:
        return DaskExecutor(scheduler, None, progress)
    raise ConfigError(f"unknown scheduler {scheduler!r}; expected 'synchronous', 'local' or tcp://HOST:PORT")
