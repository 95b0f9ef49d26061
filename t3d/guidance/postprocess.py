"""Post-processing of the 2D score before it is applied to the render."""

from __future__ import annotations

import torch


class ScoreClip:
    """D-SDS score debiasing: clamp the weighted gradient w(t) (eps_hat - baseline) elementwise to
    [-C, C], C rising linearly from `start` to `end` over the run (static if start == end).
    This clips the same quantity threestudio clips (after weighting), in the prior's own units."""

    def __init__(self, start: float, end: float):
        self.start, self.end = float(start), float(end)

    def threshold(self, progress: float) -> float:
        return self.start + (self.end - self.start) * progress

    def __call__(self, grad: torch.Tensor, progress: float) -> torch.Tensor:
        c = self.threshold(progress)
        return grad.clamp(-c, c)
