"""Fixtures for the n-gram, embedding and diversity tests: a real text mixture built from
the Python standard library (documentation prose, source code, licence text) and a tiny
GPT-2-style model with a byte-level BPE tokenizer trained in the session."""

from __future__ import annotations

import re
import sysconfig
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest


def make_table(texts: list[str], ids: list[str] | None = None, source: list[str] | None = None, **columns) -> pa.Table:
    """A scoring-view table: doc_id, text, n_tokens (whitespace words), source, extras."""
    ids = ids or [f"doc-{i:05d}" for i in range(len(texts))]
    data = {
        "doc_id": pa.array(ids, pa.string()),
        "text": pa.array(texts, pa.string()),
        "n_tokens": pa.array([len(t.split()) if t else 0 for t in texts], pa.int64()),
        "source": pa.array(source or ["test"] * len(texts), pa.string()),
    }
    data.update(columns)
    return pa.table(data)


def _chunks(text: str, size: int) -> list[str]:
    """Paragraph-aligned chunks of at least ``size`` characters."""
    out, current = [], []
    for para in re.split(r"\n\s*\n", text):
        if not para.strip():
            continue
        current.append(para)
        if sum(len(p) for p in current) >= size:
            out.append("\n\n".join(current))
            current = []
    if current:
        out.append("\n\n".join(current))
    return out


def stdlib_prose() -> list[str]:
    import pydoc_data.topics as topics

    docs = []
    for name in sorted(topics.topics):
        docs.extend(_chunks(topics.topics[name], 600))
    return docs


def stdlib_code(limit: int = 400) -> list[str]:
    root = Path(sysconfig.get_path("stdlib"))
    docs = []
    for path in sorted(root.glob("*.py")):
        try:
            docs.extend(_chunks(path.read_text(encoding="utf-8"), 600))
        except (UnicodeDecodeError, OSError):
            continue
        if len(docs) >= limit:
            break
    return docs[:limit]


def stdlib_licence() -> list[str]:
    path = Path(sysconfig.get_path("stdlib")) / "LICENSE.txt"
    return _chunks(path.read_text(encoding="utf-8"), 400)


@pytest.fixture(scope="session")
def mixture():
    """{"target": prose table, "pool": mixed table, "labels": pool source per row}.
    Target and pool prose are disjoint halves of the documentation topics."""
    prose = stdlib_prose()
    target_prose, pool_prose = prose[0::2], prose[1::2]
    code, licence = stdlib_code(), stdlib_licence()
    texts = pool_prose + code + licence
    labels = ["prose"] * len(pool_prose) + ["code"] * len(code) + ["licence"] * len(licence)
    order = np.random.default_rng(0).permutation(len(texts))
    texts = [texts[i] for i in order]
    labels = [labels[i] for i in order]
    pool = make_table(texts, source=labels)
    target = make_table(target_prose, ids=[f"target-{i:05d}" for i in range(len(target_prose))])
    return {"target": target, "pool": pool, "labels": np.array(labels)}


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, mixture) -> Path:
    """A randomly initialised 2-layer GPT-2 (width 32) with a byte-level BPE tokenizer
    trained on the mixture, saved as safetensors."""
    import torch
    from tokenizers import ByteLevelBPETokenizer
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    out = tmp_path_factory.mktemp("tiny_gpt2")
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(mixture["pool"].column("text").to_pylist(), vocab_size=512, min_frequency=2,
                            special_tokens=["<|endoftext|>"], show_progress=False)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe._tokenizer, eos_token="<|endoftext|>",
                                        bos_token="<|endoftext|>", unk_token="<|endoftext|>")
    tokenizer.save_pretrained(out)
    torch.manual_seed(0)
    eos = tokenizer.eos_token_id
    config = GPT2Config(vocab_size=len(tokenizer), n_positions=128, n_embd=32, n_layer=2, n_head=2,
                        bos_token_id=eos, eos_token_id=eos)
    GPT2LMHeadModel(config).save_pretrained(out, safe_serialization=True)
    return out
