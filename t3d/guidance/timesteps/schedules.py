"""Which diffusion timestep each step distils at (the `guidance.timesteps` slot).

Every schedule samples fractions of T in [t_min, t_max]; `max_milestone` (fraction, t_max')
drops t_max to t_max' from that point of the run on (ProlificDreamer: 0.98 -> 0.5 after 5k of
25k steps).
"""

from __future__ import annotations

import torch

from t3d.guidance.piece import Piece
from t3d.schedules import after_milestone


class UniformTimesteps(Piece):
    """t ~ U[t_min, t_max] * T (DreamFusion)."""

    def __init__(self, t_min: float, t_max: float, num_timesteps: int, max_milestone=None):
        self.t_min, self.t_max, self.T, self.max_milestone = t_min, t_max, num_timesteps, max_milestone

    @classmethod
    def from_config(cls, cfg, context) -> "UniformTimesteps":
        schedule = cls(*cfg.t_range, context.prior.num_train_timesteps, cfg.max_milestone)
        schedule.configure(cfg)
        return schedule

    def configure(self, cfg) -> None:
        """Options of a particular schedule (none for the uniform one)."""

    def fractions(self, batch: int, progress: float, t_max: float, generator: torch.Generator) -> torch.Tensor:
        return self.t_min + (t_max - self.t_min) * torch.rand(batch, generator=generator)

    def sample(self, batch: int, progress: float, generator: torch.Generator) -> torch.Tensor:
        t_max = after_milestone(self.t_max, self.max_milestone, progress)
        u = self.fractions(batch, progress, t_max, generator)
        return (u * self.T).long().clamp(0, self.T - 1)


class AnnealedTimesteps(UniformTimesteps):
    """t decays linearly from t_max to t_min over the run (SDI): a decreasing t fixes the layout
    early and refines detail late."""

    def fractions(self, batch: int, progress: float, t_max: float, generator: torch.Generator) -> torch.Tensor:
        return torch.full((batch,), t_max - (t_max - self.t_min) * progress)


class BackAndForthTimesteps(UniformTimesteps):
    """RecDreamer's back-and-forth schedule (appendix B.3), see `bnf_range`."""

    intervals = 2

    def configure(self, cfg) -> None:
        self.intervals = max(int(cfg.intervals), 1)

    def fractions(self, batch: int, progress: float, t_max: float, generator: torch.Generator) -> torch.Tensor:
        lo, hi = bnf_range(progress, self.intervals, self.t_min, t_max)
        return lo + (hi - lo) * torch.rand(batch, generator=generator)


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
