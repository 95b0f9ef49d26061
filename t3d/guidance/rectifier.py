"""USD's rectifier (RecDreamer, seeds/recdreamer-uniform-score-distillation.txt, eq. 13, B.2, B.3).

    r(x_t) = sum_k f(k) / pbar_t(k) * p(k | x0_hat),   f uniform over K pose classes,
    x0_hat = (x_t - s_t eps_p(x_t, t, y)) / a_t        (Tweedie, from the guided prior eps),
    loss   = -log r(x_t) * w(t) s_t / a_t               (added to VSD: eq. 13's minus sign),
and the loss's gradient on x0 is capped, per image, at the norm of the VSD gradient on x0 (B.3).

`PoseMarginals` is the trainable: pbar_t(k), one EMA per bucket of T / n_t timesteps (n_t = 10),
rate alpha = 1 - 0.1^(1/100) (the last 100 updates carry 90% of the weight), initialised to 1/K,
updated after the field's step with the p(k | x0_hat) of that step (Algorithm 1, line 5) and
checkpointed as a tensor.

Modes (`guidance.rectifier.mode`):
- `exact`: the gradient of log r runs through the classifier, the decoder AND the prior
  (d eps_p / d x_t): the step's guided prior call is made with a graph (ScoreDistillation's
  `prior_graph` hook), so no extra prior forward is needed, only its backward.
- `stopgrad`: eps_p is held constant, so d x0_hat / d x0 = I: the gradient still runs through the
  classifier and the decoder (the pose signal), but not through the prior's network (the paper's
  bottleneck, appendix F); x0_hat and r are the same numbers as in exact mode, only the prior's
  Jacobian (I - (s_t/a_t) d eps_p/d x0) is replaced by the identity.
"""

from __future__ import annotations

import torch

from t3d.config import RectifierConfig
from t3d.errors import T3dError

MODES = ("exact", "stopgrad")


def check_rectifier_config(cfg: RectifierConfig) -> None:
    if cfg.mode not in MODES:
        raise T3dError(f"unknown rectifier mode '{cfg.mode}'; choose exact or stopgrad")
    if cfg.pose_classes < 2:
        raise T3dError(f"--pose-classes must be at least 2, got {cfg.pose_classes}")
    if cfg.tau_patch <= 0 or cfg.tau_pose <= 0:
        raise T3dError("pose classifier temperatures must be positive")
    if not 0.0 < cfg.ema_rate <= 1.0 or cfg.ema_buckets < 1:
        raise T3dError("rectifier EMA rate must be in (0, 1] and its buckets at least 1")


class PoseMarginals:
    """pbar_t(k): the EMA of p(k | x0_hat) per timestep bucket (paper B.2)."""

    def __init__(self, num_classes: int, buckets: int, rate: float, num_timesteps: int):
        self.rate, self.T = float(rate), int(num_timesteps)
        self.pbar = torch.full((buckets, num_classes), 1.0 / num_classes)

    def bucket(self, t: torch.Tensor) -> torch.Tensor:
        n = self.pbar.shape[0]
        return (t.long().cpu() * n // self.T).clamp(0, n - 1)

    def lookup(self, t: torch.Tensor) -> torch.Tensor:
        return self.pbar[self.bucket(t)].to(t.device)

    def update(self, ctx) -> None:
        probs = ctx.extras.get("pose_probs")
        if probs is None:
            return
        # One EMA step per image, in batch order (B is a handful; each may hit a different bucket).
        for b, k in zip(self.bucket(ctx.t).tolist(), probs.detach().float().cpu()):
            self.pbar[b] = self.rate * k + (1 - self.rate) * self.pbar[b]

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"pbar": self.pbar.clone()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        if "pbar" in state:
            if state["pbar"].shape != self.pbar.shape:
                raise ValueError(f"pose marginals of shape {tuple(state['pbar'].shape)}, expected {tuple(self.pbar.shape)}")
            self.pbar = state["pbar"].clone().float()


class RectifierTerm:
    """The extra loss term -w(t) s_t/a_t log r(x_t), with its x0-gradient capped at VSD's."""

    name = "rectifier"

    def __init__(self, prior, classifier, marginals: PoseMarginals, mode: str, weighting):
        self.prior, self.classifier, self.marginals = prior, classifier, marginals
        self.mode, self.weighting = mode, weighting
        self.needs_prior_graph = mode == "exact"  # ScoreDistillation then keeps the prior call's graph

    def loss(self, ctx) -> torch.Tensor:
        t = ctx.t
        a2 = self.prior.alphas_cumprod[t].view(-1, 1, 1, 1)
        a, s = a2.sqrt(), (1 - a2).sqrt()
        if self.mode == "exact":
            x_t, eps = ctx.extras["prior_graph"]  # x_t is a leaf; eps carries d eps_p / d x_t
            x0_hat = (x_t - s * eps) / a
            wrt = x_t
        else:
            wrt = x0_hat = ((ctx.x_t - s * ctx.eps_prior) / a).detach().requires_grad_(True)
        with torch.enable_grad():
            log_p = self.classifier.log_probs(self.prior.decode(x0_hat))  # (B, K)
            k = log_p.shape[1]
            # log r = log sum_k (1/K) / pbar(k) * p(k); pbar is a constant (the EMA state).
            log_r = torch.logsumexp(log_p - torch.log(self.marginals.lookup(t) * k), dim=1)
            scale = (self.weighting(self.prior, t).view(-1) * (s / a).view(-1))
            objective = -(scale * log_r).sum()
            (g,) = torch.autograd.grad(objective, wrt)
        if self.mode == "exact":
            g = g * a  # chain rule through x_t = a_t x0 + s_t n
        ctx.extras["pose_probs"] = log_p.detach().exp()
        # B.3: the rectifier's gradient on x0 never exceeds the denoiser's (VSD) gradient, per image.
        g = g.detach()
        g_norm = g.flatten(1).norm(dim=1).clamp_min(1e-12)
        cap = ctx.grad.flatten(1).norm(dim=1)
        g = g * (cap / g_norm).clamp(max=1.0).view(-1, 1, 1, 1)
        ctx.extras["rectifier_log_r"] = log_r.detach()
        # Same units as the SDS surrogate, whose x0-gradient is grad / numel.
        return (ctx.x0 * g).sum() / ctx.x0.numel()


def build_rectifier(prior, cfg, prompt: str, trainables: dict) -> RectifierTerm:
    """The rectifier term for a GuidanceConfig; registers its EMA marginals as a trainable."""
    from t3d.guidance.pose_templates import build_pose_classifier
    from t3d.guidance.score_distillation import sds_weight

    rc = cfg.rectifier
    classifier = build_pose_classifier(prior, rc, prompt)
    marginals = trainables["pose_marginals"] = PoseMarginals(rc.pose_classes, rc.ema_buckets, rc.ema_rate,
                                                             prior.num_train_timesteps)
    return RectifierTerm(prior, classifier, marginals, rc.mode,
                         lambda p, t: sds_weight(p, t, cfg.weighting))
