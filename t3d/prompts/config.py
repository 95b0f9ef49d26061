"""What each camera's prompt says: view phrases, RecDreamer's auxiliary views and D-SDS prompt
debiasing (torch-free config)."""

from __future__ import annotations

from dataclasses import dataclass

from t3d.config.options import DSDS, METHOD, USD, option, section
from t3d.config.parsing import parse_words
from t3d.errors import T3dError

VIEW_NAMES = ("front", "side", "back", "overhead")
DEBIAS_MODES = ("auto", "on", "off")


@dataclass
class DebiasConfig:
    """D-SDS prompt debiasing with a masked language model (prompts/debias.py)."""

    mode: str = option("off", "D-SDS prompt debiasing with a masked LM: auto (only if the MLM loads offline; "
                       "else a note) | on (error if unavailable) | off.", flag="--prompt-debias", panel=DSDS)
    mlm: str = option("bert-base-uncased", "Masked LM for prompt debiasing: a Hugging Face id or a local folder.",
                      flag="--mlm", panel=DSDS)
    keep_words: tuple[str, ...] = option((), "Comma-separated prompt words debiasing must never drop (P(u) = 1).",
                                         flag="--keep-words", panel=DSDS, parse=parse_words, kind=str,
                                         metavar="WORDS")
    threshold: float = option(0.95, "drop a word from a view when its PMI ratio falls below this", above=0)

    def validate(self) -> None:
        if self.mode not in DEBIAS_MODES:
            raise T3dError(f"unknown --prompt-debias '{self.mode}'; choose auto, on or off")


@dataclass
class PromptsConfig:
    view_prompts: bool = option(True, "Append ', front view' etc. by camera azimuth.",
                                flag="--view-prompts/--no-view-prompts", panel=METHOD)
    front_halfwidth: float = option(45.0, "half-width in degrees of the 'front view' bin", above=0, high=180)
    view_words: tuple[str, str, str, str] = option(VIEW_NAMES, "words of the front, side, back and overhead bins")
    aux_views: tuple[str, ...] = option((), "Comma-separated views appended as ', from X view' to the prompt "
                                        "(usd preset: side,back); '' for none.", flag="--aux-views", panel=USD,
                                        parse=parse_words, kind=str, metavar="VIEWS")
    debias: DebiasConfig = section(DebiasConfig)

    def validate(self) -> None:
        if any(not w.strip() for w in self.view_words):
            raise T3dError("prompts.view_words must be four non-empty words (front, side, back, overhead)")
