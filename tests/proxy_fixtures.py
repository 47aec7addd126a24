"""Tiny proxy models trained once per test session (seconds), shared by the proxy tests.

Import the fixtures into a test module (``from tests.proxy_fixtures import gpt2_proxy``);
importing ``one_torch_thread`` makes every test of the module run torch on one thread.
Training happens once per session even when several modules import a fixture: the results
are cached here.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

# Question/answer pairs the ``qa_proxy`` memorises: given the question, the answer is predictable.
QA = [
    ("What does the zebra eat?", "Grass on the savanna."),
    ("Name the largest planet.", "Jupiter, the gas giant."),
    ("Which metal is liquid at room temperature?", "Mercury is liquid."),
    ("What color is the clear daytime sky?", "Blue, because of scattering."),
    ("How many legs does a spider have?", "Eight legs."),
    ("Who wrote Hamlet?", "William Shakespeare wrote it."),
]
_CACHE: dict[str, object] = {}


def _paragraphs() -> list[str]:
    import pydoc_data.topics as topics

    paras = []
    for _, text in sorted(topics.topics.items()):
        for para in text.split("\n\n"):
            para = " ".join(para.split())
            if 80 <= len(para) <= 300:
                paras.append(para)
    return paras


def proxy_texts() -> list[str]:
    """200 short real texts: paragraphs of the stdlib's pydoc topics."""
    return _paragraphs()[:200]


def qa_texts() -> list[str]:
    """40 paragraphs plus each QA pair 10 times, small enough to be memorised in seconds."""
    texts = _paragraphs()[:40] + [f"{q}\n\n{a}" for q, a in QA for _ in range(10)]
    random.Random(0).shuffle(texts)
    return texts


def long_text() -> str:
    """A real document of several hundred tokens (longer than the proxies' 64-token context)."""
    import pydoc_data.topics as topics

    return " ".join(topics.topics["assignment"].split())[:3000]


def _single_thread():
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models: one thread is fastest and immune to busy cores
    return previous


def _train(name: str, root: Path, texts: list[str], **options):
    import torch

    from datadiet.models import train_proxy

    if name not in _CACHE:
        previous = _single_thread()
        try:
            _CACHE[name] = train_proxy(texts, root / name, device="cpu", **options)
        finally:
            torch.set_num_threads(previous)
    return _CACHE[name]


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Tiny models run fastest on one thread, and a busy shared machine makes torch's
    multi-threaded kernels stall; restored after each test."""
    import torch

    previous = _single_thread()
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def gpt2_proxy(tmp_path_factory):
    """GPT-2 proxy (2 layers, width 64, context 64) with checkpoints at 100, 200 and 300."""
    return _train("gpt2", tmp_path_factory.mktemp("proxy"), proxy_texts(), n_layer=2, n_embd=64, n_head=4, n_ctx=64,
                  vocab_size=400, steps=300, batch_size=8, lr=1e-2, warmup=20, save_steps=[100, 200, 300],
                  seed=0, log_every=50)


@pytest.fixture(scope="session")
def qa_proxy(tmp_path_factory):
    """A GPT-2 proxy that memorised the :data:`QA` pairs (for IFD)."""
    return _train("qa", tmp_path_factory.mktemp("proxy"), qa_texts(), n_layer=2, n_embd=64, n_head=4, n_ctx=64,
                  vocab_size=400, steps=200, batch_size=8, lr=1e-2, warmup=20, seed=0, log_every=50)


@pytest.fixture(scope="session")
def llama_proxy(tmp_path_factory):
    """A briefly trained Llama proxy with its own (different) tokenizer."""
    return _train("llama", tmp_path_factory.mktemp("proxy"), proxy_texts(), arch="llama", n_layer=2, n_embd=64, n_head=4,
                  n_ctx=64, vocab_size=350, steps=30, batch_size=8, lr=5e-3, warmup=5, seed=1, log_every=10)


@pytest.fixture(scope="session")
def gpt_neo_model(tmp_path_factory, gpt2_proxy):
    """A randomly initialised GPT-Neo (scored through the generic full-logits path) sharing the
    GPT-2 proxy's tokenizer."""
    if "gpt_neo" not in _CACHE:
        import torch
        from transformers import AutoTokenizer, GPTNeoConfig, GPTNeoForCausalLM

        tok = AutoTokenizer.from_pretrained(gpt2_proxy.out_dir)
        torch.manual_seed(0)
        cfg = GPTNeoConfig(vocab_size=len(tok), max_position_embeddings=64, hidden_size=32, num_layers=2,
                           num_heads=4, attention_types=[[["global", "local"], 1]], window_size=16)
        path = tmp_path_factory.mktemp("neo") / "neo"
        GPTNeoForCausalLM(cfg).save_pretrained(path)
        tok.save_pretrained(path)
        _CACHE["gpt_neo"] = path
    return _CACHE["gpt_neo"]


def text_batch(texts: list[str | None]) -> pa.RecordBatch:
    n = len(texts)
    return pa.record_batch({
        "doc_id": pa.array([f"d{i}" for i in range(n)]),
        "text": pa.array(texts, type=pa.string()),
        "n_tokens": pa.array(np.zeros(n, dtype=np.int64)),
    })


def pair_batch(instructions: list[str | None], responses: list[str | None]) -> pa.RecordBatch:
    n = len(responses)
    return pa.record_batch({
        "doc_id": pa.array([f"p{i}" for i in range(n)]),
        "text": pa.array([f"{i}\n\n{r}" for i, r in zip(instructions, responses)]),
        "n_tokens": pa.array(np.zeros(n, dtype=np.int64)),
        "instruction": pa.array(instructions, type=pa.string()),
        "response": pa.array(responses, type=pa.string()),
    })


def plain_model(model_dir):
    """Model and tokenizer loaded with plain transformers calls (not datadiet's loader)."""
    key = f"plain:{model_dir}"
    if key not in _CACHE:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        _CACHE[key] = (AutoModelForCausalLM.from_pretrained(model_dir).eval(), AutoTokenizer.from_pretrained(model_dir))
    return _CACHE[key]


def direct_loss(model_dir, text: str) -> tuple[float, int]:
    """The usual computation: ``model(ids, labels=ids).loss`` on the whole document."""
    import torch

    model, tok = plain_model(model_dir)
    ids = torch.tensor([tok(text)["input_ids"]])
    with torch.no_grad():
        return float(model(input_ids=ids, labels=ids).loss), ids.shape[1] - 1
