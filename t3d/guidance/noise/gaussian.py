"""Where the noise n in x_t = a_t x0 + s_t n comes from, in SDS: fresh Gaussian noise.

A noise source has `sample(ctx) -> tensor like ctx.x0`, reading the step's context (timesteps,
cameras, render) as it needs.
"""

from __future__ import annotations

import torch

from t3d.guidance.piece import Piece


class GaussianNoise(Piece):
    """Fresh i.i.d. N(0, I) each step, drawn on the CPU generator so runs repeat across devices."""

    @classmethod
    def from_config(cls, cfg, context) -> "GaussianNoise":
        return cls()

    def sample(self, ctx) -> torch.Tensor:
        x0 = ctx.x0
        return torch.randn(x0.shape, generator=ctx.generator).to(device=x0.device, dtype=x0.dtype)
