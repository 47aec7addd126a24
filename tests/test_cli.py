"""The command line: --version, -v/-q anywhere, --set/--seed/--budget/--overwrite reaching
the pipeline, and clear errors naming an unknown --set key."""

from __future__ import annotations

import json

import pytest

from datadiet import __version__
from datadiet.cli import build_parser, main, pipeline_from_args
from tests.conftest import SAMPLES

DEMO = str(SAMPLES / "recipes" / "demo.yaml")


@pytest.fixture(autouse=True)
def _no_cli_log_handler():
    import logging

    yield
    logging.getLogger("datadiet").handlers.clear()


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0 and capsys.readouterr().out.strip() == f"datadiet {__version__}"


@pytest.mark.parametrize("argv", [["-v", "list"], ["list", "-vv"], ["-q", "inspect", "x"], ["proxy", "train", "-q",
                                                                                           "--input", "a", "-o", "b"]])
def test_verbosity_flags_before_or_after_the_subcommand(argv):
    args = build_parser().parse_args(argv)
    assert getattr(args, "verbose", 0) or getattr(args, "quiet", 0)


def test_run_flags_reach_the_pipeline(tmp_path):
    args = build_parser().parse_args([
        "run", DEMO, "-o", str(tmp_path / "o"), "--set", "scorers.1.level=9", "--set", "select.1.keep=low",
        "--seed", "7", "--budget", "tokens=1e5", "--overwrite"])
    pipe = pipeline_from_args(args)
    assert pipe.specs[1].scorer.level == 9 and pipe.steps[1].keep == "low"
    assert pipe.seed == 7 and pipe.budget.tokens == 100_000 and pipe.overwrite is True
    assert pipe.output == tmp_path / "o"
    pipe = pipeline_from_args(build_parser().parse_args(["run", DEMO, "--budget", "10%"]))
    assert pipe.budget.fraction == 0.1 and pipe.overwrite is False


@pytest.mark.parametrize("assignment,key", [("output.colour=red", "'colour'"), ("scorers.1.levl=3", "'levl'"),
                                            ("colour=red", "'colour'"), ("budget.tokns=5", "'tokns'")])
def test_unknown_set_key_is_a_clear_error(tmp_path, capsys, assignment, key):
    code = main(["run", DEMO, "-o", str(tmp_path / "o"), "--set", assignment, "--scheduler", "synchronous"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert f"--set {assignment}" in err and f"unknown key {key}" in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()


def test_run_with_overrides_and_overwrite_end_to_end(tmp_path, capsys):
    out = tmp_path / "o"
    code = main(["run", str(SAMPLES / "recipes" / "random_baseline.yaml"), "-o", str(out), "-q", "--seed", "3",
                 "--set", "budget.fraction=0.1", "--scheduler", "synchronous"])
    assert code == 0
    assert capsys.readouterr().err == ""  # -q: no progress, no info lines
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["recipe"]["seed"] == 3 and manifest["budget"]["requested"]["fraction"] == 0.1
    assert manifest["counts"]["selected_rows"] < 0.2 * manifest["counts"]["input_rows"]
    capsys.readouterr()
    # a different run into the same directory is refused unless --overwrite
    again = ["run", str(SAMPLES / "recipes" / "random_baseline.yaml"), "-o", str(out), "-q", "--seed", "4",
             "--scheduler", "synchronous"]
    assert main(again) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert json.loads((out / "manifest.json").read_text())["recipe"]["seed"] == 3
    assert main([*again, "--overwrite"]) == 0
    assert json.loads((out / "manifest.json").read_text())["recipe"]["seed"] == 4
