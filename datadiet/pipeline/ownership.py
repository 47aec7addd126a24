"""Output ownership: a run replaces only files that it, or an earlier attempt of the same
run, wrote; it never writes into its own inputs; one live run per directory.

The record of what a run owns is ``OUT/.datadiet/commit.json``: the run's identity and the
published files of ``data/``, ``rejected/`` and ``quarantine/`` (plus ``manifest.json`` and
``report.html``). Publishing first widens the record to old ∪ new files, then replaces the
files, then narrows it to the new ones, so a kill at any moment leaves every published file
listed. A run holds ``OUT/.datadiet/lock`` (host, pid) while it works and marks itself in
progress (``OUT/.datadiet/in_progress.json``, the previous manifest removed) until its
manifest is written, so a half-published directory is never described by an old manifest.
"""

from __future__ import annotations

import json
import os
import re
import socket
import time
from pathlib import Path

from ..errors import ConfigError
from ..rundir import RunDir

PUBLISHED_DIRS = ("data", "rejected", "quarantine", "ranking", "curriculum")
PUBLISHED_FILES = ("manifest.json", "report.html")
#: temporary files of RunDir writes (``.<name>.<8 hex>.tmp``) and of fitted state
TEMP_PATTERN = re.compile(r"^(\..+\.[0-9a-f]{8}\.tmp|state\.(npz|json)\.tmp)$")


class OutputConflictError(ConfigError):
    """The output directory holds files this run may not replace, or another live run."""


def _meta(run: RunDir) -> Path:
    return run.path(".datadiet")


def commit_record_path(run: RunDir) -> Path:
    return run.path(".datadiet", "commit.json")


def in_progress_path(run: RunDir) -> Path:
    return run.path(".datadiet", "in_progress.json")


def read_commit_record(run: RunDir) -> dict | None:
    path = commit_record_path(run)
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise OutputConflictError(f"{path} is unreadable ({exc}); remove it only if {run.root} holds "
                                  "nothing you need") from None


def _write_record(run: RunDir, run_id: str, files: list[str]) -> None:
    run.write_json({"run_id": run_id, "files": sorted(set(files))}, commit_record_path(run))


def _published(run: RunDir) -> list[str]:
    """Paths (relative to OUT) of everything in the places a run publishes to."""
    found = [f for f in PUBLISHED_FILES if (run.root / f).is_file()]
    for folder in PUBLISHED_DIRS:
        d = run.root / folder
        if d.is_dir():
            found += sorted(str(p.relative_to(run.root)) for p in d.rglob("*") if p.is_file() or p.is_symlink())
    return found


def _local_paths(source) -> list[Path]:
    """Resolved local paths a Source reads (its shards' files and the entries given)."""
    if source is None or getattr(source, "in_memory", False) or not source.paths:
        return []
    entries = [source.paths] if isinstance(source.paths, str) else list(source.paths)
    if any("://" in str(e) and not str(e).startswith("file://") for e in entries):
        return []
    from ..readers.source import _has_magic

    paths = {Path(shard.path).resolve() for shard in source.shards()}
    for entry in entries:
        text = str(entry).removeprefix("file://")
        if not _has_magic(text):
            paths.add(Path(text).resolve())
    return sorted(paths)


def check_not_input(output: Path, sources: dict[str, object]) -> None:
    """The output may neither contain nor lie inside any input or target path."""
    out = Path(output).resolve()
    for role, source in sources.items():
        for path in _local_paths(source):
            if path == out or out in path.parents or path in out.parents:
                raise ConfigError(
                    f"the output directory {out} overlaps the {role} path {path}: a run must never write "
                    "where it reads; choose another -o/output.path")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RunLock:
    """``OUT/.datadiet/lock``: refuses a second live run into the same directory; a lock
    left by a killed run on this host (its pid gone) is taken over."""

    def __init__(self, run: RunDir):
        self.path = run.path(".datadiet", "lock")
        self.held = False

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        me = {"host": socket.gethostname(), "pid": os.getpid(), "started": time.time()}
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                owner = self._owner()
                if owner and owner.get("host") == me["host"] and not _pid_alive(int(owner.get("pid", 0))):
                    self.path.unlink(missing_ok=True)
                    continue
                who = f"pid {owner.get('pid')} on {owner.get('host')}" if owner else "an unknown process"
                raise OutputConflictError(
                    f"another datadiet run ({who}) is writing into {self.path.parent.parent}; wait for it, or "
                    f"delete {self.path} if you are sure it is gone") from None
            with os.fdopen(fd, "w") as fh:
                json.dump(me, fh)
            self.held = True
            return

    def _owner(self) -> dict | None:
        try:
            return json.loads(self.path.read_text())
        except (OSError, ValueError):
            return None

    def release(self) -> None:
        if self.held:
            self.path.unlink(missing_ok=True)
            self.held = False


def check_ownership(where: str, record: dict | None, published: list[str], run_id: str, overwrite: bool) -> None:
    """Refuses files of ``published`` that the commit ``record`` does not list, and (without
    ``overwrite``) a record of a different run. ``where`` names the output in the messages."""
    owned = set(record["files"]) if record else set()
    foreign = [f for f in published if f not in owned]
    if foreign:
        shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
        raise OutputConflictError(
            f"{where} holds files no datadiet run wrote there ({shown}); a run replaces only its own "
            "files: move them, or choose another output")
    if record and record.get("run_id") != run_id and not overwrite:
        raise OutputConflictError(
            f"{where} holds the output of a different datadiet run (another recipe, seed or input); "
            "pass --overwrite (Pipeline(overwrite=True)) to replace it, or choose another output")


def in_progress_marker(run_id: str) -> dict:
    return {"run_id": run_id, "host": socket.gethostname(), "pid": os.getpid(), "started": time.time()}


def claim(run: RunDir, run_id: str, overwrite: bool) -> None:
    """Checks that every published file in OUT is this run's (or, with ``overwrite``, an
    earlier datadiet run's), then marks the run in progress. Call with the lock held."""
    check_ownership(str(run.root), read_commit_record(run), _published(run), run_id, overwrite)
    previous = run.root / "manifest.json"
    if previous.is_file():
        previous.unlink()
    run.write_json(in_progress_marker(run_id), in_progress_path(run))


def finish(run: RunDir) -> None:
    in_progress_path(run).unlink(missing_ok=True)


def clean_temp_files(run: RunDir) -> int:
    """Removes temporary files left by killed attempts (the lock says none is live)."""
    removed = 0
    for folder in ["scores", "fits", ".staging", ".datadiet", *PUBLISHED_DIRS]:
        base = run.root / folder
        if not base.is_dir():
            continue
        for dirpath, _, files in os.walk(base):
            for name in files:
                if TEMP_PATTERN.match(name):
                    Path(dirpath, name).unlink(missing_ok=True)
                    removed += 1
    for name in os.listdir(run.root):
        if TEMP_PATTERN.match(name):
            (run.root / name).unlink(missing_ok=True)
            removed += 1
    return removed


def publish_files(run: RunDir, run_id: str, moves: dict[str, list[Path]], written: list[str]) -> dict[str, list[str]]:
    """Moves staged files into ``data/``, ``rejected/``, ``quarantine/`` (and ``ranking/``,
    ``curriculum/phase=k/``) as consecutive parts, removing only files of the previous
    commit record. ``written`` lists other
    published files this run wrote already (relative paths)."""
    record = read_commit_record(run)
    old = set(record["files"]) if record else set()
    new: dict[str, list[str]] = {}
    for kind, files in moves.items():
        new[kind] = [f"{kind}/part-{i:05d}.parquet" for i, _ in enumerate(p for p in files if p.exists())]
    new_set = {f for names in new.values() for f in names} | set(written)
    _write_record(run, run_id, list(old | new_set))
    for rel in sorted(old - new_set - set(PUBLISHED_FILES)):
        (run.root / rel).unlink(missing_ok=True)
    out = {}
    for kind, files in moves.items():
        run.path(kind).mkdir(parents=True, exist_ok=True)
        targets = []
        for rel, path in zip(new[kind], (p for p in files if p.exists())):
            target = run.path(rel)
            os.replace(path, target)
            targets.append(str(target))
        out[kind] = targets
    _write_record(run, run_id, list(new_set | set(PUBLISHED_FILES)))
    return out


__all__ = ["OutputConflictError", "RunLock", "check_not_input", "claim", "finish", "clean_temp_files",
           "publish_files", "read_commit_record"]
