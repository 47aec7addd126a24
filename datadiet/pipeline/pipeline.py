"""Pipeline: plan (discovery I/O only), validate (config, columns, dependencies, before any
compute), run (fit → score → select → write → manifest) on an executor."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from ..errors import ConfigError
from ..fingerprint import component_fingerprint, files_fingerprint, fingerprint
from ..readers.base import Shard
from ..readers.source import Source
from ..rundir import RunDir
from ..scorers.base import Scorer
from ..select.base import Budget, GroupSelector, Selector
from ..stages.score import ScorerSpec, ScoreTask
from ..stages.select import validate_steps
from .executor import Executor, make_executor

INGEST_VERSION = "1"
BUILTIN_COLUMNS = {"doc_id": pa.string(), "n_tokens": pa.int64(), "n_bytes": pa.int64(), "source": pa.string()}
DEFAULT_TARGET_FILE_BYTES = 256 << 20


@dataclass
class Plan:
    """What ``plan()`` found: shards, the unified schema, scorer rounds and fingerprints."""

    shards: list[Shard]
    schema: pa.Schema
    ingest_fp: str
    rounds: list[list[ScorerSpec]]
    columns: dict[str, pa.DataType]
    producers: dict[str, ScorerSpec] = field(default_factory=dict)


@dataclass
class RunResult:
    """What a run produced: the manifest and where the output is.

    Example::

        result = Pipeline.from_yaml("recipe.yaml").run()
        result.manifest["counts"]["selected_rows"], result.data_dir
    """

    #: a local directory, or the URL of an object-store output
    output_dir: Path | str
    manifest: dict
    storage_options: dict = field(default_factory=dict)

    @property
    def data_dir(self) -> Path | str:
        return f"{self.output_dir}/data" if isinstance(self.output_dir, str) else self.output_dir / "data"

    @property
    def manifest_path(self) -> Path | str:
        return f"{self.output_dir}/manifest.json" if isinstance(self.output_dir, str) \
            else self.output_dir / "manifest.json"

    def load(self):
        """The selected rows as a ``datasets.Dataset``."""
        import datasets

        if isinstance(self.output_dir, str):  # the files the manifest (the commit marker) names
            files = [f"{self.output_dir}/{rel}" for rel in self.manifest["outputs"].get("data", [])]
            return datasets.load_dataset("parquet", data_files=files, split="train",
                                         storage_options=self.storage_options or None)
        return datasets.load_dataset("parquet", data_dir=str(self.data_dir), split="train")


def _as_spec(item: Any, i: int) -> ScorerSpec:
    if isinstance(item, ScorerSpec):
        return item
    if isinstance(item, tuple) and len(item) == 2:
        return ScorerSpec(item[0], item[1])
    if isinstance(item, Scorer):
        return ScorerSpec(item.registry_name, item)
    raise ConfigError(f"scorers[{i}]: expected a Scorer or (name, Scorer), got {type(item).__name__}")


class Pipeline:
    """Score a corpus, select rows under a budget, write the pruned dataset.

    Example::

        from datadiet import Pipeline, Source, Budget
        from datadiet.scorers import get_scorer
        from datadiet.select import get_selector
        p = Pipeline(source=Source(paths="data_samples/corpus/*.parquet", id_column="id"),
                     scorers=[get_scorer("compression")()],
                     select=[get_selector("top_k")(score="compression.ratio", keep="high")],
                     budget=Budget(tokens=100_000), output="out/run1", scheduler="synchronous")
        result = p.run()
    """

    def __init__(
        self,
        source: Source | Any,
        scorers: list | None = None,
        select: list[Selector] | None = None,
        budget: Budget | None = None,
        output: str | Path = "out",
        target: Source | dict[str, Source] | None = None,
        seed: int = 0,
        scheduler: str = "local",
        workers: int | None = None,
        target_file_bytes: int = DEFAULT_TARGET_FILE_BYTES,
        include_scores: bool = False,
        progress: bool = True,
        overwrite: bool = False,
        ranking: bool = False,
        marginal_gain_threshold: float | None = None,
        order: str = "auto",
        curriculum=None,
        cascade: bool = False,
        recipe: dict | None = None,
        work_dir: str | Path | None = None,
        output_storage_options: dict | None = None,
    ):
        self.source = source if isinstance(source, Source) else Source.from_data(source)
        self.specs = [_as_spec(s, i) for i, s in enumerate(scorers or [])]
        self.steps = list(select or [])
        self.budget = budget
        from ..urls import is_remote, local_output

        #: a local directory, or a URL published through fsspec (see pipeline/object_store.py)
        if is_remote(output):
            from ..urls import require_filesystem

            require_filesystem(str(output), "output")
        self.output = str(output).rstrip("/") if is_remote(output) else Path(local_output(output))
        self.output_storage_options = dict(output_storage_options or {})
        #: where a URL output's run works (scores, fits, staging) before publishing
        self.work_dir = Path(work_dir) if work_dir is not None else None
        self.targets = target if isinstance(target, dict) else ({"default": target} if target is not None else {})
        self.seed = seed
        self.scheduler = scheduler
        self.workers = workers
        self.target_file_bytes = target_file_bytes
        self.include_scores = include_scores
        #: replace an earlier datadiet run's output in ``output`` (never files it did not write)
        self.overwrite = overwrite
        #: write ranking/: the total order of eligible rows (every smaller budget is a prefix)
        self.write_ranking = ranking
        self.gain_threshold = marginal_gain_threshold
        #: data/ layout: "auto" (rank order for rankers, the curriculum's order) or "input"
        self.order = order
        self.curriculum = curriculum
        #: score expensive scorers only on rows the leading row filters keep
        self.cascade = cascade
        self.progress = progress
        self.recipe = recipe
        self._plan: Plan | None = None

    # -- construction from recipes --------------------------------------------------------

    @classmethod
    def from_yaml(cls, path: str | Path, **overrides) -> Pipeline:
        from ..config import load_recipe

        return cls.from_config(load_recipe(path), recipe_dir=Path(path).parent, **overrides)

    @classmethod
    def from_config(cls, config: dict, **overrides) -> Pipeline:
        from ..config import pipeline_kwargs

        return cls(**pipeline_kwargs(config, overrides))

    def to_config(self) -> dict:
        from ..config import pipeline_config

        return pipeline_config(self)

    # -- plan and validate ----------------------------------------------------------------

    def validate(self) -> Plan:
        """Check the whole configuration and the inputs' columns before any compute."""
        self.source.validate_params("source")
        from ..urls import require_filesystem

        if not self.source.in_memory and self.source.paths:
            for path in [self.source.paths] if isinstance(self.source.paths, str) else list(self.source.paths):
                require_filesystem(str(path), "source.paths")
        for name, target in self.targets.items():
            target.validate_params(f"targets.{name}")
        if self.budget is not None:
            self.budget.validate_params("budget")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ConfigError(f"'seed' must be an int. Got {self.seed!r} instead.")
        if not isinstance(self.target_file_bytes, int) or self.target_file_bytes < 1:
            raise ConfigError(f"output.target_file_bytes must be an int >= 1. Got {self.target_file_bytes!r} instead.")
        names = [s.name for s in self.specs]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ConfigError(f"two scorers are named {sorted(dup)[0]!r}; give one a different 'name'")
        for spec in self.specs:
            spec.scorer.validate_params(f"scorer {spec.name!r}")
            check = getattr(spec.scorer, "check", None)
            if callable(check):
                check()
        for i, sel in enumerate(self.steps):
            sel.validate_params(f"select[{i}]")
        validate_steps(self.steps, self.budget)
        plan = self.plan()
        from .ownership import check_not_input

        sources = {"input": self.source, **{f"target {name!r}": t for name, t in self.targets.items()}}
        if self.remote_output:
            from .object_store import check_not_input_url

            check_not_input_url(self.output, sources)
        check_not_input(self.run_root, sources)
        return plan

    @property
    def remote_output(self) -> bool:
        return isinstance(self.output, str)

    @property
    def run_root(self) -> Path:
        """The local directory the run works in: the output, or a URL output's work directory."""
        if not self.remote_output:
            return self.output
        from .object_store import default_work_dir

        return self.work_dir or default_work_dir(self.output)

    def plan(self) -> Plan:
        if self._plan is not None:
            return self._plan
        shards = self.source.shards()
        schema = self.source.check_columns(shards)
        ingest_fp = fingerprint(
            "ingest", INGEST_VERSION, self.source.text_column, self.source.instruction_column,
            self.source.response_column, self.source.id_column, self.source.source_column,
            self.source.template, self._tokenizer_fp(), schema.to_string(show_schema_metadata=False),
        )
        columns = dict(BUILTIN_COLUMNS)
        producers: dict[str, ScorerSpec] = {}
        for spec in self.specs:
            for col, dtype in spec.columns().items():
                if col in columns:
                    raise ConfigError(f"scorer {spec.name!r} produces column {col!r}, which already exists")
                columns[col] = dtype
                producers[col] = spec
        rounds = self._rounds(producers)
        for i, sel in enumerate(self.steps):
            wanted = list(sel.columns()) + ([sel.group_by()] if isinstance(sel, GroupSelector) else [])
            for col in wanted:
                if col not in columns:
                    raise ConfigError(
                        f"select[{i}] ({sel.registry_name}) reads column {col!r}, which no scorer produces; "
                        f"available: {', '.join(sorted(columns))}")
        self._plan = Plan(shards, schema, ingest_fp, rounds, columns, producers)
        return self._plan

    def _tokenizer_fp(self) -> str:
        if not self.source.tokenizer:
            return ""
        path = Path(self.source.tokenizer)
        files = [path / "tokenizer.json"] if path.is_dir() else [path]
        missing = [f for f in files if not f.is_file()]
        if missing:
            from ..errors import ModelError

            raise ModelError(f"tokenizer not found: {missing[0]} (source.tokenizer must be a directory "
                             "with tokenizer.json or the file itself)")
        return files_fingerprint(files)

    def _rounds(self, producers: dict[str, ScorerSpec]) -> list[list[ScorerSpec]]:
        """Scorers grouped so each round only reads columns of earlier rounds."""
        level: dict[str, int] = {}

        def depth(spec: ScorerSpec, seen: tuple[str, ...] = ()) -> int:
            if spec.name in level:
                return level[spec.name]
            if spec.name in seen:
                raise ConfigError(f"scorers form a cycle: {' -> '.join(seen + (spec.name,))}")
            d = 0
            for col in spec.scorer.required_inputs():
                if col not in producers:
                    raise ConfigError(f"scorer {spec.name!r} reads column {col!r}, which no scorer produces")
                if producers[col] is spec:
                    raise ConfigError(f"scorer {spec.name!r} reads its own column {col!r}")
                d = max(d, depth(producers[col], seen + (spec.name,)) + 1)
            level[spec.name] = d
            return d

        for spec in self.specs:
            depth(spec)
        n = max(level.values(), default=0) + 1
        return [[s for s in self.specs if level[s.name] == r] for r in range(n)]

    # -- run ------------------------------------------------------------------------------

    def run(self, executor: Executor | None = None) -> RunResult:
        from .runner import execute

        started = time.perf_counter()
        plan = self.validate()
        plan_seconds = time.perf_counter() - started
        own = executor is None
        executor = executor or make_executor(self.scheduler, self.workers, self.progress)
        try:
            return execute(self, plan, executor, plan_seconds)
        finally:
            if own:
                executor.close()

    def score_tasks(self, plan: Plan, run: RunDir, specs: list[ScorerSpec]) -> list[ScoreTask]:
        inputs = {}
        for spec in specs:
            for col in spec.scorer.required_inputs():
                producer = plan.producers[col]
                inputs[col] = (producer.name, producer.fingerprint)
        light = self.source.__class__(**self.source.get_params())  # without in-memory data
        return [ScoreTask(shard, light, plan.schema, str(run.root), plan.ingest_fp, specs, inputs)
                for shard in plan.shards]

    def assign_fingerprint(self, spec: ScorerSpec, plan: Plan, fit_fp: str = "") -> None:
        deps = sorted((c, plan.producers[c].fingerprint) for c in spec.scorer.required_inputs())
        spec.fingerprint = component_fingerprint(spec.scorer, plan.ingest_fp, spec.scorer.state_fingerprint(),
                                                 fit_fp, deps)


__all__ = ["Pipeline", "Plan", "RunResult"]
