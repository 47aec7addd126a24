"""Command line of the planners: ``datadiet plan``, ``datadiet validate-proxy``,
``datadiet stop-rule``, and the handler of ``datadiet run RECIPE --dry-run``.

Example::

    datadiet plan data_samples/recipes/demo.yaml                 # the dry run of a recipe
    datadiet plan --compute --params 1B --gpu RTX-4090            # compute and memory plan
    datadiet plan --compute --params 7B --gpu-hours 1000 --gpu H100 --run-dir out/demo --json plan.json
    datadiet validate-proxy --proxy runs/small --reference runs/large --input "corpus/*.parquet"
    datadiet stop-rule runs/proxy/training_log.jsonl --remaining-flops 1e18
"""

from __future__ import annotations

import argparse
import json
import sys

from ..errors import ConfigError


def add_planning_parsers(subparsers) -> None:
    """Add ``plan``, ``validate-proxy`` and ``stop-rule`` to an argparse subparsers object."""
    plan = subparsers.add_parser("plan", help="estimate a recipe (dry run), or plan training compute and memory")
    plan.add_argument("recipe", nargs="?", help="recipe YAML to estimate (or, with --compute, whose corpus to plan for)")
    plan.add_argument("--compute", action="store_true", help="plan training compute and memory instead")
    plan.add_argument("--json", metavar="FILE", help="also write the plan as JSON")
    dry = plan.add_argument_group("dry run")
    dry.add_argument("--sample-rows", type=int, default=512, help="rows to read and calibrate on (default 512)")
    dry.add_argument("--no-cache", action="store_true", help="recalibrate instead of using the machine's cache")
    dry.add_argument("--input", help="path, glob or URL replacing the recipe's source paths")
    dry.add_argument("--scheduler", help="local, synchronous or tcp://HOST:PORT (as for run)")
    dry.add_argument("--workers", type=int, help="worker processes (as for run)")
    comp = plan.add_argument_group("compute (--compute)")
    comp.add_argument("--params", help="model parameters, e.g. 1B, 7e9")
    comp.add_argument("--model-config", help="a config.json (or its directory) to size the model from")
    comp.add_argument("--flops", type=float, help="training FLOP budget")
    comp.add_argument("--gpu-hours", type=float, help="training budget in GPU-hours (needs --gpu)")
    comp.add_argument("--gpu", help="GPU type (A100-80GB, H100, RTX-4090, ...) for hours and memory")
    comp.add_argument("--gpu-memory", help="GPU memory, e.g. 48GB (required with an unknown --gpu)")
    comp.add_argument("--gpu-peak-flops", type=float, help="dense bf16 FLOP/s (required with an unknown --gpu)")
    comp.add_argument("--utilization", type=float, default=0.4, help="model FLOP utilisation (default 0.4)")
    comp.add_argument("--corpus-tokens", help="tokens in the corpus to select from, e.g. 500B")
    comp.add_argument("--run-dir", help="a datadiet run directory whose manifest gives the corpus")
    comp.add_argument("--tokens-per-param", type=float, default=20.0, help="compute-optimal tokens per parameter")
    comp.add_argument("--flops-per-param-token", type=float, default=6.0, help="C = k N D (default 6)")
    comp.add_argument("--max-epochs", type=float, default=4.0, help="epochs of repetition nearly as good as fresh data")
    comp.add_argument("--seq-len", type=int, default=2048)
    comp.add_argument("--lora-rank", type=int, default=16)
    comp.add_argument("--lora-targets", choices=["all", "attention"], default="all")
    comp.add_argument("--optimizer", choices=["adamw", "adamw-8bit", "sgd"], default="adamw")
    comp.add_argument("--attention", choices=["flash", "eager"], default="flash")
    comp.add_argument("--methods", default="full,lora,qlora", help="comma-separated: full, lora, qlora")
    comp.add_argument("--precisions", default="fp32,mixed,bf16", help="comma-separated: fp32, mixed, bf16")
    plan.set_defaults(func=run_plan)

    vp = subparsers.add_parser("validate-proxy", help="rank correlation of a small proxy's losses with a larger model's")
    vp.add_argument("--proxy", required=True, help="the small model's directory")
    vp.add_argument("--reference", required=True, help="the larger model's directory")
    vp.add_argument("--input", nargs="+", required=True, metavar="PATH", help="probe texts: files, globs or dirs")
    vp.add_argument("--text-column", default="text")
    vp.add_argument("--sample", type=int, default=256, help="probe documents (default 256)")
    vp.add_argument("--threshold", type=float, default=0.7, help="warn below this Spearman rho (default 0.7)")
    vp.add_argument("--max-length", type=int, help="tokens per window for both models")
    vp.add_argument("--json", metavar="FILE")
    vp.set_defaults(func=run_validate_proxy)

    sr = subparsers.add_parser("stop-rule", help="fit a power law to a loss curve and say when to stop")
    sr.add_argument("curve", help="LOSS.csv (step, loss[, tokens | flops]) or training_log.jsonl")
    sr.add_argument("--threshold", type=float, help="stop when the loss falls less than this per FLOP")
    sr.add_argument("--remaining-flops", type=float, help="derive the threshold from the FLOPs left to spend")
    sr.add_argument("--params", help="model parameters (FLOPs per step = 6 N tokens per step)")
    sr.add_argument("--flops-per-step", type=float)
    sr.add_argument("--plot", help="PNG to write (default: stop_rule.png beside the curve)")
    sr.add_argument("--json", metavar="FILE")
    sr.set_defaults(func=run_stop_rule)


def _dump(path: str, data: dict) -> None:
    from pathlib import Path

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(data, indent=2, default=float))


def dry_run_command(args: argparse.Namespace) -> int:
    """``datadiet run RECIPE --dry-run`` and ``datadiet plan RECIPE``: print the estimate."""
    from .. import cli
    from .dry_run import dry_run

    recipe = args.recipe
    from_args = getattr(cli, "pipeline_from_args", None)
    if from_args is not None and hasattr(args, "set"):  # `run --dry-run`: the run's own recipe edits
        recipe = from_args(args)
    overrides = {} if recipe is not args.recipe else {
        "input": getattr(args, "input", None), "scheduler": getattr(args, "scheduler", None),
        "workers": getattr(args, "workers", None)}
    plan = dry_run(recipe, sample_rows=getattr(args, "sample_rows", 512),
                   use_cache=not getattr(args, "no_cache", False), **overrides)
    plan.recipe = str(args.recipe)
    print(plan.table())
    if getattr(args, "json", None):
        _dump(args.json, plan.to_dict())
        print(f"wrote {args.json}")
    return 0


def _corpus(args) -> dict:
    from .plan_file import manifest_corpus, source_fingerprint
    from .shapes import parse_count

    given = [n for n, v in (("--corpus-tokens", args.corpus_tokens), ("--run-dir", args.run_dir),
                            ("RECIPE", args.recipe)) if v]
    if len(given) > 1:
        raise ConfigError(f"plan --compute: give one corpus ({' or '.join(given)}), not several")
    if args.corpus_tokens:
        return {"tokens": parse_count(args.corpus_tokens, "--corpus-tokens"), "fingerprint": None, "from": "given"}
    if args.run_dir:
        return manifest_corpus(args.run_dir)
    if args.recipe:
        from ..pipeline.pipeline import Pipeline
        from .dry_run import dry_run

        pipe = Pipeline.from_yaml(args.recipe, input=args.input)
        pipe.specs = []  # the corpus only: no scorer is calibrated
        pipe.steps, pipe.budget = [], None
        estimate = dry_run(pipe, sample_rows=args.sample_rows)
        return {"tokens": estimate.tokens, "fingerprint": source_fingerprint(pipe.source),
                "from": f"{args.recipe}, estimated from {estimate.sample_rows} rows"}
    return {}


def run_plan(args: argparse.Namespace) -> int:
    if not args.compute:
        if not args.recipe:
            raise ConfigError("plan: give a RECIPE to estimate, or --compute to plan training compute and memory")
        return dry_run_command(args)
    from .compute import budget_flops
    from .gpus import resolve_gpu
    from .report import compute_report
    from .shapes import parse_count, shape_for_params, shape_from_config

    if args.params and args.model_config:
        raise ConfigError("plan --compute: give --params or --model-config, not both")
    if args.model_config:
        shape = shape_from_config(args.model_config)
    elif args.params:
        shape = shape_for_params(parse_count(args.params, "--params"))
    else:
        shape = None
    gpu = resolve_gpu(args.gpu, args.gpu_memory, args.gpu_peak_flops)
    flops, source = budget_flops(args.flops, args.gpu_hours, gpu.peak_flops if gpu else None, args.utilization)
    if shape is None:
        from ..errors import BudgetError

        raise BudgetError("plan --compute needs the model size: --params (e.g. 7B) or --model-config (a config.json)"
                          + ("; a FLOP budget alone does not say how many tokens it buys" if flops else ""))
    report = compute_report(
        shape, gpu, flops, source, _corpus(args), args.utilization, args.tokens_per_param, args.flops_per_param_token,
        args.max_epochs, args.seq_len, args.lora_rank, args.lora_targets, args.optimizer, args.attention,
        [m.strip() for m in args.methods.split(",") if m.strip()],
        [p.strip() for p in args.precisions.split(",") if p.strip()])
    print(report.text())
    if args.json:
        from .plan_file import write_plan

        write_plan(args.json, report.to_dict())
        print(f"\nwrote {args.json}")
    return 0


def run_validate_proxy(args: argparse.Namespace) -> int:
    from ..readers.source import Source
    from .proxy_validity import validate_proxy
    from .sample import read_sample

    source = Source(paths=args.input, text_column=args.text_column)
    source.validate_params("--input")
    shards = source.shards()
    sample = read_sample(source, shards, source.check_columns(shards), args.sample)
    texts = sample.view.column("text").to_pylist()
    params = {"max_length": args.max_length} if args.max_length else {}
    check = validate_proxy(args.proxy, args.reference, texts, args.threshold, **params)
    print(check.message())
    if not check.ok:
        print(f"datadiet: warning: proxy rank correlation {check.rho:.3f} is below {args.threshold:g}", file=sys.stderr)
    if args.json:
        _dump(args.json, check.to_dict())
    return 0


def run_stop_rule(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .shapes import parse_count
    from .stop_rule import fit_stop_rule, plot_stop_rule, read_curve

    params = parse_count(args.params, "--params") if args.params else None
    curve = read_curve(args.curve, params=params, flops_per_step=args.flops_per_step)
    rule = fit_stop_rule(curve, threshold=args.threshold, remaining_flops=args.remaining_flops)
    print(rule.summary())
    plot = Path(args.plot) if args.plot else Path(args.curve).with_name("stop_rule.png")
    plot_stop_rule(curve, rule, plot)
    print(f"plot:       {plot}")
    if args.json:
        _dump(args.json, rule.to_dict())
    return 0
