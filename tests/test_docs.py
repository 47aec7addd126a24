"""The README's Python quickstart and the Pipeline docstring example run as written, as
scripts in a fresh process, from a directory holding only data_samples/."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap

import pytest

from datadiet.pipeline.pipeline import Pipeline
from tests.conftest import ROOT, SAMPLES


def python_blocks(markdown: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", markdown, flags=re.S | re.M)


def docstring_example(doc: str) -> str:
    block = doc.split("Example::", 1)[1]
    lines = []
    for line in block.splitlines()[1:]:
        if line.strip() and not line.startswith(" " * 8):
            break
        lines.append(line)
    return textwrap.dedent("\n".join(lines)).strip() + "\n"


def run_script(code: str, cwd) -> subprocess.CompletedProcess:
    (cwd / "data_samples").symlink_to(SAMPLES, target_is_directory=True)
    script = cwd / "example.py"
    script.write_text(code)
    return subprocess.run([sys.executable, str(script)], cwd=cwd, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_readme_python_quickstart_runs_as_a_script(tmp_path):
    blocks = python_blocks((ROOT / "README.md").read_text())
    assert blocks, "the README has no python code block"
    proc = run_script("\n\n".join(blocks), tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Nanny failed" not in proc.stderr
    assert (tmp_path / "out" / "demo" / "manifest.json").is_file()
    assert (tmp_path / "out" / "run2" / "manifest.json").is_file()


def test_pipeline_docstring_example_runs(tmp_path):
    code = docstring_example(Pipeline.__doc__)
    assert "p.run()" in code
    proc = run_script(code + "print(result.manifest['counts']['selected_rows'])\n", tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert int(proc.stdout.split()[-1]) > 0
