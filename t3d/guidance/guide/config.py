"""Guides: the prior's eps under classifier-free guidance (plain, or Perp-Neg), torch-free config."""

from __future__ import annotations

from dataclasses import dataclass

from t3d.config.options import METHOD, option
from t3d.config.registry import Slot
from t3d.errors import T3dError


def _perp_neg_kind(on: bool) -> str:
    return "perp_neg" if on else "cfg"


@dataclass
class GuideConfig:
    """`cfg`: eps_u + s (eps_c - eps_u) with each camera's view prompt, in one prior call."""

    kind: str = option("cfg", "Perp-Neg: interpolate view prompts by azimuth and subtract the other views' "
                       "perpendicular components.", flag="--perp-neg/--no-perp-neg", panel=METHOD,
                       parse=_perp_neg_kind, kind=bool)
    scale: float = option(100.0, "Classifier-free guidance scale s in eps_u + s (eps_c - eps_u).",
                          flag="--guidance-scale", panel=METHOD)


@dataclass
class PerpNegConfig(GuideConfig):
    """Perp-Neg: view prompts interpolated by azimuth, other views as perpendicular negatives."""

    kind: str = "perp_neg"

    def check_against(self, run) -> None:
        if not run.prompts.view_prompts:
            raise T3dError("--perp-neg interpolates view prompts; it cannot be combined with --no-view-prompts")


GUIDES = Slot("guide", GuideConfig, "--perp-neg")
GUIDES.register("cfg", GuideConfig, "t3d.guidance.guide.prompt:PromptGuide")
GUIDES.register("perp_neg", PerpNegConfig, "t3d.guidance.guide.perp_neg:PerpNegGuide")
