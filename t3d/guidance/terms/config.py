"""Extra loss terms added to the score-distillation surrogate (torch-free config)."""

from __future__ import annotations

from dataclasses import dataclass

from t3d.config.options import GSD, SDI, option, section
from t3d.config.registry import Pieces
from t3d.guidance.pose.config import RectifierConfig


@dataclass
class ConvexityConfig:
    """SDI's convexity regulariser on rendered normals, for the first part of the run."""

    weight: float = option(0.0, "Weight of SDI's convexity regulariser on rendered normals; 0 = off (sdi: 0.1).",
                           flag="--convexity", panel=SDI, low=0)
    until: float = option(0.4, "Fraction of the run the convexity regulariser is active for.",
                          flag="--convexity-until", panel=SDI, low=0, high=1)


@dataclass
class ConsistencyConfig:
    """GSD's multi-view gradient consistency between each view and a neighbour."""

    weight: float = option(0.0, "GSD gradient-consistency loss weight (gsd preset: 5.0; 0 = off); > 0 also "
                           "renders a neighbour of each view.", flag="--grad-consistency", panel=GSD, low=0)
    neighbour_azimuth: float = option(5.0, "degrees between a training view and its neighbour",
                                      above=0, high=179.999)


@dataclass
class TermsConfig:
    convexity: ConvexityConfig = section(ConvexityConfig)
    consistency: ConsistencyConfig = section(ConsistencyConfig)
    rectifier: RectifierConfig = section(RectifierConfig)


TERMS = Pieces("loss term")
TERMS.register("convexity", "t3d.guidance.terms.convexity:ConvexityTerm")
TERMS.register("consistency", "t3d.guidance.terms.gradient_consistency:GradientConsistency")
TERMS.register("rectifier", "t3d.guidance.pose.rectifier:RectifierTerm")
