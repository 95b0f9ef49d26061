"""The diffusion noise schedule: every formula that reads alphabar_t lives here.

Notation (docs/methods.md): x_t = a_t x0 + s_t n with a_t^2 = alphabar_t, s_t^2 = 1 - alphabar_t.
Timesteps are integer tensors (B,); every coefficient comes back shaped (B, 1, 1, 1) in the
dtype of the tensor it multiplies.
"""

from __future__ import annotations

import torch


class NoiseSchedule:
    def __init__(self, alphas_cumprod: torch.Tensor):
        self.alphas_cumprod = alphas_cumprod  # (T,) float32 on the prior's device
        self.num_train_timesteps = int(alphas_cumprod.shape[0])

    def alpha_bar(self, t: torch.Tensor, like: torch.Tensor | None = None) -> torch.Tensor:
        a2 = self.alphas_cumprod[t].view(-1, 1, 1, 1)
        return a2 if like is None else a2.to(like.dtype)

    def coefficients(self, t: torch.Tensor, like: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(a_t, s_t)."""
        a2 = self.alpha_bar(t, like)
        return a2.sqrt(), (1 - a2).sqrt()

    def add_noise(self, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        a, s = self.coefficients(t, x0)
        return a * x0 + s * noise

    def predict_x0(self, x_t: torch.Tensor, eps: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Tweedie's estimate of x0 from a noise prediction."""
        a, s = self.coefficients(t, x_t)
        return (x_t - s * eps) / a

    def noise_of(self, x0: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """The noise n with x_t = a_t x0 + s_t n."""
        a, s = self.coefficients(t, x0)
        return (x_t - a * x0) / s

    def v_to_eps(self, v: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """eps = a_t v + s_t x_t, from x_t = a_t x0 + s_t eps and v = a_t eps - s_t x0."""
        a, s = self.coefficients(t, v)
        return a * v + s * x_t.to(v.dtype)

    def v_target(self, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """v = a_t noise - s_t x0: what a v-prediction model is trained to output."""
        a, s = self.coefficients(t, x0)
        return a * noise - s * x0


# The SDS weightings w(t) (guidance.weighting), each (B, 1, 1, 1).
def sds_weight(schedule: NoiseSchedule, t: torch.Tensor) -> torch.Tensor:
    """DreamFusion: w = 1 - alphabar_t."""
    return 1 - schedule.alpha_bar(t)


def sigma_weight(schedule: NoiseSchedule, t: torch.Tensor) -> torch.Tensor:
    """SDI (Algorithm 3, eq. 3.4): w = sigma(t) = s_t / a_t, which makes the step x0 - x0_hat(x_t)."""
    a2 = schedule.alpha_bar(t)
    return ((1 - a2) / a2).sqrt()


def uniform_weight(schedule: NoiseSchedule, t: torch.Tensor) -> torch.Tensor:
    return torch.ones(t.shape[0], 1, 1, 1, device=t.device)
