"""SDI's noise source: infer the noise by DDIM inversion of the current render, don't draw it.

SDI (docs/methods.md#sdi; the paper's Algorithm 3 and section 5.2), per step:
    tau ~ U(0, tau_max)                                  (fraction of T; paper: 1/30)
    kappa = kappa^{t+tau}(x0): DDIM-invert the detached x0 from the clean level up to t + tau
            in int(steps_per_t * t) steps (paper: int(10 t)), with CFG `scale` (paper: -7.5 = -forward)
    n = kappa + extra * z,  z ~ N(0, I)                  (paper: entropy term, extra = 0.3)
The step then goes on as SDS does: x_t = a_t x0 + s_t n, grad = w(t) (eps_p(x_t, t) - n).

Why the denoising level stays t although we inverted to t + tau (we do NOT set ctx.t to t + tau):
the exact kappa^s solves eps_theta^s(a_s x0 + s_s kappa, y) = kappa (eq. 4.4), so noising and
denoising at the level s we inverted to would give eps_p - n = 0, a null update. Eq. 4.6 noises
with kappa^{t+tau} and denoises one DDIM step lower, at t: tau is the step size of the DDIM
process that SDI reproduces. Algorithm 3 says the same (eps <- kappa^{t+tau}, x_t at t).
Unlike the public code, x_t is built at level t from x0 and kappa (not the level-(t+tau) latent
fed to the UNet as if it were at t), the extra noise is added once to the result (not at every
inversion step), and no timestep is negative (see t3d/priors/ddim.py).

The extra noise: the paper adds N(0, (0.3 sigma(t))^2) in its variable x_bar = x0 + sigma(t) n,
sigma(t) = s_t / a_t (eq. 3.1); in terms of the noise n that is exactly n + 0.3 z, at every t.
"""

from __future__ import annotations

import torch

from t3d.guidance.piece import Piece
from t3d.priors.ddim import ddim_invert, inversion_levels


class InversionNoise(Piece):
    """`sample(ctx) -> kappa^{t+tau}(x0) + extra * z`. Cost: `n_steps` guided prior calls per step,
    each one batched call over the whole camera batch and both CFG branches."""

    def __init__(self, prior, guide, scale: float, steps_per_t: float, tau_max: float, extra: float):
        self.prior, self.guide = prior, guide
        self.scale, self.steps_per_t, self.tau_max, self.extra = scale, steps_per_t, tau_max, extra

    @classmethod
    def from_config(cls, cfg, context) -> "InversionNoise":
        # The paper's finding: invert with the negated forward guidance scale.
        scale = -context.guidance.guide.scale if cfg.scale is None else cfg.scale
        return cls(context.prior, context.guide, scale, cfg.steps_per_t, cfg.tau, cfg.extra_noise)

    def n_steps(self, t: torch.Tensor) -> int:
        """int(steps_per_t * t) for t a fraction of T (at least 1); the largest t of the batch sets
        it, so every row gets at least the paper's count (rows with smaller t a finer grid)."""
        frac = float(t.max()) / self.prior.num_train_timesteps
        return max(1, int(self.steps_per_t * frac))

    def sample(self, ctx) -> torch.Tensor:
        x0 = ctx.x0.detach()
        T = self.prior.num_train_timesteps
        tau = torch.rand(x0.shape[0], generator=ctx.generator) * self.tau_max
        t_inv = (ctx.t.cpu() + (tau * T).round().long()).clamp(max=T - 1).to(ctx.t.device)
        n_steps = self.n_steps(ctx.t)
        levels = inversion_levels(t_inv, n_steps)

        def eps_fn(x, t):
            return self.guide.eps(x, t, ctx.cameras, scale=self.scale)

        kappa = self.prior.schedule.noise_of(x0, ddim_invert(self.prior, eps_fn, x0, levels), t_inv)
        if self.extra > 0:
            z = torch.randn(x0.shape, generator=ctx.generator).to(device=x0.device, dtype=x0.dtype)
            kappa = kappa + self.extra * z
        return kappa
