"""D-SDS score debiasing: clipping the 2D score before it is applied to the render."""

from __future__ import annotations

import torch

from t3d.guidance.piece import Piece


class ScoreClip(Piece):
    """Clamp the weighted gradient w(t) (eps_hat - baseline) elementwise to [-C, C], C rising
    linearly from `start` to `end` over the run (static if start == end).

    Which quantity: the paper's Eq. 12-13 clips the estimated 2D score; its code base (SJC) clips
    the unweighted sigma-space score. t3d clips the gradient actually applied to x0, after the
    w(t) weighting and after CFG, like threestudio, so the threshold is in the prior's own units
    (SD latents or [-1, 1] pixels: `auto` asks the prior for its range, Prior.default_score_clip)
    and composes with any baseline (noise for SDS, eps_phi for VSD/ESD)."""

    def __init__(self, start: float, end: float):
        self.start, self.end = float(start), float(end)

    @classmethod
    def from_config(cls, setting, context) -> "ScoreClip | None":
        """None (off), "auto" (the prior's D-SDS range) or (start, end)."""
        if setting is None:
            return None
        start, end = context.prior.default_score_clip() if setting == "auto" else setting
        return cls(start, end)

    def threshold(self, progress: float) -> float:
        # Eq. 13: psi = (1 - tau) psi_start + tau psi_end, tau = step / max step.
        return self.start + (self.end - self.start) * progress

    def __call__(self, grad: torch.Tensor, progress: float) -> torch.Tensor:
        c = self.threshold(progress)
        return grad.clamp(-c, c)
