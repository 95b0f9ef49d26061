"""Score distillation as composable pieces.

One step, for a batch of renders x0 = encode(render(theta, c)):
    t      ~ timesteps                          (uniform; anneal; ...)
    n      ~ noise source                       (fresh Gaussian; DDIM inversion (SDI); ...)
    x_t    = a_t x0 + s_t n
    eps_p  = guide: prior eps with CFG on view prompts (one batched prior call; or Perp-Neg)
    base   = baseline score                     (n for SDS; eps_phi for VSD/ESD)
    grad   = post(w(t) * (eps_p - base))        (post: optional D-SDS clipping, guidance/postprocess.py)
    loss   = 0.5 * mean((x0 - (x0 - grad).detach())^2)  +  sum of extra terms (USD, GSD, ...)
Its gradient on x0 is grad / numel: the mean keeps the loss's size independent of image size,
and Adam makes the absolute scale irrelevant to the field's update.

Methods are presets of config flags that pick pieces; none of them subclasses this loop. Every
piece sees the step through one `StepContext`, so a new piece needs no change here beyond the
line in `ScoreDistillation.__init__` that builds it from the config.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

import torch

from t3d.config import GuidanceConfig
from t3d.guidance.convexity import ConvexityTerm
from t3d.guidance.inversion_noise import InversionNoise
from t3d.guidance.consistent_noise import ConsistentNoise
from t3d.guidance.gradient_consistency import GradientConsistency, NeighbourViews
from t3d.guidance.noise import GaussianNoise
from t3d.guidance.perp_neg import PerpNegGuide
from t3d.guidance.postprocess import ScoreClip, resolve_score_clip
from t3d.guidance.score_model import CameraScoreModel
from t3d.guidance.timesteps import TimestepSchedule
from t3d.priors.base import Prior, add_noise, guided_eps
from t3d.prompts.debias import debiased_view_prompts
from t3d.guidance.rectifier import build_rectifier
from t3d.prompts.auxiliary import with_auxiliary_views
from t3d.prompts.views import ViewPrompts
from t3d.scene.cameras import Cameras


@dataclass
class StepContext:
    """Everything one guidance step knows; pieces read it and may fill the later fields."""

    prior: Prior
    cameras: Cameras
    progress: float  # step / total steps, in [0, 1]
    generator: torch.Generator  # CPU generator seeded per step: all randomness comes from it
    x0: torch.Tensor  # (B, C, h, w) encoded render, differentiable w.r.t. the field
    render: Optional[Any] = None  # the RenderOutput (depth, opacity...) when rendered in 3D
    t: Optional[torch.Tensor] = None  # (B,) integer timesteps
    noise: Optional[torch.Tensor] = None
    x_t: Optional[torch.Tensor] = None
    eps_prior: Optional[torch.Tensor] = None  # guided prior eps at x_t
    baseline: Optional[torch.Tensor] = None
    grad: Optional[torch.Tensor] = None  # the 2D gradient applied to x0
    extras: dict = field(default_factory=dict)  # per-step values pieces share (stats, caches)


class NoiseBaseline:
    """SDS: subtract the injected noise (the 'score' of the current render is taken as n)."""

    def __call__(self, ctx: StepContext) -> torch.Tensor:
        return ctx.noise


class PromptGuide:
    """The prior's eps at x_t under CFG with each camera's view prompt, in one batched prior call.

    CFG convention (diffusers, the only one in t3d): eps = eps_u + s * (eps_c - eps_u).
    """

    def __init__(self, prior: Prior, cfg: GuidanceConfig, views: ViewPrompts):
        self.prior, self.scale, self.views = prior, cfg.guidance_scale, views
        # Embed every prompt the run will use now, so a latent prior can drop its text encoder.
        prior.embed(self.views.all_prompts() + [""])

    def conditions(self, cameras: Cameras) -> tuple[torch.Tensor, torch.Tensor]:
        cond = self.prior.embed(self.views.for_cameras(cameras))
        uncond = self.prior.embed([""] * len(cameras))
        return cond, uncond

    def eps(self, x_t: torch.Tensor, t: torch.Tensor, cameras: Cameras, scale: float | None = None) -> torch.Tensor:
        cond, uncond = self.conditions(cameras)
        return guided_eps(self.prior, x_t, t, cond, uncond, self.scale if scale is None else scale)


def sds_weight(prior: Prior, t: torch.Tensor, kind: str) -> torch.Tensor:
    if kind == "sds":
        return (1 - prior.alphas_cumprod[t]).view(-1, 1, 1, 1)
    if kind == "sigma":
        # SDI (Algorithm 3, eq. 3.4 in its notation): w = sigma(t) = s_t / a_t, which makes the step
        # x0 - x0_hat(x_t): the gradient is the distance to the single-step denoised image.
        a2 = prior.alphas_cumprod[t].view(-1, 1, 1, 1)
        return ((1 - a2) / a2).sqrt()
    if kind == "uniform":
        return torch.ones(t.shape[0], 1, 1, 1, device=t.device)
    raise ValueError(f"unknown weighting {kind!r}")


def build_noise(prior: Prior, cfg: GuidanceConfig, guide: PromptGuide):
    if cfg.noise == "gaussian":
        return GaussianNoise()
    if cfg.noise == "consistent":
        return ConsistentNoise(cfg.noise_upsample, cfg.noise_hold, cfg.noise_hold_from)
    if cfg.noise == "inversion":
        inv = cfg.inversion
        scale = -cfg.guidance_scale if inv.scale is None else inv.scale
        return InversionNoise(prior, guide, scale, inv.steps_per_t, inv.tau, inv.extra_noise)
    raise ValueError(f"unknown noise source {cfg.noise!r}")


@dataclass
class GuidanceStats:
    t_mean: float
    grad_norm: float
    terms: dict = field(default_factory=dict)  # extra loss terms by name (floats), for the log


class ScoreDistillation:
    """The guidance of one run, assembled from pieces chosen by the config.

    Pieces and their contracts:
    - `timesteps.sample(batch, progress, generator) -> (B,) long`
    - `noise.sample(ctx) -> tensor like x0` (ctx.t is set)
    - `guide.eps(x_t, t, cameras) -> guided prior eps`
    - `baseline(ctx) -> tensor like x0` (ctx.eps_prior is set)
    - `post`: callables `(grad, progress) -> grad`
    - `terms`: objects with `name` and `loss(ctx) -> scalar tensor`, added to the SDS surrogate;
      optionally `needs_normals(progress) -> bool` to have the engine render normals that step
    - `cameras_for_step(cameras) -> cameras`: what the engine renders (identity unless a piece
      needs extra views, e.g. GSD's neighbours)
    - `trainables`: objects with `update(ctx)`, `state_dict()`, `load_state_dict(state)` — things
      trained alongside the field (VSD's eps_phi, USD's EMA marginals); checkpointed under their name.
    """

    def __init__(self, prior: Prior, cfg: GuidanceConfig, prompt: str):
        self.prior, self.cfg = prior, cfg
        base_prompt, prompt = prompt, with_auxiliary_views(prompt, cfg.aux_views)  # RecDreamer B.3
        # View prompts, per-view debiased when cfg.prompt_debias asks; notes are for the user.
        self.views, self.notes = debiased_view_prompts(prompt, cfg, prior)
        self.timesteps = TimestepSchedule(cfg, prior.num_train_timesteps)
        self.guide = (PerpNegGuide if cfg.perp_neg else PromptGuide)(prior, cfg, self.views)
        self.noise = build_noise(prior, cfg, self.guide)
        clip = resolve_score_clip(cfg.score_clip, prior)  # "auto" -> the prior's D-SDS default
        self.post = [ScoreClip(*clip)] if clip else []
        self.neighbours = NeighbourViews(cfg.neighbour_azimuth) if cfg.grad_consistency > 0 else None
        self.terms: list = []
        if cfg.convexity > 0:
            self.terms.append(ConvexityTerm(cfg.convexity, cfg.convexity_until))
        if cfg.grad_consistency > 0:
            self.terms.append(GradientConsistency(cfg.grad_consistency))
        self.trainables: dict[str, Any] = {}
        if isinstance(self.noise, ConsistentNoise):
            self.trainables["consistent_noise"] = self.noise  # held noise cloud, checkpointed
        if cfg.baseline == "score_model":  # VSD / ESD: eps_phi of the renders, trained every step
            self.baseline = self.trainables["score_model"] = CameraScoreModel(prior, cfg, prompt)
        else:
            self.baseline = NoiseBaseline()
        if cfg.rectifier.enabled:  # USD: VSD + the pose rectifier's log r term and its EMA marginals
            self.terms.append(build_rectifier(prior, cfg, base_prompt, self.trainables))
        # A term that differentiates through the prior (USD exact mode) gets the step's guided
        # prior call made with a graph, so it needs no second prior forward.
        self.prior_graph = any(getattr(term, "needs_prior_graph", False) for term in self.terms)
        self.last: StepContext | None = None

    def needs_normals(self, progress: float) -> bool:
        """Whether this step's render must carry normals (a term reads them, e.g. convexity)."""
        return any(getattr(term, "needs_normals", lambda p: False)(progress) for term in self.terms)

    def cameras_for_step(self, cameras: Cameras) -> Cameras:
        """The cameras to render this step: the sampled ones, plus any views a piece needs beside
        them (GSD's neighbour views for gradient consistency)."""
        return self.neighbours(cameras) if self.neighbours is not None else cameras

    def prior_eps(self, ctx: StepContext) -> torch.Tensor:
        if not self.prior_graph:
            return self.guide.eps(ctx.x_t, ctx.t, ctx.cameras)
        with torch.enable_grad():
            x_t = ctx.x_t.detach().requires_grad_(True)
            eps = self.guide.eps(x_t, ctx.t, ctx.cameras)
        ctx.extras["prior_graph"] = (x_t, eps)
        return eps.detach()

    def loss(self, rgb: torch.Tensor, cameras: Cameras, progress: float, generator: torch.Generator,
             render=None) -> tuple[torch.Tensor, GuidanceStats]:
        """Loss for renders `rgb` (B, 3, H, W) in [0, 1] seen by `cameras`; `render` is the full
        RenderOutput when there is one (pieces that need depth or opacity read it)."""
        x0 = self.prior.encode(rgb)
        ctx = StepContext(self.prior, cameras, progress, generator, x0, render)
        ctx.t = self.timesteps.sample(x0.shape[0], progress, generator).to(x0.device)
        ctx.noise = self.noise.sample(ctx)
        with torch.no_grad():
            ctx.x_t = add_noise(self.prior, x0.detach(), ctx.noise, ctx.t)
            ctx.eps_prior = self.prior_eps(ctx)
            ctx.baseline = self.baseline(ctx)
            grad = sds_weight(self.prior, ctx.t, self.cfg.weighting) * (ctx.eps_prior - ctx.baseline)
            for post in self.post:
                grad = post(grad, progress)
            ctx.grad = grad
        target = (x0 - grad).detach()
        loss = 0.5 * torch.nn.functional.mse_loss(x0, target, reduction="mean")
        terms = {}
        for term in self.terms:
            value = term.loss(ctx)
            terms[term.name] = float(value.detach())
            loss = loss + value
        self.last = ctx
        return loss, GuidanceStats(ctx.t.float().mean().item(), grad.norm().item() / max(x0.shape[0], 1), terms)

    def update(self) -> None:
        """After the field's optimizer step: train what learns alongside the field, on this step."""
        if self.last is None:
            return
        for piece in self.trainables.values():
            piece.update(self.last)
        self.last = None  # drop the step's graph references

    def state_dict(self) -> dict[str, torch.Tensor]:
        state = {}
        for name, piece in self.trainables.items():
            state.update({f"{name}/{k}": v for k, v in piece.state_dict().items()})
        return state

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        for name, piece in self.trainables.items():
            head = name + "/"
            piece.load_state_dict({k[len(head):]: v for k, v in state.items() if k.startswith(head)})
