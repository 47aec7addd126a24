"""Train a small causal LM as a proxy: tokenizer, GPT-2 or Llama config, AdamW, checkpoints.

Output directory layout::

    OUT/                       the final model: loads with AutoModelForCausalLM / AutoTokenizer
      config.json model.safetensors tokenizer.json ... optimizer.safetensors
      proxy_config.json        the ProxyTrainConfig used
      training_log.jsonl       {"step", "loss", "lr", "tokens", "seconds"} per logged step
      checkpoint-<step>/       same files as OUT (model, tokenizer, optimizer state) at save_steps

Deterministic for a seed on CPU (same thread count): same weights, same log losses.

Example::

    result = train_proxy(texts, "runs/proxy", n_layer=2, n_embd=128, steps=200, save_steps=[50, 100])
    result.checkpoints   # [Path("runs/proxy/checkpoint-50"), Path("runs/proxy/checkpoint-100")]
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from ..errors import ConfigError, InputError
from ..params import Component, Interval
from .optimizer_state import save_optimizer_state

LOG_FILE = "training_log.jsonl"
CONFIG_FILE = "proxy_config.json"
log = logging.getLogger("datadiet.train")


def _save_steps_rule(value) -> str | None:
    if any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in value):
        return "must be a list of ints >= 1"
    return None


class ProxyTrainConfig(Component):
    """Options of :func:`train_proxy` (also what ``datadiet proxy train`` flags and YAML map to).

    ``arch`` gpt2 or llama; ``n_layer``/``n_embd``/``n_head``/``n_ctx`` size the model;
    ``vocab_size`` the BPE vocabulary (or ``tokenizer``: a directory whose tokenizer is reused,
    so several proxies share one vocabulary); ``steps`` of AdamW on ``batch_size`` blocks of
    ``n_ctx`` tokens with ``lr``, ``warmup`` steps then a ``schedule`` (cosine/linear decay to
    ``min_lr_ratio * lr``, or constant); checkpoints at ``save_steps``.

    Example::

        cfg = ProxyTrainConfig.from_config({"n_layer": 2, "steps": 100, "save_steps": [50]})
    """

    _constraints = {
        "n_layer": Interval(int, 1), "n_embd": Interval(int, 8), "n_head": Interval(int, 1),
        "n_ctx": Interval(int, 8), "vocab_size": Interval(int, 300), "steps": Interval(int, 1),
        "batch_size": Interval(int, 1), "lr": Interval(float, 0, low_open=True),
        "warmup": Interval(int, 0), "min_lr_ratio": Interval(float, 0, 1),
        "weight_decay": Interval(float, 0), "grad_clip": Interval(float, 0),
        "dropout": Interval(float, 0, 1, high_open=True), "min_frequency": Interval(int, 1),
        "log_every": Interval(int, 1), "save_steps": _save_steps_rule,
    }

    def __init__(
        self,
        arch: Literal["gpt2", "llama"] = "gpt2",
        n_layer: int = 4,
        n_embd: int = 256,
        n_head: int = 4,
        n_ctx: int = 256,
        vocab_size: int = 8192,
        steps: int = 1000,
        batch_size: int = 16,
        lr: float = 1e-3,
        warmup: int = 100,
        schedule: Literal["cosine", "linear", "constant"] = "cosine",
        min_lr_ratio: float = 0.1,
        weight_decay: float = 0.1,
        grad_clip: float = 1.0,
        dropout: float = 0.0,
        save_steps: list[int] | None = None,
        seed: int = 0,
        tokenizer: str | None = None,
        min_frequency: int = 2,
        log_every: int = 10,
        device: str = "auto",
    ):
        self.arch = arch
        self.n_layer = n_layer
        self.n_embd = n_embd
        self.n_head = n_head
        self.n_ctx = n_ctx
        self.vocab_size = vocab_size
        self.steps = steps
        self.batch_size = batch_size
        self.lr = lr
        self.warmup = warmup
        self.schedule = schedule
        self.min_lr_ratio = min_lr_ratio
        self.weight_decay = weight_decay
        self.grad_clip = grad_clip
        self.dropout = dropout
        self.save_steps = save_steps
        self.seed = seed
        self.tokenizer = tokenizer
        self.min_frequency = min_frequency
        self.log_every = log_every
        self.device = device

    def validate_params(self, where: str = "") -> None:
        super().validate_params(where)
        label = f"{where}: " if where else ""
        if self.n_embd % self.n_head:
            raise ConfigError(f"{label}n_embd ({self.n_embd}) must be a multiple of n_head ({self.n_head})")
        late = [s for s in self.save_steps or () if s > self.steps]
        if late:
            raise ConfigError(f"{label}save_steps {late} are beyond steps ({self.steps})")

    def lr_at(self, step: int) -> float:
        """Learning rate for optimizer step ``step`` (1-based)."""
        if self.warmup and step <= self.warmup:
            return self.lr * step / self.warmup
        if self.schedule == "constant":
            return self.lr
        progress = (step - self.warmup) / max(1, self.steps - self.warmup)
        decay = 0.5 * (1 + math.cos(math.pi * progress)) if self.schedule == "cosine" else 1 - progress
        return self.lr * (self.min_lr_ratio + (1 - self.min_lr_ratio) * decay)


@dataclass
class TrainResult:
    out_dir: Path
    checkpoints: list[Path] = field(default_factory=list)
    log_path: Path | None = None
    final_loss: float = float("nan")
    tokens_seen: int = 0


def build_model_config(cfg: ProxyTrainConfig, tokenizer):
    """A transformers GPT2Config or LlamaConfig sized by ``cfg`` for ``tokenizer``."""
    from transformers import GPT2Config, LlamaConfig

    ids = {"bos_token_id": tokenizer.eos_token_id, "eos_token_id": tokenizer.eos_token_id,
           "pad_token_id": tokenizer.pad_token_id}
    if cfg.arch == "gpt2":
        return GPT2Config(
            vocab_size=len(tokenizer), n_positions=cfg.n_ctx, n_embd=cfg.n_embd, n_layer=cfg.n_layer,
            n_head=cfg.n_head, resid_pdrop=cfg.dropout, embd_pdrop=cfg.dropout, attn_pdrop=cfg.dropout, **ids,
        )
    intermediate = 64 * math.ceil(8 * cfg.n_embd / 3 / 64)
    return LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=cfg.n_embd, intermediate_size=intermediate,
        num_hidden_layers=cfg.n_layer, num_attention_heads=cfg.n_head, num_key_value_heads=cfg.n_head,
        max_position_embeddings=cfg.n_ctx, attention_dropout=cfg.dropout, tie_word_embeddings=True, **ids,
    )


def _token_blocks(tokenizer, texts: list[str], n_ctx: int) -> np.ndarray:
    """All texts, each followed by eos, concatenated and cut into rows of ``n_ctx`` tokens."""
    eos = tokenizer.eos_token_id
    stream: list[int] = []
    for lo in range(0, len(texts), 1000):
        enc = tokenizer(texts[lo : lo + 1000], add_special_tokens=False, verbose=False)["input_ids"]
        for ids in enc:
            stream.extend(ids)
            stream.append(eos)
    arr = np.asarray(stream, dtype=np.int64)
    if len(arr) < 2:
        raise InputError("the training texts hold fewer than 2 tokens")
    n_blocks = len(arr) // n_ctx
    if n_blocks == 0:
        return arr[None, :]
    return arr[: n_blocks * n_ctx].reshape(n_blocks, n_ctx)


def _save(model, tokenizer, optimizer, directory: Path, step: int, extra: dict) -> None:
    from .loading import quiet_progress

    directory.mkdir(parents=True, exist_ok=True)
    with quiet_progress():
        model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    save_optimizer_state(optimizer, model, directory, step)
    (directory / "trainer_state.json").write_text(json.dumps({"step": step, **extra}, indent=2, sort_keys=True))


def _log_step(record: dict, steps: int) -> None:
    from ..pipeline.progress import duration, human

    seconds = record["seconds"] or 1e-9
    eta = seconds / record["step"] * (steps - record["step"])
    log.info("proxy train: step %d/%d | loss %.4f | lr %.2e | %s tokens/s | elapsed %s | ETA %s",
             record["step"], steps, record["loss"], record["lr"], human(record["tokens"] / seconds),
             duration(seconds), duration(eta))


def train_proxy(texts: Iterable[str], out_dir: str | os.PathLike, config: ProxyTrainConfig | None = None,
                **options) -> TrainResult:
    """Train a proxy LM on ``texts`` and save it (see the module docstring for the layout).

    ``options`` are :class:`ProxyTrainConfig` parameters, overriding ``config``.
    """
    import torch

    from .loading import load_tokenizer, resolve_device
    from .tokenizer import train_tokenizer

    base = config.get_params() if config is not None else {}
    cfg = ProxyTrainConfig.from_config({**base, **options}, where="proxy train")
    texts = [t for t in texts if t]
    if not texts:
        raise InputError("proxy train: no non-empty texts to train on")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    device = resolve_device(cfg.device)

    if cfg.tokenizer:
        tokenizer = load_tokenizer(cfg.tokenizer)
    else:
        log.info("proxy train: training a %d-token BPE tokenizer on %s texts", cfg.vocab_size, f"{len(texts):,}")
        tokenizer = train_tokenizer(texts, cfg.vocab_size, min_frequency=cfg.min_frequency,
                                    model_max_length=cfg.n_ctx)
    if tokenizer.eos_token_id is None:
        raise ConfigError(f"proxy train: the tokenizer from {cfg.tokenizer} has no eos token")
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    blocks = _token_blocks(tokenizer, texts, cfg.n_ctx)
    log.info("proxy train: %s blocks of %d tokens; %s %d layers x %d wide, %d steps of %d blocks on %s",
             f"{len(blocks):,}", blocks.shape[1], cfg.arch, cfg.n_layer, cfg.n_embd, cfg.steps, cfg.batch_size,
             device)

    from transformers import AutoModelForCausalLM

    torch.manual_seed(cfg.seed)
    model = AutoModelForCausalLM.from_config(build_model_config(cfg, tokenizer)).to(device)
    model.train()
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=cfg.lr, betas=(0.9, 0.95), eps=1e-8,
    )
    rng = np.random.default_rng(cfg.seed)
    order = np.empty(0, dtype=np.int64)
    save_steps = set(cfg.save_steps or ())
    log_path = out / LOG_FILE
    result = TrainResult(out_dir=out, log_path=log_path)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else None
    start, tokens, window = time.perf_counter(), 0, []
    with open(log_path, "w", encoding="utf-8") as log_file:
        for step in range(1, cfg.steps + 1):
            while len(order) < cfg.batch_size:
                order = np.concatenate([order, rng.permutation(len(blocks))])
            take, order = order[: cfg.batch_size], order[cfg.batch_size :]
            batch = torch.from_numpy(blocks[take]).to(device)
            lr = cfg.lr_at(step)
            for group in optimizer.param_groups:
                group["lr"] = lr
            if autocast is not None:
                with autocast:
                    loss = model(input_ids=batch, labels=batch).loss
            else:
                loss = model(input_ids=batch, labels=batch).loss
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            optimizer.step()
            tokens += batch.numel()
            window.append(float(loss.detach()))
            if step % cfg.log_every == 0 or step == cfg.steps or step in save_steps:
                record = {"step": step, "loss": float(np.mean(window)), "lr": lr, "tokens": tokens,
                          "seconds": round(time.perf_counter() - start, 3)}
                log_file.write(json.dumps(record) + "\n")
                log_file.flush()
                window = []
                _log_step(record, cfg.steps)
            if step in save_steps:
                path = out / f"checkpoint-{step}"
                _save(model, tokenizer, optimizer, path, step, {"loss": float(loss.detach()), "tokens": tokens})
                result.checkpoints.append(path)
    result.final_loss = float(loss.detach())
    result.tokens_seen = tokens
    _save(model, tokenizer, optimizer, out, cfg.steps, {"loss": result.final_loss, "tokens": tokens})
    (out / CONFIG_FILE).write_text(json.dumps(cfg.get_params(), indent=2, sort_keys=True))
    log.info("proxy train: saved %s (final loss %.4f)", out, result.final_loss)
    return result
