"""Which diffusion timestep each step distils at."""

from __future__ import annotations

import torch

from t3d.config import GuidanceConfig
from t3d.schedules import after_milestone


class TimestepSchedule:
    """`uniform`: t ~ U[t_min, t_max] * T (DreamFusion).
    `anneal`: t decays linearly from t_max to t_min over the run (SDI, and the prototype's
    observation that decreasing t fixes the layout early and refines detail late).
    `t_max_milestone` (fraction, t_max'): t_max drops to t_max' from that point of the run on
    (ProlificDreamer: 0.98 -> 0.5 after 5k of 25k steps)."""

    kinds = ("uniform", "anneal")

    def __init__(self, cfg: GuidanceConfig, num_timesteps: int):
        if cfg.t_schedule not in self.kinds:
            raise ValueError(f"unknown t schedule {cfg.t_schedule!r}")
        self.kind, self.t_min, self.t_max, self.T = cfg.t_schedule, cfg.t_min, cfg.t_max, num_timesteps
        self.t_max_milestone = cfg.t_max_milestone

    def sample(self, batch: int, progress: float, generator: torch.Generator) -> torch.Tensor:
        t_max = after_milestone(self.t_max, self.t_max_milestone, progress)
        if self.kind == "uniform":
            u = self.t_min + (t_max - self.t_min) * torch.rand(batch, generator=generator)
        else:
            u = torch.full((batch,), t_max - (t_max - self.t_min) * progress)
        return (u * self.T).long().clamp(0, self.T - 1)
