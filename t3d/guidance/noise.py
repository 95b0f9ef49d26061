"""Where the noise n in x_t = a_t x0 + s_t n comes from (fresh Gaussian for SDS).

A noise source has `sample(ctx) -> tensor like ctx.x0`, reading the step's context (timesteps,
cameras, render) as it needs.
"""

from __future__ import annotations

import torch


class GaussianNoise:
    """Fresh i.i.d. N(0, I) each step, drawn on the CPU generator so runs repeat across devices."""

    def sample(self, ctx) -> torch.Tensor:
        x0 = ctx.x0
        return torch.randn(x0.shape, generator=ctx.generator).to(device=x0.device, dtype=x0.dtype)
