"""D-SDS prompt debiasing: drop, per view, the prompt words that contradict the view.

The rule (paper Eq. 14 and appendix; docs/methods.md#d-sds): with P(v | .) the masked LM's view
probabilities (t3d/prompts/mlm.py), for each word u of the prompt and each view v
    ratio(v, u) = P(v | prompt) / (P(u) P(v | prompt) + (1 - P(u)) P(v | prompt without u))
and u is dropped from view v's prompt when ratio < 0.95. P(u) is the user's faithfulness to the
word: 1/2 by default, 1 for pinned words, whose ratio is then exactly 1, so they never drop.
Example: "a smiling dog" -> "smiling" makes "back" less likely, so the back view loses "smiling".

Words are the prompt's whitespace-separated words (the unit the paper deletes); pinning matches
them case-insensitively without surrounding punctuation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from t3d.errors import T3dError
from t3d.prompts.config import DEBIAS_MODES, PromptsConfig
from t3d.prompts.views import ViewPrompts

DEFAULT_THRESHOLD = 0.95
DEFAULT_FAITHFULNESS = 0.5  # the paper's P(u) for words that are not pinned


def normalise_word(word: str) -> str:
    return re.sub(r"^[^\w]+|[^\w]+$", "", word.lower())


@dataclass
class WordScore:
    word: str
    pinned: bool
    p_without: list[float]  # P(v | prompt without this word), per view word
    ratio: list[float]  # the PMI ratio per view
    dropped: list[bool]  # per view


@dataclass
class DebiasResult:
    prompt: str
    view_words: list[str]
    p_full: list[float]  # P(v | prompt)
    words: list[WordScore] = field(default_factory=list)
    threshold: float = DEFAULT_THRESHOLD

    def bodies(self) -> tuple[str, ...]:
        """The prompt of each view with its dropped words removed (order of `view_words`)."""
        return tuple(" ".join(w.word for w in self.words if not w.dropped[v]) for v in range(len(self.view_words)))

    def to_dict(self) -> dict:
        return {"prompt": self.prompt, "threshold": self.threshold, "view_words": self.view_words,
                "p_full": dict(zip(self.view_words, self.p_full)),
                "views": {v: body for v, body in zip(self.view_words, self.bodies())},
                "words": [{"word": w.word, "pinned": w.pinned,
                           "p_without": dict(zip(self.view_words, w.p_without)),
                           "ratio": dict(zip(self.view_words, w.ratio)),
                           "dropped": [v for v, d in zip(self.view_words, w.dropped) if d]} for w in self.words]}


def debias_prompt(prompt: str, scorer, view_words, keep_words=(), threshold: float = DEFAULT_THRESHOLD,
                  faithfulness: float = DEFAULT_FAITHFULNESS) -> DebiasResult:
    """Apply the PMI rule; `scorer.view_probabilities(prompts, view_words)` gives P(v | prompt)."""
    words = prompt.split()
    if not words:
        raise T3dError("the prompt to debias is empty")
    pinned = {normalise_word(w) for w in keep_words}
    variants = [prompt] + [" ".join(words[:i] + words[i + 1:]) for i in range(len(words))]
    probs = scorer.view_probabilities(variants, list(view_words)).double()  # one batch for all variants
    full = probs[0]
    result = DebiasResult(prompt, list(view_words), full.tolist(), threshold=threshold)
    for i, word in enumerate(words):
        is_pinned = normalise_word(word) in pinned
        p_u = 1.0 if is_pinned else faithfulness
        ratio = full / (p_u * full + (1 - p_u) * probs[i + 1])
        # P(u) = 1 makes the ratio exactly 1, which already keeps the word at any threshold <= 1 (the
        # paper's 0.95); pinning also holds for a user's threshold above 1.
        dropped = [False] * len(ratio) if is_pinned else (ratio < threshold).tolist()
        result.words.append(WordScore(word, is_pinned, probs[i + 1].tolist(), ratio.tolist(), dropped))
    return result


def debiased_view_prompts(prompt: str, cfg: PromptsConfig, prior, load=None) -> tuple[ViewPrompts, list[str]]:
    """The run's ViewPrompts with prompt debiasing as `cfg.debias.mode` says, and notes to print.

    auto: use the MLM only when it loads without the network (local folder or cache), else skip
    with one note -- so `--method dsds` runs offline with the analytic prior; on: load it (network
    allowed unless HF_HUB_OFFLINE) and fail with a clear error when it cannot; off: plain prompts.
    The words that select the prior's object are pinned (Prior.object_keywords).
    """
    from t3d.prompts.mlm import load_mlm

    views = ViewPrompts(prompt, cfg.view_prompts, cfg.front_halfwidth, tuple(cfg.view_words))
    debias = cfg.debias
    if debias.mode not in DEBIAS_MODES:
        raise T3dError(f"unknown prompt debias mode '{debias.mode}'; choose {', '.join(DEBIAS_MODES)}")
    if debias.mode == "off" or not cfg.view_prompts:
        return views, []
    load = load or load_mlm
    try:
        scorer = load(debias.mlm, local_only=(debias.mode == "auto"))
    except T3dError as exc:
        if debias.mode == "on":
            raise
        why = getattr(exc, "reason", str(exc))
        return views, [f"note: prompt debiasing skipped: masked LM {debias.mlm!r} unavailable offline ({why}); "
                       f"--mlm FOLDER uses a local copy, --prompt-debias on downloads it or fails"]
    keep = tuple(debias.keep_words) + tuple(prior.object_keywords())
    result = debias_prompt(prompt, scorer, cfg.view_words, keep, debias.threshold)
    del scorer  # the MLM is needed once, at the start of the run
    views.bodies = result.bodies()
    lines = ", ".join(f"{name}: '{body}'" for name, body in zip(cfg.view_words, views.bodies))
    return views, [f"prompt debiasing ({debias.mlm}): {lines}"]
