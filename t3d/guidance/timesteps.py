"""Which diffusion timestep each step distils at."""

from __future__ import annotations

import torch

from t3d.config import GuidanceConfig
from t3d.schedules import after_milestone


class TimestepSchedule:
    """`uniform`: t ~ U[t_min, t_max] * T (DreamFusion).
    `anneal`: t decays linearly from t_max to t_min over the run (SDI, and the prototype's
    observation that decreasing t fixes the layout early and refines detail late).
    `bnf`: RecDreamer's back-and-forth schedule (appendix B.3), see `bnf_range`.
    `t_max_milestone` (fraction, t_max'): t_max drops to t_max' from that point of the run on
    (ProlificDreamer: 0.98 -> 0.5 after 5k of 25k steps)."""

    kinds = ("uniform", "anneal", "bnf")

    def __init__(self, cfg: GuidanceConfig, num_timesteps: int):
        if cfg.t_schedule not in self.kinds:
            raise ValueError(f"unknown t schedule {cfg.t_schedule!r}")
        self.kind, self.t_min, self.t_max, self.T = cfg.t_schedule, cfg.t_min, cfg.t_max, num_timesteps
        self.intervals = max(int(cfg.bnf_intervals), 1)
        self.t_max_milestone = cfg.t_max_milestone

    def sample(self, batch: int, progress: float, generator: torch.Generator) -> torch.Tensor:
        t_max = after_milestone(self.t_max, self.t_max_milestone, progress)
        if self.kind == "uniform":
            u = self.t_min + (t_max - self.t_min) * torch.rand(batch, generator=generator)
        elif self.kind == "bnf":
            lo, hi = bnf_range(progress, self.intervals, self.t_min, t_max)
            u = lo + (hi - lo) * torch.rand(batch, generator=generator)
        else:
            u = torch.full((batch,), t_max - (t_max - self.t_min) * progress)
        return (u * self.T).long().clamp(0, self.T - 1)


def bnf_range(progress: float, intervals: int, t_min: float, t_max: float) -> tuple[float, float]:
    """The (low, high) fractions of T that the back-and-forth schedule samples from at `progress`.

    The run is cut into 2 n_i equal intervals. "Forth": in interval j < n_i the range grows
    downwards, [1 - (j+1)/n_i, t_max], until it is the full [t_min, t_max]. "Back": in interval
    n_i + j it shrinks from the top, [t_min, 1 - j/n_i], ending at [t_min, 1/n_i]. Bounds are
    clamped into [t_min, t_max] (the paper's 0.02 and 0.98).
    """
    n = max(int(intervals), 1)
    j = min(int(progress * 2 * n), 2 * n - 1)
    if j < n:
        lo, hi = 1.0 - (j + 1) / n, t_max
    else:
        lo, hi = t_min, 1.0 - (j - n) / n
    lo, hi = max(lo, t_min), min(hi, t_max)
    return lo, max(hi, lo)
