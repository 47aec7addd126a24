"""``datadiet select OUT --budget ...``: the same run with another budget, reusing every
score sidecar and fitted state in OUT (nothing is scored again); the selection and
data/ are replaced. With ``output.ranking: true`` a smaller token budget is a prefix of
``OUT/ranking/``, so the new data/ is that prefix.

Example::

    datadiet select out/run1 --budget tokens=5e6
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..errors import InputError


def reselect(out: str | Path, budget: dict, progress: bool = False, scheduler: str | None = None):
    """Reruns the recipe recorded in ``OUT/manifest.json`` with ``budget`` in place."""
    from ..urls import local_run_dir
    from .pipeline import Pipeline

    out = Path(local_run_dir(out, "select"))
    manifest_path = out / "manifest.json"
    if not manifest_path.is_file() or (out / ".datadiet" / "in_progress.json").exists():
        raise InputError(f"{out} is not a finished datadiet run (no manifest.json, or a run is in progress)")
    recipe = json.loads(manifest_path.read_text())["recipe"]
    recipe["budget"] = budget
    execution = dict(recipe.get("execution") or {})
    execution["progress"] = progress
    if scheduler:
        execution["scheduler"] = scheduler
    recipe["execution"] = {k: v for k, v in execution.items() if v is not None}
    return Pipeline.from_config(recipe, output=str(out), overwrite=True).run()


def add_select_parser(sub) -> None:
    p = sub.add_parser("select", help="select again from a finished run with another budget (no rescoring)")
    p.add_argument("run_dir")
    p.add_argument("--budget", required=True, help="tokens=1e6, documents=500, 10%%, tokens=10%%")
    p.add_argument("--scheduler", help="local (default), synchronous, or tcp://HOST:PORT")
    p.set_defaults(func=_select_command)


def _select_command(args: argparse.Namespace) -> int:
    from ..cli import summary
    from ..overrides import parse_budget

    result = reselect(args.run_dir, parse_budget(args.budget), scheduler=args.scheduler)
    print(summary(result.manifest, result.output_dir))
    return 0
