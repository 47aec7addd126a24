"""IFD: loss(response | instruction) / loss(response), on a proxy that memorised QA pairs."""

# ruff: noqa: F811  (pytest fixtures imported from tests.proxy_fixtures)

from __future__ import annotations

import numpy as np
import pytest
import torch

from datadiet.errors import ConfigError
from datadiet.scorers import get_scorer
from datadiet.scorers.ifd import IFDScorer
from tests.proxy_fixtures import (  # noqa: F401
    QA,
    gpt2_proxy,
    long_text,
    one_torch_thread,
    pair_batch,
    plain_model,
    qa_proxy,
)


def test_registered():
    assert get_scorer("ifd") is IFDScorer
    assert IFDScorer.view_columns == ("instruction", "response")


def test_predictable_pairs_score_below_one_and_below_unrelated(qa_proxy):
    questions, answers = [q for q, _ in QA], [a for _, a in QA]
    unrelated = ["Describe how the interpreter handles integer literals in source code."] * len(QA)
    scorer = IFDScorer(model=str(qa_proxy.out_dir))
    matched = scorer.score_batch(pair_batch(questions, answers))
    other = scorer.score_batch(pair_batch(unrelated, answers))
    ifd, ifd_other = matched["score"].to_numpy(), other["score"].to_numpy()
    assert np.all(ifd < 1) and ifd.mean() < 0.6  # the memorised question makes its answer predictable
    assert ifd_other.mean() > 0.9  # an unrelated instruction does not help on average
    assert ifd_other.mean() > ifd.mean() + 0.3
    np.testing.assert_allclose(ifd, matched["conditioned_loss"].to_numpy() / matched["response_loss"].to_numpy(),
                               rtol=1e-5)
    # the response alone does not depend on the instruction
    np.testing.assert_allclose(matched["response_loss"].to_numpy(), other["response_loss"].to_numpy(), atol=1e-5)


def response_nll(model_dir, prefix_ids: list[int], response_ids: list[int]) -> float:
    model, _ = plain_model(model_dir)
    ids = torch.tensor([prefix_ids + response_ids])
    labels = ids.clone()
    labels[0, : len(prefix_ids)] = -100
    with torch.no_grad():
        return float(model(input_ids=ids, labels=labels).loss)


def test_losses_match_manual_computation_with_template(gpt2_proxy):
    template = "### Instruction:\n{instruction}\n### Response:\n"
    _, tok = plain_model(gpt2_proxy.out_dir)
    eos = tok.eos_token_id
    pairs = [("What does the zebra eat?", "Grass, mostly."), ("Say hello.", "Hello there, friend!")]
    out = IFDScorer(model=str(gpt2_proxy.out_dir), template=template).score_batch(
        pair_batch([p[0] for p in pairs], [p[1] for p in pairs])
    )
    for i, (ins, resp) in enumerate(pairs):
        prompt = tok(template.format(instruction=ins), add_special_tokens=False)["input_ids"]
        answer = tok(resp, add_special_tokens=False)["input_ids"]
        assert out["conditioned_loss"][i].as_py() == pytest.approx(
            response_nll(gpt2_proxy.out_dir, [eos] + prompt, answer), abs=1e-4)
        assert out["response_loss"][i].as_py() == pytest.approx(
            response_nll(gpt2_proxy.out_dir, [eos], answer), abs=1e-4)


def test_long_instruction_is_windowed_not_truncated(gpt2_proxy):
    out = IFDScorer(model=str(gpt2_proxy.out_dir), max_length=64, stride=48).score_batch(
        pair_batch([long_text()], [QA[0][1]])
    )
    value = out["score"][0].as_py()
    assert value is not None and np.isfinite(value) and out["null_reason"][0].as_py() is None


def test_missing_parts_are_null_with_reason(gpt2_proxy):
    out = IFDScorer(model=str(gpt2_proxy.out_dir)).score_batch(
        pair_batch(["Say hi.", "Say hi.", None, "Say hi."], ["", None, "Hi.", "Hi there."])
    )
    assert out["score"].to_pylist()[:3] == [None, None, None]
    assert out["null_reason"].to_pylist() == ["empty_response", "null_response", "null_instruction", None]
    assert np.isfinite(out["score"][3].as_py())


@pytest.mark.parametrize("template", ["no field here", "{instruction} and {other}", "{0}"])
def test_bad_template_is_a_config_error(gpt2_proxy, template):
    with pytest.raises(ConfigError, match="'template' parameter of IFDScorer"):
        IFDScorer.from_config({"model": str(gpt2_proxy.out_dir), "template": template})
