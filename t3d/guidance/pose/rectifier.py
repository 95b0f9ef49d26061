"""USD's rectifier (RecDreamer, docs/methods.md#usd; the paper's eq. 13, B.2, B.3).

    r(x_t) = sum_k f(k) / pbar_t(k) * p(k | x0_hat),   f uniform over K pose classes,
    x0_hat = (x_t - s_t eps_p(x_t, t, y)) / a_t        (Tweedie, from the guided prior eps),
    loss   = -log r(x_t) * w(t) s_t / a_t               (added to VSD: eq. 13's minus sign),
and the loss's gradient on x0 is capped, per image, at the norm of the VSD gradient on x0 (B.3).

`PoseMarginals` is the trainable: pbar_t(k), one EMA per bucket of T / n_t timesteps (n_t = 10),
rate alpha = 1 - 0.1^(1/100) (the last 100 updates carry 90% of the weight), initialised to 1/K,
updated after the field's step with the p(k | x0_hat) of that step (Algorithm 1, line 5) and
checkpointed as a tensor.

Modes (`guidance.terms.rectifier.mode`):
- `exact`: the gradient of log r runs through the classifier, the decoder AND the prior
  (d eps_p / d x_t): the step's guided prior call is made with a graph (ScoreDistillation's
  `prior_graph` hook), so no extra prior forward is needed, only its backward.
- `stopgrad`: eps_p is held constant, so d x0_hat / d x0 = I: the gradient still runs through the
  classifier and the decoder (the pose signal), but not through the prior's network (the paper's
  bottleneck, appendix F); x0_hat and r are the same numbers as in exact mode, only the prior's
  Jacobian (I - (s_t/a_t) d eps_p/d x0) is replaced by the identity. That identity overstates how
  much x0_hat moves with x0 at high t, where x0_hat changes only along the posterior's spread.
  Measured on the analytic prior (16 px head, 12 images, t 500-900): the stopgrad gradient is
  ~6-30x the exact one and less aligned with the ground-truth rectifier (`--pose-classifier
  posterior`): cosine 0.15-0.29 vs 0.36-0.95 for exact mode.

Classifiers: the paper's template classifier on x0_hat (classifier.py), or on the analytic
prior its exact posterior p(k | x_t) (posterior.py; gradient taken w.r.t. x_t directly), or
its exact clean posterior p(k | x0) at x0_hat (the DPS approximation with a perfect classifier).
"""

from __future__ import annotations

import torch

from t3d.guidance.config import WEIGHTINGS
from t3d.guidance.piece import Piece
from t3d.guidance.pose.config import CLASSIFIERS


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

    def update(self, ctx) -> dict:
        probs = ctx.extras.get("pose_probs")
        if probs is None:
            return {}
        # One EMA step per image, in batch order (B is a handful; each may hit a different bucket).
        for b, k in zip(self.bucket(ctx.t).tolist(), probs.detach().float().cpu()):
            self.pbar[b] = self.rate * k + (1 - self.rate) * self.pbar[b]
        return {}

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"pbar": self.pbar.clone()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        if "pbar" in state:
            if state["pbar"].shape != self.pbar.shape:
                raise ValueError(f"pose marginals of shape {tuple(state['pbar'].shape)}, expected {tuple(self.pbar.shape)}")
            self.pbar = state["pbar"].clone().float()


class RectifierTerm(Piece):
    """The extra loss term -w(t) s_t/a_t log r(x_t), with its x0-gradient capped at VSD's."""

    name = "rectifier"

    @classmethod
    def from_config(cls, cfg, context) -> "RectifierTerm | None":
        """Off unless enabled; registers its EMA marginals as a trainable."""
        if not cfg.enabled:
            return None
        prior = context.prior
        classifier = _classifier(prior, cfg, context.base_prompt)
        marginals = context.trainables["pose_marginals"] = PoseMarginals(
            cfg.pose_classes, cfg.ema_buckets, cfg.ema_rate, prior.num_train_timesteps)
        weighting = WEIGHTINGS.get(context.guidance.weighting)
        return cls(prior, classifier, marginals, cfg.mode, lambda p, t: weighting(p.schedule, t))

    def __init__(self, prior, classifier, marginals: PoseMarginals, mode: str, weighting):
        self.prior, self.classifier, self.marginals = prior, classifier, marginals
        self.mode, self.weighting = mode, weighting
        self.noisy = getattr(classifier, "noisy", False)  # exact p(k | x_t): no Tweedie step, no decoder
        # ScoreDistillation then keeps the prior call's graph (not needed by a classifier of x_t)
        self.needs_prior_graph = mode == "exact" and not self.noisy

    def loss(self, ctx) -> torch.Tensor:
        t = ctx.t
        a, s = self.prior.schedule.coefficients(t)
        if self.noisy:
            wrt = ctx.x_t.detach().requires_grad_(True)
        elif self.mode == "exact":
            x_t, eps = ctx.extras["prior_graph"]  # x_t is a leaf; eps carries d eps_p / d x_t
            x0_hat = (x_t - s * eps) / a
            wrt = x_t
        else:
            wrt = x0_hat = ((ctx.x_t - s * ctx.eps_prior) / a).detach().requires_grad_(True)
        with torch.enable_grad():
            if self.noisy:
                log_p = self.classifier.log_probs_noisy(wrt, t)  # (B, K)
            else:
                log_p = self.classifier.log_probs(self.prior.decode(x0_hat))  # (B, K)
            k = log_p.shape[1]
            # log r = log sum_k (1/K) / pbar(k) * p(k); pbar is a constant (the EMA state).
            log_r = torch.logsumexp(log_p - torch.log(self.marginals.lookup(t) * k), dim=1)
            scale = (self.weighting(self.prior, t).view(-1) * (s / a).view(-1))
            objective = -(scale * log_r).sum()
            (g,) = torch.autograd.grad(objective, wrt)
        if self.noisy or self.mode == "exact":
            g = g * a  # chain rule through x_t = a_t x0 + s_t n
        ctx.extras["pose_probs"] = log_p.detach().exp()
        # B.3: the rectifier's gradient on x0 never exceeds the denoiser's (VSD) gradient, per image.
        g = g.detach()
        g_norm = g.flatten(1).norm(dim=1).clamp_min(1e-12)
        cap = ctx.grad.flatten(1).norm(dim=1)
        g = g * (cap / g_norm).clamp(max=1.0).view(-1, 1, 1, 1)
        # Same units as the SDS surrogate, whose x0-gradient is grad / numel.
        return (ctx.x0 * g).sum() / ctx.x0.numel()


def _classifier(prior, cfg, prompt: str):
    """`--pose-classifier`: the template classifier takes the rectifier's config, the exact
    posteriors only the prompt and the number of classes."""
    make = CLASSIFIERS.get(cfg.classifier)
    if cfg.classifier == "templates":
        return make(prior, cfg, prompt)
    return make(prior, prompt, cfg.pose_classes)
