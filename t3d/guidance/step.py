"""Score distillation as composable pieces.

One step, for a batch of renders x0 = encode(render(theta, c)):
    t      ~ timesteps                          (uniform; anneal; back-and-forth)
    n      ~ noise source                       (fresh Gaussian; DDIM inversion (SDI); 3D-consistent (GSD))
    x_t    = a_t x0 + s_t n
    eps_p  = guide: prior eps with CFG on view prompts (one batched prior call; or Perp-Neg)
    base   = baseline score                     (n for SDS; eps_phi for VSD/ESD)
    grad   = post(w(t) * (eps_p - base))        (post: optional D-SDS clipping)
    loss   = 0.5 * mean((x0 - (x0 - grad).detach())^2)  +  sum of extra terms (USD, GSD, SDI)
Its gradient on x0 is grad / numel: the mean keeps the loss's size independent of image size,
and Adam makes the absolute scale irrelevant to the field's update.

Methods are presets of config values that pick pieces; each slot's registry (its package's
config.py) maps the config to the piece, so a new piece needs no change here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

import torch

from t3d.guidance.baseline.config import BASELINES
from t3d.guidance.config import WEIGHTINGS, GuidanceConfig
from t3d.guidance.guide.config import GUIDES
from t3d.guidance.noise.config import NOISE
from t3d.guidance.post.config import POST
from t3d.guidance.terms.config import TERMS
from t3d.guidance.timesteps.config import TIMESTEPS
from t3d.priors.base import Prior
from t3d.prompts.auxiliary import with_auxiliary_views
from t3d.prompts.config import PromptsConfig
from t3d.prompts.debias import debiased_view_prompts
from t3d.prompts.views import ViewPrompts
from t3d.scene.cameras import Cameras
from t3d.timing import NULL_TIMER


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
    extras: dict = field(default_factory=dict)  # values pieces hand each other within the step


@dataclass
class BuildContext:
    """What a piece may use when it is built from its config (`from_config(cfg, context)`)."""

    prior: Prior
    guidance: GuidanceConfig
    prompts: PromptsConfig
    prompt: str  # with RecDreamer's auxiliary views, the prompt eps_phi and the guide see
    base_prompt: str  # as the user wrote it
    views: ViewPrompts
    trainables: dict = field(default_factory=dict)  # name -> piece trained beside the field, checkpointed
    guide: Any = None  # built first: the noise source may call it (SDI's inversion)


@dataclass
class GuidanceStats:
    t_mean: float
    grad_norm: float
    terms: dict = field(default_factory=dict)  # extra loss terms by name (floats), for the log


class ScoreDistillation:
    """The guidance of one run, assembled from the pieces its config selects.

    Contracts (see each slot's package): `timesteps.sample(batch, progress, generator)`,
    `noise.sample(ctx)`, `guide.eps(x_t, t, cameras)`, `baseline(ctx)`, post-processors
    `(grad, progress) -> grad`, terms with `name` and `loss(ctx)`; any of them may override the
    hooks of guidance/piece.py. Trainables have `update(ctx) -> dict of logged values`,
    `state_dict()` and `load_state_dict()`; they are checkpointed under their name.
    """

    def __init__(self, prior: Prior, cfg: GuidanceConfig, prompts: PromptsConfig, prompt: str):
        self.prior, self.cfg = prior, cfg
        full_prompt = with_auxiliary_views(prompt, prompts.aux_views)  # RecDreamer B.3
        # View prompts, per-view debiased when the config asks; notes are for the user.
        self.views, self.notes = debiased_view_prompts(full_prompt, prompts, prior)
        ctx = BuildContext(prior, cfg, prompts, full_prompt, prompt, self.views)
        self.timesteps = TIMESTEPS.build(cfg.timesteps, ctx)
        self.guide = ctx.guide = GUIDES.build(cfg.guide, ctx)
        self.noise = NOISE.build(cfg.noise, ctx)
        self.baseline = BASELINES.build(cfg.baseline, ctx)
        self.weight = WEIGHTINGS.get(cfg.weighting)
        self.post = POST.build(cfg.post, ctx)
        self.terms = TERMS.build(cfg.terms, ctx)
        self.trainables: dict[str, Any] = ctx.trainables
        self.pieces = [self.timesteps, self.guide, self.noise, self.baseline, *self.post, *self.terms]
        self.prior_graph = any(piece.needs_prior_graph for piece in self.pieces)
        self.timer = NULL_TIMER
        self.last: StepContext | None = None

    def needs_normals(self, progress: float) -> bool:
        return any(piece.needs_normals(progress) for piece in self.pieces)

    def cameras_for_step(self, cameras: Cameras) -> Cameras:
        for piece in self.pieces:
            cameras = piece.cameras_for_step(cameras)
        return cameras

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
        part, schedule = self.timer.part, self.prior.schedule
        with part("encode"):
            x0 = self.prior.encode(rgb)
        ctx = StepContext(self.prior, cameras, progress, generator, x0, render)
        ctx.t = self.timesteps.sample(x0.shape[0], progress, generator).to(x0.device)
        with part("noise"):
            ctx.noise = self.noise.sample(ctx)
        with torch.no_grad():
            ctx.x_t = schedule.add_noise(x0.detach(), ctx.noise, ctx.t)
            with part("prior"):
                ctx.eps_prior = self.prior_eps(ctx)
            with part("baseline"):
                ctx.baseline = self.baseline(ctx)
            grad = self.weight(schedule, ctx.t) * (ctx.eps_prior - ctx.baseline)
            for post in self.post:
                grad = post(grad, progress)
            ctx.grad = grad
        target = (x0 - grad).detach()
        loss = 0.5 * torch.nn.functional.mse_loss(x0, target, reduction="mean")
        terms = {}
        with part("terms"):
            for term in self.terms:
                value = term.loss(ctx)
                terms[term.name] = float(value.detach())
                loss = loss + value
        self.last = ctx
        return loss, GuidanceStats(ctx.t.float().mean().item(), grad.norm().item() / max(x0.shape[0], 1), terms)

    def update(self) -> dict:
        """After the field's optimizer step: train what learns alongside the field, on this step;
        returns the values those pieces log (e.g. the score model's loss)."""
        logged: dict = {}
        if self.last is not None:
            for piece in self.trainables.values():
                logged.update(piece.update(self.last) or {})
        self.last = None  # drop the step's graph references
        return logged

    def state_dict(self) -> dict[str, torch.Tensor]:
        state = {}
        for name, piece in self.trainables.items():
            state.update({f"{name}/{k}": v for k, v in piece.state_dict().items()})
        return state

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        for name, piece in self.trainables.items():
            head = name + "/"
            piece.load_state_dict({k[len(head):]: v for k, v in state.items() if k.startswith(head)})
