"""Timestep schedules: which diffusion timestep each step distils at (torch-free config)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from t3d.config.options import METHOD, USD, option
from t3d.config.parsing import parse_milestone, parse_range
from t3d.config.registry import Slot
from t3d.errors import T3dError


@dataclass
class TimestepsConfig:
    """`uniform`: t ~ U[t_min, t_max] T (DreamFusion); options shared by every schedule."""

    kind: str = option("uniform", "uniform (random t) | anneal (t_max -> t_min linearly) | bnf (RecDreamer's "
                       "back-and-forth).", flag="--t-schedule", panel=METHOD)
    t_range: tuple[float, float] = option((0.02, 0.98), "Timestep range as fractions of T, 'MIN:MAX'.",
                                          flag="--t-range", panel=METHOD, parse=parse_range, kind=str,
                                          metavar="MIN:MAX", low=0, high=1)
    max_milestone: Optional[tuple[float, float]] = option(
        None, "'FRACTION:T_MAX': t_max drops to T_MAX after that fraction of the run (ProlificDreamer: 0.2:0.5).",
        flag="--t-max-milestone", panel=METHOD, parse=parse_milestone, kind=str, metavar="FRACTION:T_MAX")

    def validate(self) -> None:
        t_min, t_max = self.t_range
        if not t_min < t_max:
            raise T3dError(f"--t-range must satisfy 0 <= MIN < MAX <= 1, got {t_min:g}:{t_max:g}")
        m = self.max_milestone
        if m is not None and not (0.0 < m[0] <= 1.0 and t_min < m[1] <= 1.0):
            raise T3dError("--t-max-milestone expects FRACTION:T_MAX with 0 < FRACTION <= 1 and t_min < T_MAX <= 1")


@dataclass
class AnnealedTimestepsConfig(TimestepsConfig):
    """`anneal`: t decays linearly from t_max to t_min over the run (SDI)."""

    kind: str = "anneal"


@dataclass
class BackAndForthConfig(TimestepsConfig):
    """`bnf`: RecDreamer's back-and-forth schedule (appendix B.3)."""

    kind: str = "bnf"
    intervals: int = option(2, "Back-and-forth schedule: number of intervals n_i.",
                            flag="--bnf-intervals", panel=USD, low=1, high=1000)


TIMESTEPS = Slot("timestep schedule", TimestepsConfig, "--t-schedule")
TIMESTEPS.register("uniform", TimestepsConfig, "t3d.guidance.timesteps.schedules:UniformTimesteps")
TIMESTEPS.register("anneal", AnnealedTimestepsConfig, "t3d.guidance.timesteps.schedules:AnnealedTimesteps")
TIMESTEPS.register("bnf", BackAndForthConfig, "t3d.guidance.timesteps.schedules:BackAndForthTimesteps")
