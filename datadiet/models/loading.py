"""Local causal-LM directories: checks before loading, loading once per worker, identity.

Every model is a local Hugging Face directory (``config.json``, ``*.safetensors``, tokenizer
files). Nothing is downloaded and pickled weights are refused.

Example::

    check_model_dir("runs/proxy")                    # ModelError naming the problem, or the Path
    model = load_causal_lm("runs/proxy", dtype="auto")   # cached per (path, dtype, device)
    tokenizer = load_tokenizer("runs/proxy")
"""

from __future__ import annotations

import contextlib
import json
import os
import struct
from pathlib import Path
from typing import Any

import xxhash

from ..errors import ConfigError, ModelError

__all__ = [
    "check_model_dir",
    "load_causal_lm",
    "load_tokenizer",
    "resolve_device",
    "resolve_dtype",
    "count_parameters",
    "model_fingerprint",
    "clear_cache",
]

DTYPES = ("auto", "float32", "bfloat16", "float16")
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json", "tokenizer_config.json")
_MODEL_CACHE: dict[tuple, Any] = {}
_TOKENIZER_CACHE: dict[tuple, Any] = {}
_FINGERPRINTS: dict[tuple, str] = {}


@contextlib.contextmanager
def quiet_progress():
    """Silence transformers' progress bars and info logs while loading or saving a model."""
    from transformers.utils import logging as hf_logging

    bars, level = hf_logging.is_progress_bar_enabled(), hf_logging.get_verbosity()
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()


def _read_config(path: Path) -> dict:
    try:
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"model directory {path}: config.json cannot be read ({exc})") from None
    if not isinstance(config, dict):
        raise ModelError(f"model directory {path}: config.json is not a JSON object")
    return config


def check_model_dir(path: str | os.PathLike, trust_remote_code: bool = False,
                    require_tokenizer: bool = True) -> Path:
    """Check that ``path`` can be loaded without the hub, pickle or unapproved remote code.

    Raises :class:`~datadiet.errors.ModelError` naming the directory and what is wrong;
    returns the resolved path. Cheap: reads config.json, lists files and checks each
    weights file's safetensors header against its size.
    """
    if path is None or str(path) == "":
        raise ModelError("no model directory given (the 'model' parameter is empty)")
    p = Path(path).expanduser()
    if not p.exists():
        raise ModelError(f"model directory {p} does not exist (models are local directories; "
                         "nothing is downloaded)")
    if not p.is_dir():
        raise ModelError(f"model path {p} is not a directory")
    if not (p / "config.json").is_file():
        raise ModelError(f"model directory {p} has no config.json")
    config = _read_config(p)
    if not any(p.glob("*.safetensors")):
        pickled = sorted(f.name for f in p.glob("*.bin")) + sorted(f.name for f in p.glob("*.pt"))
        hint = f" (found only pickled weights {pickled[:3]}; convert them to safetensors)" if pickled else ""
        raise ModelError(f"model directory {p} has no *.safetensors weights{hint}")
    for file in sorted(p.glob("*.safetensors")):
        if not file.name.startswith("optimizer"):
            problem = safetensors_problem(file)
            if problem:
                raise ModelError(f"model directory {p}: {file.name} is not a valid safetensors file ({problem})")
    if config.get("auto_map") and not trust_remote_code:
        raise ModelError(
            f"model directory {p} needs remote code (config.json has auto_map "
            f"{sorted(config['auto_map'])}) but trust_remote_code is off; set trust_remote_code: true "
            "only if you trust the code in that directory"
        )
    if require_tokenizer and not any((p / name).is_file() for name in _TOKENIZER_FILES):
        raise ModelError(f"model directory {p} has no tokenizer files (expected one of {list(_TOKENIZER_FILES)})")
    return p.resolve()


def resolve_device(device: str = "auto"):
    """``auto`` -> CUDA when available, else CPU; otherwise ``torch.device(device)``."""
    import torch

    if device in (None, "", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ConfigError(f"device must be 'auto', 'cpu' or 'cuda[:N]'. Got {device!r} instead.") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} was asked for, but CUDA is not available on this worker")
    return dev


def resolve_dtype(dtype: str, device) -> Any:
    """``auto`` -> bfloat16 on a CUDA device that supports it, float32 elsewhere."""
    import torch

    if dtype not in DTYPES:
        raise ConfigError(f"dtype must be one of {DTYPES}. Got {dtype!r} instead.")
    if dtype == "auto":
        if device.type == "cuda" and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    return getattr(torch, dtype)


def load_causal_lm(path: str | os.PathLike, *, dtype: str = "auto", device: str = "auto",
                   trust_remote_code: bool = False):
    """The model at ``path`` in eval mode without gradients, loaded once per process."""
    from transformers import AutoModelForCausalLM

    p = check_model_dir(path, trust_remote_code, require_tokenizer=False)
    dev = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, dev)
    key = (str(p), str(torch_dtype), str(dev), trust_remote_code)
    model = _MODEL_CACHE.get(key)
    if model is None:
        try:
            with quiet_progress():
                model = AutoModelForCausalLM.from_pretrained(
                    p, local_files_only=True, trust_remote_code=trust_remote_code,
                    use_safetensors=True, dtype=torch_dtype,
                )
        except (OSError, ValueError, KeyError) as exc:
            raise ModelError(f"model directory {p} could not be loaded as a causal LM: {exc}") from exc
        model.to(dev).eval().requires_grad_(False)
        fuse_activations(model)
        _MODEL_CACHE[key] = model
    return model


def fuse_activations(model) -> int:
    """Swap the Python tanh-GELU modules (GPT-2's ``gelu_new``, ``gelu_fast``) for PyTorch's
    fused ``gelu(approximate="tanh")``: the same function in one kernel instead of seven (the
    results differ by float rounding only). Returns how many modules were swapped."""
    from transformers.activations import FastGELUActivation, GELUTanh, NewGELUActivation

    swapped = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, (NewGELUActivation, FastGELUActivation)):
                setattr(parent, name, GELUTanh())
                swapped += 1
    return swapped


def load_tokenizer(path: str | os.PathLike, *, trust_remote_code: bool = False):
    """The (fast, when available) tokenizer saved in ``path``, loaded once per process."""
    from transformers import AutoTokenizer

    p = check_model_dir(path, trust_remote_code)
    key = (str(p), trust_remote_code)
    tok = _TOKENIZER_CACHE.get(key)
    if tok is None:
        try:
            tok = AutoTokenizer.from_pretrained(p, local_files_only=True, trust_remote_code=trust_remote_code)
        except (OSError, ValueError, KeyError) as exc:
            raise ModelError(f"model directory {p}: the tokenizer could not be loaded: {exc}") from exc
        _TOKENIZER_CACHE[key] = tok
    return tok


def clear_cache() -> None:
    """Forget loaded models and tokenizers (tests, or to free memory)."""
    _MODEL_CACHE.clear()
    _TOKENIZER_CACHE.clear()


MAX_HEADER_BYTES = 100 << 20


def safetensors_problem(file: Path) -> str | None:
    """What is wrong with a safetensors file's header (None when it is sound): the 8-byte
    length, the JSON table and every tensor's byte range against the file size."""
    size = file.stat().st_size
    if size < 8:
        return f"{size} bytes, shorter than the 8-byte header length"
    with open(file, "rb") as fh:
        (n,) = struct.unpack("<Q", fh.read(8))
        if n > min(MAX_HEADER_BYTES, size - 8):
            return f"header length {n} does not fit in a file of {size} bytes"
        try:
            header = json.loads(fh.read(n))
        except (UnicodeDecodeError, ValueError) as exc:
            return f"header is not JSON: {exc}"
    if not isinstance(header, dict):
        return "header is not a JSON object"
    data = size - 8 - n
    end = 0
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        offsets = meta.get("data_offsets") if isinstance(meta, dict) else None
        if (not isinstance(offsets, list) or len(offsets) != 2 or not all(isinstance(o, int) for o in offsets)
                or not 0 <= offsets[0] <= offsets[1]):
            return f"tensor {name!r} has no valid data_offsets"
        if offsets[1] > data:
            return f"tensor {name!r} ends at byte {offsets[1]} of a {data}-byte data section (truncated?)"
        end = max(end, offsets[1])
    if end != data:
        return f"the tensors cover {end} of the {data} data bytes"
    return None


def _safetensors_header(file: Path) -> dict:
    with open(file, "rb") as fh:
        (size,) = struct.unpack("<Q", fh.read(8))
        return json.loads(fh.read(size))


def count_parameters(path: str | os.PathLike) -> int:
    """Number of weights in a model directory, read from the safetensors headers only."""
    p = Path(path)
    total = 0
    for file in sorted(p.glob("*.safetensors")):
        if file.name.startswith("optimizer"):
            continue
        for name, meta in _safetensors_header(file).items():
            if name != "__metadata__":
                n = 1
                for dim in meta["shape"]:
                    n *= dim
                total += n
    return total


def model_fingerprint(path: str | os.PathLike) -> str:
    """xxh64 of the config, weights and tokenizer files of a model directory (cached by size
    and mtime, so a retrained proxy in the same directory gets a new fingerprint)."""
    p = Path(path).resolve()
    files = sorted(
        f for f in p.iterdir()
        if f.is_file() and (f.suffix in (".json", ".safetensors", ".model", ".txt")) and not f.name.startswith("optimizer")
    )
    stamp = tuple((f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in files)
    key = (str(p), stamp)
    if key not in _FINGERPRINTS:
        h = xxhash.xxh64()
        for f in files:
            h.update(f.name.encode())
            with open(f, "rb") as fh:
                for block in iter(lambda fh=fh: fh.read(1 << 24), b""):
                    h.update(block)
        _FINGERPRINTS[key] = h.hexdigest()
    return _FINGERPRINTS[key]
