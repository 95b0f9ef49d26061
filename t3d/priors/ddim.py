"""Deterministic DDIM (eta = 0) moves between noise levels, in both directions, for any Prior.

One move from level u to level v with a noise prediction eps taken at level u:
    x0_hat = (x_u - s_u eps) / a_u          (Tweedie / single-step denoise)
    x_v    = a_v x0_hat + s_v eps            (re-noise with the same eps)
With v < u this is a DDIM sampling step; with v > u it is a DDIM inversion step. Both are the
Euler step of the probability-flow ODE in the variable x/a_t against sigma_t = s_t / a_t
(SDI paper eq. 3.1-3.2; docs/methods.md#sdi), which is why the same function serves both ways.

Levels are integer timesteps of the prior, one row per batch element: `levels` is (K + 1, B),
`levels[0]` where the walk starts and `levels[-1]` where it ends. The clean image sits at
timestep 0 (the least-noised level the prior defines; a_0 ~ 1), so no call ever uses a
negative timestep (unlike SDI's public code, whose first inversion call is at t = -T/n).

`eps_fn(x, t)` is the (guided) noise prediction for rows x at timesteps t: one batched prior call.
"""

from __future__ import annotations

from typing import Callable

import torch

from t3d.priors.base import Prior

EpsFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def ddim_move(prior: Prior, x: torch.Tensor, eps: torch.Tensor, t_from: torch.Tensor,
              t_to: torch.Tensor) -> torch.Tensor:
    """x at level t_from -> level t_to (both (B,) timesteps), keeping the predicted noise eps."""
    schedule = prior.schedule
    return schedule.add_noise(schedule.predict_x0(x, eps, t_from), eps, t_to)


def inversion_levels(t_end: torch.Tensor, n_steps: int) -> torch.Tensor:
    """(n_steps + 1, B) integer levels evenly spaced from 0 (the clean image) to each row's t_end."""
    frac = torch.linspace(0.0, 1.0, n_steps + 1, device=t_end.device)[:, None]
    return (frac * t_end.float()[None]).round().long()


@torch.no_grad()
def ddim_invert(prior: Prior, eps_fn: EpsFn, x0: torch.Tensor, levels: torch.Tensor) -> torch.Tensor:
    """Walk the clean x0 up through `levels` (increasing); returns x at levels[-1].

    Each step evaluates eps at the point it starts from (the explicit Euler step of the ODE):
    the only point known when inverting."""
    x = x0
    for i in range(levels.shape[0] - 1):
        eps = eps_fn(x, levels[i])
        x = ddim_move(prior, x, eps, levels[i], levels[i + 1])
    return x


@torch.no_grad()
def ddim_sample(prior: Prior, eps_fn: EpsFn, x: torch.Tensor, levels: torch.Tensor) -> torch.Tensor:
    """Walk x from levels[-1] down through `levels` to levels[0] (ordinary DDIM sampling)."""
    for i in range(levels.shape[0] - 1, 0, -1):
        eps = eps_fn(x, levels[i])
        x = ddim_move(prior, x, eps, levels[i], levels[i - 1])
    return x

