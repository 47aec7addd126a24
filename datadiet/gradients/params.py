"""Parameter sets: which layers of a causal LM the gradient features cover.

``params`` names are:

- ``"lm_head"``: the output embedding (tied or not, its use as the output layer);
- ``"last:K"``: the linear layers of the last ``K`` transformer blocks;
- ``"linear"``: every linear layer (``nn.Linear`` and GPT-2's ``Conv1D``), the head included;
- ``"lora"``: the LoRA adapters (``lora_A``/``lora_B``) added by :func:`add_lora`;
- any other string is a glob over module names, e.g. ``"transformer.h.1.mlp.*"``; a module
  that is not linear (a layer norm, an embedding) is covered by the exact engine only.

A list is the union. Linear layers contribute their weight; other modules all their own
parameters. Example::

    layers = resolve_layers(model, ["last:1", "lm_head"])
    [(l.name, l.kind, l.out_features, l.in_features) for l in layers]
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass

from ..errors import ConfigError

NAMED = ("lm_head", "linear", "lora")


@dataclass
class Layer:
    """One covered module. ``kind`` is ``linear`` (weight out x in), ``conv1d`` (GPT-2, weight
    in x out) or ``other``; gradients are always reported in (out x in) orientation."""

    name: str
    module: object
    kind: str

    @property
    def weight(self):
        return self.module.weight

    @property
    def out_features(self) -> int:
        w = self.module.weight
        return int(w.shape[1] if self.kind == "conv1d" else w.shape[0])

    @property
    def in_features(self) -> int:
        w = self.module.weight
        return int(w.shape[0] if self.kind == "conv1d" else w.shape[1])

    def param_names(self) -> list[str]:
        """Names (relative to the module) of the parameters this layer contributes."""
        if self.kind in ("linear", "conv1d"):
            return ["weight"]
        return [n for n, _ in self.module.named_parameters(recurse=False)]

    def numel(self) -> int:
        return sum(getattr(self.module, n).numel() for n in self.param_names())


def layer_kind(module) -> str:
    import torch

    try:
        from transformers.pytorch_utils import Conv1D
    except ImportError:  # pragma: no cover
        Conv1D = ()
    if isinstance(module, torch.nn.Linear):
        return "linear"
    if Conv1D and isinstance(module, Conv1D):
        return "conv1d"
    return "other"


def _blocks(model) -> list[str]:
    """Module names of the transformer blocks: the longest ModuleList in the model."""
    import torch

    best: tuple[int, str] = (0, "")
    for name, mod in model.named_modules():
        if isinstance(mod, torch.nn.ModuleList) and len(mod) > best[0]:
            best = (len(mod), name)
    return [f"{best[1]}.{i}" for i in range(best[0])] if best[0] else []


def _head_name(model) -> str:
    head = model.get_output_embeddings()
    for name, mod in model.named_modules():
        if mod is head:
            return name
    raise ConfigError("the model has no output embedding (lm_head) module")


def _owners(model) -> dict[str, object]:
    return {n: m for n, m in model.named_modules() if n and any(True for _ in m.parameters(recurse=False))}


def _is_lora(name: str) -> bool:
    return ".lora_A." in name + "." or ".lora_B." in name + "."


def resolve_layers(model, params: str | list[str], where: str = "params") -> list[Layer]:
    """The layers of ``model`` named by ``params`` (in module order); a ConfigError naming the
    entry and listing the model's module names when one matches nothing."""
    entries = [params] if isinstance(params, str) else list(params)
    if not entries:
        raise ConfigError(f"{where} must name at least one parameter set")
    owners = _owners(model)
    chosen: set[str] = set()
    for entry in entries:
        found = _match(model, owners, str(entry), where)
        if not found:
            names = ", ".join(n for n in owners if not _is_lora(n))
            hint = " (LoRA adapters need params: lora)" if "lora" in entry else ""
            raise ConfigError(f"{where}: {entry!r} matches no parameter of the model{hint}; its modules are: {names}")
        chosen.update(found)
    return [Layer(n, owners[n], layer_kind(owners[n])) for n in owners if n in chosen]


def _match(model, owners: dict, entry: str, where: str) -> list[str]:
    if entry == "lm_head":
        return [_head_name(model)]
    if entry == "linear":
        return [n for n, m in owners.items() if layer_kind(m) != "other" and not _is_lora(n)]
    if entry == "lora":
        return [n for n in owners if _is_lora(n)]
    if entry.startswith("last:"):
        try:
            k = int(entry[5:])
        except ValueError:
            k = 0
        blocks = _blocks(model)
        if not 1 <= k <= len(blocks):
            raise ConfigError(f"{where}: {entry!r} must be 'last:K' with 1 <= K <= {len(blocks)} (the model's blocks)")
        prefixes = tuple(b + "." for b in blocks[-k:])
        return [n for n, m in owners.items() if n.startswith(prefixes) and layer_kind(m) != "other"
                and not _is_lora(n)]
    return [n for n in owners if fnmatch.fnmatchcase(n, entry)]


def meta_model(path: str, trust_remote_code: bool = False):
    """The model of a local directory built on the ``meta`` device: the module tree and shapes
    without reading or allocating weights (for checks before compute)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    from ..models.loading import quiet_progress

    with quiet_progress():
        config = AutoConfig.from_pretrained(path, local_files_only=True, trust_remote_code=trust_remote_code)
        with torch.device("meta"):
            return AutoModelForCausalLM.from_config(config, trust_remote_code=trust_remote_code)


def add_lora(model, rank: int, alpha: float, seed: int, target_modules: list[str] | None = None):
    """``model`` wrapped with fresh LoRA adapters (peft; ``lora_B`` starts at zero, ``lora_A``
    is seeded) on its linear layers, or on ``target_modules`` (module name suffixes)."""
    import torch
    from peft import LoraConfig, get_peft_model

    if target_modules is None:
        head = _head_name(model)
        target_modules = sorted({n.rsplit(".", 1)[-1] for n, m in _owners(model).items()
                                 if layer_kind(m) != "other" and n != head})
    config = LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=0.0, target_modules=target_modules,
                        fan_in_fan_out=any(layer_kind(m) == "conv1d" for m in model.modules()))
    state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        wrapped = get_peft_model(model, config)
    finally:
        torch.random.set_rng_state(state)
    return wrapped.eval()
