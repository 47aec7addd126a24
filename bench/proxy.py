"""Proxy-model scoring speed: datadiet's ``loss`` scorer vs the usual one-document loop.

Model: a GPT-2 of width 512 (6 layers, 8 heads, context 512, vocabulary 8192; random
initialisation, which costs the same FLOPs as a trained one) with a byte-level BPE tokenizer
trained on the documents. Documents: ~1 KB cuts (at a word boundary) of wiki_en, books_pg and
reviews_movie from ../shared/corpora.

Measured in one run; each repeat times every contender in turn (so a busy machine slows them
alike) and the figures are medians over repeats:

- tokens/s of ``LossScorer.score_batch`` (tokenization included) vs the usual loop: one
  document at a time, ``tokenizer(text)`` then ``model(ids, labels=ids).loss`` under
  ``torch.no_grad()``. The two must agree per document (max difference reported).
- achieved model FLOP/s = 2 x parameters in matmuls (attention and MLP projections and the
  output head; not embeddings) x tokens / s, against the peak of a large matmul
  (``torch.mm`` of 4096 x 4096, float32 on CPU; 8192 x 8192 bfloat16 on CUDA) measured in the
  same run -> utilisation.
- On CPU, the same scorer in bfloat16 (AMX/AVX-512-BF16 where the CPU has them) vs a
  bfloat16 matmul peak, as extra figures.

    .venv/bin/python -m bench.proxy [--quick] [--device cpu|cuda] [--docs N] [--batch-tokens N] [--threads N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from bench.common import corpora_dir, emit

os.environ.setdefault("TQDM_DISABLE", "1")
CORPORA = ("wiki_en", "books_pg", "reviews_movie")


def load_docs(n_docs: int, chars: int = 1000) -> list[str]:
    root = corpora_dir()
    per = -(-n_docs // len(CORPORA))
    docs = []
    for name in CORPORA:
        texts = pq.read_table(root / name / "train.parquet", columns=["text"]).column("text").to_pylist()
        texts = [t for t in texts if t and len(t) >= chars]
        for t in texts[:: max(1, len(texts) // per)][:per]:
            cut = t.rfind(" ", 0, chars)
            docs.append(t[: cut if cut > chars // 2 else chars])
    return docs[:n_docs]


def build_model(docs: list[str], out: Path, n_layer: int, width: int, vocab: int, ctx: int) -> Path:
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    from datadiet.models.loading import quiet_progress
    from datadiet.models.tokenizer import train_tokenizer

    tok = train_tokenizer(docs, vocab, model_max_length=ctx)
    torch.manual_seed(0)
    cfg = GPT2Config(vocab_size=len(tok), n_positions=ctx, n_embd=width, n_layer=n_layer, n_head=width // 64,
                     bos_token_id=tok.eos_token_id, eos_token_id=tok.eos_token_id)
    with quiet_progress():
        GPT2LMHeadModel(cfg).save_pretrained(out)
    tok.save_pretrained(out)
    return out


def matmul_params(model) -> int:
    """Weights used in matmuls per token: every 2-D weight except embeddings' lookups, plus the
    output head (tied to the token embedding in GPT-2)."""
    head = model.get_output_embeddings().weight
    embeddings = {id(model.get_input_embeddings().weight)}
    pos = getattr(model.base_model, "wpe", None)
    if pos is not None:
        embeddings.add(id(pos.weight))
    total = sum(p.numel() for p in model.parameters() if p.dim() == 2 and id(p) not in embeddings)
    return total + head.numel()


def matmul_peak(device, dtype, n: int, repeats: int = 5) -> float:
    import torch

    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    times = []
    for i in range(repeats + 1):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        torch.mm(a, b)
        if device.type == "cuda":
            torch.cuda.synchronize()
        if i:
            times.append(time.perf_counter() - start)
    return 2 * n**3 / statistics.median(times)


def usual_loop(model_dir: Path, device, dtype, ctx: int):
    """The one-document loop as a function of the documents (model loaded once, untimed)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype).to(device).eval()

    def run(docs: list[str]) -> tuple[np.ndarray, int]:
        losses, tokens = [], 0
        with torch.no_grad():
            for text in docs:
                ids = tok(text, return_tensors="pt")["input_ids"][:, :ctx].to(device)
                losses.append(float(model(input_ids=ids, labels=ids).loss))
                tokens += ids.shape[1]
        return np.asarray(losses), tokens

    return run


def scorer_fn(model_dir: Path, docs: list[str], device: str, dtype: str, batch_tokens):
    from datadiet.scorers.loss import LossScorer

    batch = pa.record_batch({"doc_id": [str(i) for i in range(len(docs))], "text": docs,
                             "n_tokens": np.zeros(len(docs), np.int64)})
    scorer = LossScorer(model=str(model_dir), device=device, dtype=dtype, batch_tokens=batch_tokens)
    scorer.setup()
    scorer.score_batch(batch.slice(0, min(16, len(docs))))  # warm-up
    return (lambda: scorer.score_batch(batch)), scorer


def interleaved(fns: dict, repeats: int) -> tuple[dict, dict]:
    """Median seconds of each function, timed in turn within each repeat so that a busy
    machine slows them alike; and each one's last result (peaks: every result)."""
    times, results = {k: [] for k in fns}, {}
    for _ in range(repeats):
        for key, fn in fns.items():
            start = time.perf_counter()
            value = fn()
            times[key].append(time.perf_counter() - start)
            results[key] = results.get(key, []) + [value] if key.endswith("peak") else value
    return {k: statistics.median(v) for k, v in times.items()}, results


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer documents and repeats")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--docs", type=int)
    parser.add_argument("--layers", type=int, default=6)
    parser.add_argument("--width", type=int, default=512)
    parser.add_argument("--batch-tokens", type=int, default=None)
    parser.add_argument("--no-bf16", action="store_true", help="skip the CPU bfloat16 figures")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    args = parser.parse_args(argv)

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)

    from datadiet.models.loading import clear_cache, load_causal_lm

    device = torch.device(args.device)
    n_docs = args.docs or (64 if args.quick else 256)
    if args.device == "cuda":
        n_docs = args.docs or (1024 if args.quick else 4096)
    repeats = 3 if args.quick else 5
    ctx, vocab = 512, 8192
    docs = load_docs(n_docs)
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = build_model(docs, Path(tmp) / "proxy", args.layers, args.width, vocab, ctx)
        main_dtype = "float32" if args.device == "cpu" else "bfloat16"
        torch_dtype = getattr(torch, main_dtype)
        model = load_causal_lm(model_dir, dtype=main_dtype, device=args.device)
        n_mm = matmul_params(model)
        clear_cache()

        loop = usual_loop(model_dir, device, torch_dtype, ctx)
        loop([docs[0]])  # warm-up
        score, scorer = scorer_fn(model_dir, docs, args.device, main_dtype, args.batch_tokens)
        fns = {"loop": lambda: loop(docs), "scorer": score,
               "peak": lambda: matmul_peak(device, torch_dtype, 4096 if args.device == "cpu" else 8192)}
        if args.device == "cpu" and not args.no_bf16:
            clear_cache()
            fns["bf16"], _ = scorer_fn(model_dir, docs, "cpu", "bfloat16", args.batch_tokens)
            fns["bf16_peak"] = lambda: matmul_peak(device, torch.bfloat16, 4096)
        seconds, results = interleaved(fns, repeats)
        base_losses, base_tokens = results["loop"]
        out = results["scorer"]
        tokens = int(out["n_scored_tokens"].to_numpy().sum()) + len(docs)
        peak = statistics.median(results["peak"])
        base_seconds, seconds_main = seconds["loop"], seconds["scorer"]
        ours = out["score"].to_numpy()

        tok_s, base_tok_s = tokens / seconds_main, base_tokens / base_seconds
        achieved = 2 * n_mm * tok_s
        figures = {
            "device": args.device, "dtype": main_dtype, "threads": torch.get_num_threads(),
            "docs": len(docs), "tokens": tokens, "params_in_matmuls": n_mm,
            "tokens_per_s": round(tok_s, 1), "model_gflops": round(achieved / 1e9, 2),
            "peak_matmul_gflops": round(peak / 1e9, 2), "utilisation": round(achieved / peak, 3),
            "max_abs_diff_vs_loop": float(np.max(np.abs(ours - base_losses))),
            "batch_tokens": scorer.resolved_settings()["batch_tokens"],
        }
        baseline = {"tokens_per_s": round(base_tok_s, 1), "docs": len(docs), "tokens": base_tokens,
                    "model_gflops": round(2 * n_mm * base_tok_s / 1e9, 2),
                    "utilisation": round(2 * n_mm * base_tok_s / peak, 3)}
        ratio = {"speedup": round(tok_s / base_tok_s, 2), "utilisation": figures["utilisation"]}
        if "bf16" in results:
            bf_peak, bf_tok_s = statistics.median(results["bf16_peak"]), tokens / seconds["bf16"]
            figures.update({
                "bf16_tokens_per_s": round(bf_tok_s, 1),
                "bf16_model_gflops": round(2 * n_mm * bf_tok_s / 1e9, 2),
                "bf16_peak_matmul_gflops": round(bf_peak / 1e9, 2),
                "bf16_utilisation": round(2 * n_mm * bf_tok_s / bf_peak, 3),
                "bf16_max_abs_diff_vs_fp32": float(np.max(np.abs(results["bf16"]["score"].to_numpy() - ours))),
            })
            ratio["bf16_speedup"] = round(bf_tok_s / base_tok_s, 2)
        goal = ("speedup >= 5x vs the one-document loop on CPU; utilisation >= 0.5 of the fp32 matmul peak "
                "(width >= 512); on CUDA >= 0.4 of the bf16 matmul peak")
        return emit(f"proxy_{args.device}", figures, baseline, ratio, goal)


if __name__ == "__main__":
    main()
