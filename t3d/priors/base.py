"""The small interface every 2D diffusion prior implements.

Notation (METHODS.md): x_t = a_t x0 + s_t n with a_t^2 = alphas_cumprod[t], s_t^2 = 1 - a_t^2.
Guidance code only talks to this interface, so the engine never knows which prior it runs.

One CFG convention everywhere (diffusers): eps = eps_u + s * (eps_c - eps_u).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch


@runtime_checkable
class Prior(Protocol):
    name: str
    num_train_timesteps: int  # T; timesteps are integers in [0, T)
    alphas_cumprod: torch.Tensor  # (T,) float32 on the prior's device
    image_size: int  # side of the RGB image the prior expects from the renderer
    latent_size: int  # side of x0 (== image_size for pixel priors)
    latent_channels: int  # channels of x0 (3 for pixel priors, 4 for SD)
    device: torch.device

    def check_prompt(self, prompt: str) -> None:
        """Raise T3dError if this prior cannot condition on `prompt` (e.g. unknown object)."""

    def encode(self, rgb: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in [0, 1] -> x0 (B, C, h, w); differentiable."""

    def decode(self, x0: torch.Tensor) -> torch.Tensor:
        """x0 (B, C, h, w) -> (B, 3, H, W) in [0, 1]."""

    def embed(self, prompts: list[str]) -> torch.Tensor:
        """Conditioning for each prompt, batch-first; "" is the unconditional prompt. Cached."""

    def eps(self, x_t: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """Noise prediction (always epsilon, whatever the model predicts), batched over rows."""


def guided_eps(prior: Prior, x_t: torch.Tensor, t: torch.Tensor, cond: torch.Tensor,
               uncond: torch.Tensor, scale: float) -> torch.Tensor:
    """Classifier-free guidance with one prior call: batch [uncond; cond]."""
    if scale == 1.0:
        return prior.eps(x_t, t, cond)
    both = prior.eps(torch.cat([x_t, x_t]), torch.cat([t, t]), torch.cat([uncond, cond]))
    eps_u, eps_c = both.chunk(2)
    return eps_u + scale * (eps_c - eps_u)


def add_noise(prior: Prior, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    a2 = prior.alphas_cumprod[t].view(-1, 1, 1, 1).to(x0.dtype)
    return a2.sqrt() * x0 + (1 - a2).sqrt() * noise


def predict_x0(prior: Prior, x_t: torch.Tensor, eps: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Tweedie's estimate of x0 from a noise prediction."""
    a2 = prior.alphas_cumprod[t].view(-1, 1, 1, 1).to(x_t.dtype)
    return (x_t - (1 - a2).sqrt() * eps) / a2.sqrt()
