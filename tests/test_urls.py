"""URL inputs and outputs need their fsspec filesystem (named extra when missing), checked
before any compute; a URL output never becomes a local folder named ``s3:``."""

from __future__ import annotations

import subprocess
import sys

import pytest

from datadiet.errors import ConfigError
from datadiet.urls import is_remote, local_output, protocols
from tests.conftest import SAMPLES

DEMO = str(SAMPLES / "recipes" / "demo.yaml")


def cli_without_s3fs(args: list[str], cwd) -> subprocess.CompletedProcess:
    """The CLI in a fresh process where ``import s3fs`` fails, installed or not."""
    code = ("import sys; sys.modules['s3fs'] = None\n"
            "from datadiet.cli import main\n"
            f"sys.exit(main({args!r}))\n")
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_s3_input_without_s3fs_names_the_extra(tmp_path):
    proc = cli_without_s3fs(["run", DEMO, "--input", "s3://bucket/shards/*.parquet", "-o", str(tmp_path / "o"),
                             "--scheduler", "synchronous"], tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "pip install 'datadiet[s3]'" in proc.stderr
    assert "s3://bucket/shards/*.parquet" in proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) <= 2
    assert not (tmp_path / "o").exists()


def test_url_output_without_s3fs_names_the_extra_before_compute(tmp_path):
    proc = cli_without_s3fs(["run", DEMO, "-o", "s3://bucket/run", "--scheduler", "synchronous"], tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "--output: 's3://bucket/run'" in proc.stderr and "pip install 'datadiet[s3]'" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "s3:").exists() and list(tmp_path.iterdir()) == []


def test_url_helpers():
    assert protocols("simplecache::s3://b/k") == ["simplecache", "s3"]
    assert is_remote("gs://b/k") and not is_remote("out/run") and not is_remote("file:///tmp/x")
    assert local_output("file:///tmp/run") == "/tmp/run"
    with pytest.raises(ConfigError, match="output.path: 'gcs://b/run' is a URL"):
        local_output("gcs://b/run")
