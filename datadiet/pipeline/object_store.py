"""Outputs on object stores (``s3://``, ``gs://``, ``memory://``, any fsspec URL), with a
commit protocol that does not rely on rename.

A run with a URL output works in a work directory (``execution.work_dir`` / ``--work-dir``;
on a multi-node cluster it must be a path every worker can reach) exactly as a local run
does, then publishes what a local run publishes to the store:

1. before any compute, :func:`claim_store`: every object under ``data/``, ``rejected/``,
   ``quarantine/``, ``ranking/``, ``curriculum/`` must be listed in the store's commit record
   ``.datadiet/commit.json`` (else the run refuses, naming them); a different run needs
   ``overwrite``; the old ``manifest.json`` is deleted and ``.datadiet/in_progress.json`` written;
2. :func:`publish_to_store`: every file is uploaded under its final, content-addressed name
   (``data/part-00000-<sha256[:16]>.parquet``; score sidecars keep their fingerprinted names).
   An object store shows an object only whole, and a name never changes content, so a reader
   never sees a half-written part, and a retried or concurrent attempt of the same run writes
   the same bytes. Objects already there with the same size are skipped: a rerun after
   ``kill -9`` resumes the upload;
3. the commit record is widened to old ∪ new, objects of the old record not in the new set
   are deleted, the record is narrowed, ``report.html`` is written and ``manifest.json`` last:
   its presence is the run's commit marker, and ``manifest["store"]["files"]`` lists every object.

Example::

    Pipeline(source, scorers, select, output="s3://bucket/runs/r1",
             work_dir="/shared/scratch/r1").run()
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ..errors import ConfigError
from ..rundir import RunDir
from ..urls import is_remote, require_filesystem
from .ownership import (
    PUBLISHED_DIRS,
    TEMP_PATTERN,
    OutputConflictError,
    check_ownership,
    in_progress_marker,
    read_commit_record,
)

COMMIT_RECORD = ".datadiet/commit.json"
IN_PROGRESS = ".datadiet/in_progress.json"
MANIFEST, REPORT = "manifest.json", "report.html"
#: protocols whose filesystem lives in one process: publish from the driver, not from workers
PROCESS_LOCAL = {"memory"}


def default_work_dir(url: str) -> Path:
    """``$DATADIET_WORK_DIR/<hash of url>`` (default ``~/.cache/datadiet/runs/...``)."""
    base = os.environ.get("DATADIET_WORK_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "datadiet", "runs")
    return Path(base) / hashlib.sha256(url.rstrip("/").encode()).hexdigest()[:16]


class StoreOutput:
    """A run's output prefix on an fsspec filesystem; every key is confined to it.

    Example::

        store = StoreOutput("s3://bucket/run", {"endpoint_url": "http://127.0.0.1:9000"})
        store.write_bytes("manifest.json", b"{}")
    """

    def __init__(self, url: str, storage_options: dict | None = None):
        import fsspec

        require_filesystem(url, "output.path")
        self.url = str(url).rstrip("/")
        self.storage_options = dict(storage_options or {})
        self.fs, root = fsspec.core.url_to_fs(self.url, **self.storage_options)
        self.root = root.rstrip("/")
        self.protocol = self.url.split("://", 1)[0].lower()

    def key(self, rel: str) -> str:
        parts = PurePosixPath(rel).parts
        if not parts or rel.startswith("/") or any(p in ("..", ".") for p in parts):
            raise ConfigError(f"refusing to write outside the output {self.url}: {rel!r}")
        return f"{self.root}/{rel}"

    def url_of(self, rel: str) -> str:
        return f"{self.url}/{rel}"

    def _rel(self, key: str) -> str:
        key = key.lstrip("/")
        return key[len(self.root.lstrip("/")) + 1:]

    def find(self, folder: str) -> list[str]:
        """Relative paths of the objects under ``folder``."""
        try:
            return sorted(self._rel(k) for k in self.fs.find(self.key(folder)))
        except FileNotFoundError:
            return []

    def exists(self, rel: str) -> bool:
        return self.fs.exists(self.key(rel))

    def size(self, rel: str) -> int | None:
        try:
            return int(self.fs.size(self.key(rel)))
        except FileNotFoundError:
            return None

    def read_json(self, rel: str) -> dict | None:
        try:
            return json.loads(self.fs.cat_file(self.key(rel)))
        except FileNotFoundError:
            return None
        except ValueError as exc:
            raise OutputConflictError(f"{self.url_of(rel)} is unreadable ({exc}); remove it only if {self.url} "
                                      "holds nothing you need") from None

    def write_bytes(self, rel: str, data: bytes) -> None:
        self.fs.pipe_file(self.key(rel), data)

    def write_json(self, rel: str, obj) -> None:
        self.write_bytes(rel, (json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n").encode())

    def remove(self, rels: list[str]) -> None:
        for rel in rels:
            try:
                self.fs.rm_file(self.key(rel))
            except FileNotFoundError:
                pass

    def refresh(self) -> None:
        self.fs.invalidate_cache()

    def published(self) -> list[str]:
        """Every object in the places a run publishes to."""
        self.refresh()
        found = [f for f in (MANIFEST, REPORT) if self.exists(f)]
        for folder in PUBLISHED_DIRS:
            found += self.find(folder)
        return found


def check_not_input_url(url: str, sources: dict[str, object]) -> None:
    """A URL output may neither contain nor lie inside an input or target URL."""
    out = url.rstrip("/") + "/"
    for role, source in sources.items():
        if source is None or getattr(source, "in_memory", False) or not source.paths:
            continue
        for entry in [source.paths] if isinstance(source.paths, str) else list(source.paths):
            path = str(entry)
            if not is_remote(path):
                continue
            prefix = path.split("*", 1)[0].rstrip("/") + "/"
            if prefix.startswith(out) or out.startswith(prefix):
                raise ConfigError(f"the output {url} overlaps the {role} path {path}: a run must never write where "
                                  "it reads; choose another -o/output.path")


def claim_store(store: StoreOutput, run_id: str, overwrite: bool) -> None:
    """The store's side of :func:`ownership.claim`: refuse foreign objects and a different
    run (without ``overwrite``), then delete the old manifest and mark the run in progress."""
    check_ownership(store.url, store.read_json(COMMIT_RECORD), store.published(), run_id, overwrite)
    # an object store has no lock: a different run marked in progress (live, or killed) is
    # refused like a finished one; an attempt of the same run writes the same bytes
    marker = store.read_json(IN_PROGRESS)
    if marker and marker.get("run_id") != run_id and not overwrite:
        raise OutputConflictError(
            f"{store.url} is marked in progress by a different datadiet run (pid {marker.get('pid')} on "
            f"{marker.get('host')}); if it is gone, pass --overwrite to replace it, or choose another output")
    store.remove([MANIFEST])
    store.write_json(IN_PROGRESS, in_progress_marker(run_id))


@dataclass
class UploadTask:
    """One local file to publish under ``rel``, its name in the store; with ``addressed``,
    :func:`content_name` inserts the file's content hash before the suffix first."""

    url: str
    storage_options: dict
    local: str
    rel: str
    addressed: bool = True


def content_name(task: UploadTask) -> str:
    """The file's final name in the store."""
    if not task.addressed:
        return task.rel
    digest = hashlib.sha256()
    with open(task.local, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    p = PurePosixPath(task.rel)
    return str(p.with_name(f"{p.stem}-{digest.hexdigest()[:16]}{p.suffix}"))


def upload_file(task: UploadTask) -> int:
    """Uploads one file under its final name unless an object of that name and size exists;
    returns the bytes sent."""
    store = StoreOutput(task.url, task.storage_options)
    size = os.path.getsize(task.local)
    if store.size(task.rel) == size:
        return 0
    store.fs.put_file(task.local, store.key(task.rel))
    return size


def _map(store: StoreOutput, executor, fn, tasks: list[UploadTask], desc: str) -> list:
    if store.protocol in PROCESS_LOCAL or not tasks:
        return [fn(t) for t in tasks]
    return executor.map(fn, tasks, desc=desc, labels=[t.rel for t in tasks],
                        weights=[os.path.getsize(t.local) for t in tasks], unit="bytes")


def publish_to_store(store: StoreOutput, run: RunDir, run_id: str, manifest: dict, executor,
                     sidecar_dirs: list[Path]) -> dict:
    """Copies a finished local run to the store (steps 2 and 3 of the module's protocol);
    returns the manifest as written there."""
    local = read_commit_record(run) or {"files": []}
    tasks = [UploadTask(store.url, store.storage_options, str(run.root / rel), rel)
             for rel in local["files"] if rel.split("/", 1)[0] in PUBLISHED_DIRS and (run.root / rel).is_file()]
    for folder in sidecar_dirs:
        if folder.is_dir():
            tasks += [UploadTask(store.url, store.storage_options, str(p), str(p.relative_to(run.root)), False)
                      for p in sorted(folder.iterdir()) if p.is_file() and not TEMP_PATTERN.match(p.name)]
    names = _map(store, executor, content_name, tasks, "publish (hash)")
    renamed = {t.rel: name for t, name in zip(tasks, names)}
    new = set(names)
    record = store.read_json(COMMIT_RECORD)
    old = set(record["files"]) if record else set()
    # listed before written: a kill at any moment leaves every object of this run in the record
    store.write_json(COMMIT_RECORD, {"run_id": run_id, "files": sorted(old | new)})
    for task, name in zip(tasks, names):
        task.rel, task.addressed = name, False
    sent = _map(store, executor, upload_file, tasks, "publish")
    store.remove(sorted(old - new - {MANIFEST, REPORT}))
    store.write_json(COMMIT_RECORD, {"run_id": run_id, "files": sorted(new | {MANIFEST, REPORT})})
    if run.report.is_file():
        store.write_bytes(REPORT, run.report.read_bytes())
    published = dict(manifest)
    published["outputs"] = {kind: [renamed.get(rel, rel) for rel in rels]
                            for kind, rels in manifest.get("outputs", {}).items()}
    if isinstance(published.get("ranking"), dict) and published["ranking"].get("files"):
        published["ranking"] = {**published["ranking"],
                                "files": [renamed.get(rel, rel) for rel in published["ranking"]["files"]]}
    published["store"] = {"url": store.url, "work_dir": str(run.root), "files": sorted(new),
                          "uploaded_bytes": int(sum(sent))}
    store.write_json(MANIFEST, published)
    store.remove([IN_PROGRESS])
    return published


__all__ = ["StoreOutput", "check_not_input_url", "claim_store", "default_work_dir", "publish_to_store"]
