"""The exact score of an isotropic Gaussian mixture under the diffusion noising, in closed form.

For p_0 = sum_i pi_i N(x_i, h^2 I), the noised marginal is p_t = sum_i pi_i N(a_t x_i, (a_t^2 h^2 + s_t^2) I).
Shared by the analytic prior (mixture of reference images) and the render-kernel eps_phi (mixture of
recent renders, guidance/baseline/kernel_score.py).
"""

from __future__ import annotations

import torch


def mixture_posterior(x: torch.Tensor, a2: torch.Tensor, centres: torch.Tensor, centre_sqnorm: torch.Tensor,
                      log_weights: torch.Tensor, bandwidth: float, energy: torch.Tensor | None = None) -> torch.Tensor:
    """Posterior weights (B, N) of the components of sum_i pi_i N(a_t x_i, (a_t^2 h^2 + s_t^2) I) at
    the flattened x (B, D); a2 = alphabar_t (B, 1), centres x_i (N, D) with their squared norms (N,),
    log_weights log pi (B, N) or (N,).

    `energy` (B, N) or (N,), squared distance units: each centre is treated as lying that much
    farther from every x, as if displaced by sqrt(energy) along an extra axis the renders never
    leave, so it weighs a_t^2 energy / (2 var) nats at every noise level (AnalyticPrior.view_energy)."""
    var = a2 * bandwidth**2 + (1 - a2)
    sqdist = (x**2).sum(-1, keepdim=True) - 2 * a2.sqrt() * (x @ centres.t()) + a2 * centre_sqnorm[None]
    if energy is not None:
        sqdist = sqdist + a2 * energy
    return torch.softmax(log_weights - sqdist / (2 * var), dim=-1)


def mixture_eps(x: torch.Tensor, a2: torch.Tensor, centres: torch.Tensor, centre_sqnorm: torch.Tensor,
                log_weights: torch.Tensor, bandwidth: float, energy: torch.Tensor | None = None) -> torch.Tensor:
    """The exact eps of that mixture at x (B, D): s_t (x - a_t E[x_i | x]) / (a_t^2 h^2 + s_t^2)."""
    var = a2 * bandwidth**2 + (1 - a2)
    centre = mixture_posterior(x, a2, centres, centre_sqnorm, log_weights, bandwidth, energy) @ centres
    return (1 - a2).sqrt() * (x - a2.sqrt() * centre) / var
