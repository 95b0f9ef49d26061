"""The masked LM's view probabilities (prompts/mlm.py) on a tiny random BERT saved to a folder
(tests/conftest.py), and the error when no model can be loaded."""

from __future__ import annotations

import math

import pytest
import torch

from t3d.errors import T3dError
from t3d.prompts.mlm import TEMPLATE, load_mlm
from tests.helpers.tolerances import network_rounding, sum_rounding


def _direct_probability(scorer, prompt: str, word: str) -> float:
    """P(word | prompt) by the chain rule, one unbatched model call per piece (independent of the batch)."""
    tok, model = scorer.tokenizer, scorer.model
    pieces = tok.convert_tokens_to_ids(tok.tokenize(word))
    ids = tok(TEMPLATE.format(mask=" ".join([tok.mask_token] * len(pieces)), prompt=prompt), return_tensors="pt")["input_ids"]
    masks = (ids[0] == tok.mask_token_id).nonzero().flatten().tolist()
    logp = 0.0
    for j, piece in enumerate(pieces):
        with torch.no_grad():
            probs = model(input_ids=ids).logits[0, masks[j]].softmax(-1)
        logp += math.log(probs[piece].item())
        ids[0, masks[j]] = piece  # fill it in for the next piece
    return math.exp(logp)


def test_tiny_bert_view_probabilities_with_a_multi_piece_word(tiny_bert):
    scorer = load_mlm(str(tiny_bert))  # the code path of --mlm FOLDER
    words = ["front", "side", "back", "overhead"]
    assert len(scorer.pieces("overhead")) == 2 and len(scorer.pieces("front")) == 1
    prompts = ["a smiling dog", "a mug with a big handle"]  # different lengths: padded in one batch
    probs = scorer.view_probabilities(prompts, words)
    assert probs.shape == (2, 4)
    # A softmax over 4 views: its sum is 1 up to a few roundings.
    torch.testing.assert_close(probs.sum(-1), torch.ones(2, dtype=probs.dtype), rtol=0, atol=sum_rounding(1.0, 4))
    # The padded batch and one prompt at a time run other kernels for the same sums. The tiny BERT
    # (tests/helpers/mlm.py: widths 32 and 64, two layers) is ~24 summing layers of <= 64 terms, so
    # its logits agree to network_rounding; a log-probability moves by that per piece (2 at most), and
    # a normalised probability by up to twice its log's change, relative to itself.
    tok = scorer.tokenizer
    with torch.no_grad():
        logits = scorer.model(**tok([TEMPLATE.format(mask=tok.mask_token, prompt=p) for p in prompts],
                                    return_tensors="pt", padding=True)).logits
    rtol = 2 * 2 * network_rounding(logits.abs().max(), fan_in=64, depth=24)
    for p, prompt in enumerate(prompts):
        raw = torch.tensor([_direct_probability(scorer, prompt, w) for w in words], dtype=torch.float64)
        torch.testing.assert_close(probs[p].double(), raw / raw.sum(), rtol=rtol, atol=0)
    with pytest.raises(T3dError, match="not in the vocabulary"):
        scorer.view_probabilities(prompts, ["front", "side", "back", "zeppelin"])


def test_missing_model_is_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(T3dError, match=r"'bert-base-uncased'.*--mlm /path/to/folder"):
        load_mlm("bert-base-uncased")
    with pytest.raises(T3dError, match="no such folder"):
        load_mlm(str(tmp_path / "nowhere"))
