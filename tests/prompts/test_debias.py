"""D-SDS prompt debiasing (prompts/debias.py): the PMI rule on a controlled MLM stub and on a tiny
real BERT, pinned words, the auto/on/off modes, and the analytic prior's object keyword."""

from __future__ import annotations

import pytest
import torch

from t3d.errors import T3dError
from t3d.hub import ModelUnavailable
from t3d.priors.base import Prior
from t3d.prompts.config import DebiasConfig, PromptsConfig
from t3d.prompts.debias import debias_prompt, debiased_view_prompts
from t3d.prompts.mlm import load_mlm
from tests.helpers.priors import random_reference_prior

VIEWS = ("front", "side", "back", "top")


class StubScorer:
    """An MLM stand-in whose P(view | prompt) we choose."""

    def __init__(self, table: dict[str, list[float]]):
        self.table, self.calls = table, 0

    def view_probabilities(self, prompts, view_words):
        self.calls += 1
        return torch.tensor([self.table[p] for p in prompts], dtype=torch.float64)


DOG = {
    "a smiling dog": [0.5, 0.3, 0.1, 0.1],
    "smiling dog": [0.5, 0.3, 0.1, 0.1],  # without "a": nothing changes, ratio 1
    "a dog": [0.3, 0.3, 0.3, 0.1],  # without "smiling": the back view becomes likely
    "a smiling": [0.56, 0.26, 0.09, 0.09],  # without "dog": front slightly likelier
}


def test_pmi_rule_matches_hand_computed_ratios():
    stub = StubScorer(DOG)
    result = debias_prompt("a smiling dog", stub, VIEWS)
    assert stub.calls == 1  # every prompt variant in one batch
    ratios = {w.word: w.ratio for w in result.words}
    # ratio = P(v|full) / (0.5 P(v|full) + 0.5 P(v|without u))
    assert ratios["a"] == [1.0, 1.0, 1.0, 1.0]  # p / (0.5 p + 0.5 p): exact in floating point
    # fp64 ratios of the stub's numbers against the same ratios in Python: ~1e-16 apart.
    assert ratios["smiling"] == pytest.approx([0.5 / 0.4, 1.0, 0.1 / 0.2, 1.0], rel=1e-12)  # back: 0.5 < 0.95 -> drop
    # front 0.9434 -> drop
    assert ratios["dog"] == pytest.approx([0.5 / 0.53, 0.3 / 0.28, 0.1 / 0.095, 0.1 / 0.095], rel=1e-12)
    assert result.bodies() == ("a smiling", "a smiling dog", "a dog", "a smiling dog")
    # The threshold is the boundary: at 0.94 the front view keeps "dog" (0.9434 >= 0.94).
    assert debias_prompt("a smiling dog", StubScorer(DOG), VIEWS, threshold=0.94).bodies()[0] == "a smiling dog"


def test_pinned_words_have_p_u_one_and_never_drop():
    result = debias_prompt("a smiling Dog,", StubScorer({**DOG, "a smiling Dog,": DOG["a smiling dog"],
                                                        "smiling Dog,": DOG["smiling dog"],
                                                        "a Dog,": DOG["a dog"]}),
                           VIEWS, keep_words=("dog", "SMILING"), threshold=10.0)
    by_word = {w.word: w for w in result.words}
    # P(u) = 1: p / (1 p + 0 q) is exactly 1.
    assert by_word["Dog,"].pinned and by_word["Dog,"].ratio == [1.0] * 4
    assert by_word["smiling"].ratio == [1.0] * 4
    assert by_word["a"].dropped == [True] * 4  # threshold 10 drops every unpinned word
    assert result.bodies() == ("smiling Dog,",) * 4


def test_tiny_bert_drops_exactly_below_threshold_and_keeps_pinned(tiny_bert):
    scorer = load_mlm(str(tiny_bert))
    prompt = "a smiling red dog with a big head"
    base = debias_prompt(prompt, scorer, VIEWS)
    ratios = torch.tensor([w.ratio for w in base.words])
    threshold = ratios.median().item()  # some ratios fall below it, some do not
    result = debias_prompt(prompt, scorer, VIEWS, keep_words=("dog",), threshold=threshold)
    full = torch.tensor(result.p_full, dtype=torch.float64)
    dropped_any = kept_any = False
    for w in result.words:
        ratio = torch.tensor(w.ratio, dtype=torch.float64)
        if w.word == "dog":
            assert w.pinned and w.dropped == [False] * 4 and ratio.tolist() == [1.0] * 4  # exactly, as above
            continue
        # Bit-exact: the same fp64 expression on the same numbers (tolist() keeps every bit).
        assert torch.equal(ratio, full / (0.5 * full + 0.5 * torch.tensor(w.p_without, dtype=torch.float64)))
        assert w.dropped == (ratio < threshold).tolist()
        dropped_any |= any(w.dropped)
        kept_any |= not all(w.dropped)
    assert dropped_any and kept_any
    for v, body in enumerate(result.bodies()):
        assert body.split() == [w.word for w in result.words if not w.dropped[v]]
        assert "dog" in body.split()


def _failing_loader(name, local_only):
    reason = "it is not in the local Hugging Face cache"
    raise ModelUnavailable(f"cannot load the masked language model {name!r}: {reason}", reason)


def _prompts(mode: str, **fields) -> PromptsConfig:
    return PromptsConfig(debias=DebiasConfig(mode=mode), **fields)


def test_debias_modes_auto_on_off():
    prior = random_reference_prior(words=("dog",))
    auto = _prompts("auto", view_words=VIEWS)
    views, notes = debiased_view_prompts("a smiling dog", auto, prior, load=_failing_loader)
    assert views.bodies is None and len(notes) == 1 and "skipped" in notes[0]
    with pytest.raises(T3dError, match="bert-base-uncased"):
        debiased_view_prompts("a smiling dog", _prompts("on"), prior, load=_failing_loader)
    views, notes = debiased_view_prompts("a smiling dog", _prompts("off"), prior,
                                         load=_failing_loader)  # never called
    assert views.bodies is None and notes == []


def test_analytic_object_keyword_is_never_dropped():
    # The stub says "dog" contradicts the front view; for a text prior it would be dropped there...
    cfg = _prompts("on", view_words=VIEWS)
    loader = lambda name, local_only: StubScorer(DOG)  # noqa: E731
    no_keywords = Prior()  # the interface's default: no words select what it draws
    views, _ = debiased_view_prompts("a smiling dog", cfg, no_keywords, load=loader)
    assert views.bodies[0] == "a smiling"
    # ...but the analytic prior selects its object by that word, so it is pinned implicitly.
    dog_prior = random_reference_prior(words=("dog", "puppy"))
    views, notes = debiased_view_prompts("a smiling dog", cfg, dog_prior, load=loader)
    assert views.bodies == ("a smiling dog", "a smiling dog", "a dog", "a smiling dog")
    assert views.all_prompts()[2] == "a dog, back view" and "back: 'a dog'" in notes[0]
