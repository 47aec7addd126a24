"""Command line: ``datadiet run | inspect | proxy train | list | describe`` and the
subcommands other modules register. ``-v``/``-q`` and ``--version`` work everywhere."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .errors import DatadietError


def _run(args) -> int:
    if getattr(args, "dry_run", False):
        from .planning.cli import dry_run_command

        return dry_run_command(args)

    result = pipeline_from_args(args).run()
    print(summary(result.manifest, result.output_dir))
    return 0


def pipeline_from_args(args):
    """The Pipeline of a ``run`` command line: the recipe edited by ``--set``, ``--seed`` and
    ``--budget``, with ``--input``/``-o`` (relative to the current directory) and the rest."""
    from .config import load_recipe
    from .errors import ConfigError
    from .overrides import apply_sets, blame, parse_budget
    from .pipeline.pipeline import Pipeline

    config = apply_sets(load_recipe(args.recipe), args.set)
    if args.seed is not None:
        config["seed"] = args.seed
    if args.budget is not None:
        config["budget"] = parse_budget(args.budget)
    overrides = {"input": args.input, "output": args.output, "scheduler": args.scheduler,
                 "workers": args.workers, "progress": False if args.quiet else None,
                 "overwrite": True if args.overwrite else None, "recipe_dir": Path(args.recipe).parent,
                 "work_dir": args.work_dir}
    try:
        return Pipeline.from_config(config, **overrides)
    except ConfigError as exc:
        raise blame(exc, args.set) from None


def summary(manifest: dict, out: Path | str) -> str:
    c, t = manifest["counts"], manifest["tokens"]
    lines = [
        f"rows in:      {c['input_rows']:,}",
        f"kept:         {c['selected_rows']:,}",
        f"rejected:     {c['rejected_rows']:,}",
        f"quarantined:  {c['quarantined_rows']:,}" + (f" (+{len(c['unreadable_files'])} unreadable file(s))"
                                                     if c["unreadable_files"] else ""),
        f"tokens kept:  {t['selected']:,} of {t['input']:,}",
    ]
    budget = manifest.get("budget")
    if budget:
        lines.append(f"budget:       {budget['used']:,} of {budget['limit']:,} {budget['unit']}"
                     + (" (budget >= what was available: all eligible rows kept)" if budget.get("exceeds_available") else ""))
    lines += [f"output:       {out}/data", f"manifest:     {out}/manifest.json", f"report:       {out}/report.html"]
    if manifest.get("store"):
        lines.append(f"work dir:     {manifest['store']['work_dir']}")
    return "\n".join(lines)


def _read_manifest(where: str) -> tuple[dict, str]:
    """The manifest of a run directory or URL (or a manifest file), and the run's location."""
    from .urls import is_remote

    if is_remote(where):
        import fsspec

        from .urls import require_filesystem

        require_filesystem(where, "inspect")
        url = where.rstrip("/")
        url = url[: -len("/manifest.json")] if url.endswith("/manifest.json") else url
        try:
            with fsspec.open(f"{url}/manifest.json", "rb") as fh:
                return json.loads(fh.read()), url
        except FileNotFoundError:
            raise DatadietError(f"no manifest.json in {url} (not a finished run, or one still in progress)") from None
    path = Path(where)
    manifest_path = path / "manifest.json" if path.is_dir() else path
    if not manifest_path.is_file():
        raise DatadietError(f"no manifest.json in {path}")
    return json.loads(manifest_path.read_text()), str(manifest_path.parent)


def _inspect(args) -> int:
    manifest, location = _read_manifest(args.run_dir)
    if args.json:
        print(json.dumps(manifest, indent=2))
        return 0
    print(summary(manifest, location))
    c = manifest["counts"]
    print("\nby source:")
    for src, d in c["by_source"].items():
        print(f"  {src:<24} in {d['input']:>8,}  kept {d['selected']:>8,}  rejected {d['rejected']:>8,}  "
              f"quarantined {d['quarantined']:>6,}")
    if manifest["reasons"]:
        print("\nrejected because:")
        for reason, n in manifest["reasons"].items():
            print(f"  {n:>8,}  {reason}")
    for name, s in manifest["scorers"].items():
        nulls = ", ".join(f"{k}: {v}" for k, v in s["null_reasons"].items())
        print(f"\nscorer {name} ({s['type']}): {', '.join(s['columns'])}; {s['seconds']}s" + (f"; nulls: {nulls}" if nulls else ""))
    if manifest.get("diagnostics"):
        print("\ndiagnostics:", json.dumps(manifest["diagnostics"], indent=2))
    print("\ntimings (s):", ", ".join(f"{k} {v}" for k, v in manifest["timings_s"].items()))
    return 0


def _list(args) -> int:
    from .registry import FAMILIES, names

    for family in FAMILIES:
        if getattr(args, "verbose", 0):
            from .describe import component_info, render_line

            print(f"{family}s:")
            print("\n".join(render_line(component_info(family, n)) for n in names(family)))
        else:
            print(f"{family}s: {', '.join(names(family))}")
    return 0


def _describe(args) -> int:
    from .describe import find, recipe_reference, render_markdown_section, render_text
    from .errors import ConfigError
    from .registry import FAMILIES, names

    if args.all:
        if args.markdown:
            print(recipe_reference(), end="")
            return 0
        args.names = [n for f in FAMILIES for n in names(f)]
    if not args.names:
        raise ConfigError("describe: name a component (see `datadiet list`) or pass --all")
    infos = []
    for name in dict.fromkeys(args.names):
        found = find(name)
        if not found:
            known = sorted({n for f in FAMILIES for n in names(f)})
            raise ConfigError(f"describe: no component or recipe section is called {name!r}; "
                              f"registered: {', '.join(known)}")
        infos += found
    render = render_markdown_section if args.markdown else render_text
    print("\n\n".join(render(i) for i in infos))
    return 0


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(prog="datadiet", description="Choose which rows to train on, under a budget.")
    parser.add_argument("--version", action="version", version=f"datadiet {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run a recipe: score, select, write")
    run.add_argument("recipe", help="recipe YAML file")
    run.add_argument("--input", help="path, glob or URL replacing the recipe's source paths")
    run.add_argument("-o", "--output", help="output directory (replaces output.path)")
    run.add_argument("--scheduler", help="local (default), synchronous, or tcp://HOST:PORT")
    run.add_argument("--workers", type=int, help="worker processes for the local cluster")
    run.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                     help="change a recipe key (dotted path, YAML value), e.g. budget.tokens=1e6; repeatable")
    run.add_argument("--seed", type=int, help="the recipe's seed")
    run.add_argument("--budget", help="replace the budget: tokens=1e6, documents=500, 10%%, tokens=10%%")
    run.add_argument("--overwrite", action="store_true",
                     help="replace a different earlier run in the output directory")
    run.add_argument("--work-dir", help="with a URL output (s3://, gs://): where the run works before "
                     "publishing (default ~/.cache/datadiet/runs/<hash>; shared by all workers on a cluster)")
    run.add_argument("--dry-run", action="store_true", help="print the plan (rows, tokens, FLOPs, time) and stop")
    run.set_defaults(func=_run)
    inspect = sub.add_parser("inspect", help="summarise a run directory's manifest")
    inspect.add_argument("run_dir")
    inspect.add_argument("--json", action="store_true", help="print the whole manifest")
    inspect.set_defaults(func=_inspect)
    lst = sub.add_parser("list", help="list registered scorers, selectors and readers (-v: with parameters)")
    lst.set_defaults(func=_list)
    describe = sub.add_parser("describe", help="a component's parameters, defaults, output columns and docs")
    describe.add_argument("names", nargs="*", metavar="NAME", help="scorer, selector or reader (or source, budget)")
    describe.add_argument("--all", action="store_true", help="every registered component")
    describe.add_argument("--markdown", action="store_true",
                          help="Markdown (with --all: the recipe reference, docs/recipe-reference.md)")
    describe.set_defaults(func=_describe)
    try:
        from .models.cli import add_proxy_parser
    except ImportError:
        add_proxy_parser = None
    if add_proxy_parser is not None:
        add_proxy_parser(sub)
    from .report.cli import add_report_parser

    add_report_parser(sub)
    from .evaluate.cli import add_eval_parser

    add_eval_parser(sub)
    from .planning.cli import add_planning_parsers

    add_planning_parsers(sub)
    from .pipeline.reselect import add_select_parser

    add_select_parser(sub)
    _add_verbosity(parser, top=True)
    return parser


def _add_verbosity(parser: argparse.ArgumentParser, top: bool = False) -> None:
    """``-v``/``-q`` on ``parser`` and every subcommand below it that has none of its own."""
    default = 0 if top else argparse.SUPPRESS
    if "-v" not in parser._option_string_actions:
        parser.add_argument("-v", "--verbose", action="count", default=default,
                            help="more log output (-vv: Dask's too)")
    if "-q" not in parser._option_string_actions:
        parser.add_argument("-q", "--quiet", action="count", default=default,
                            help="warnings and errors only, no progress")
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in dict.fromkeys(action.choices.values()):
                _add_verbosity(child)


def main(argv: list[str] | None = None) -> int:
    from .logs import setup_logging

    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging(int(getattr(args, "verbose", 0) or 0) - (1 if getattr(args, "quiet", 0) else 0))
    try:
        return args.func(args) or 0
    except DatadietError as exc:
        print(f"datadiet: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("datadiet: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
