"""Perp-Neg: view prompts interpolated by azimuth, other views as perpendicular negatives.

A drop-in replacement for `PromptGuide` (same `eps(x_t, t, cameras)`), so it works with every
method. Per camera, with r the interpolation ratio (docs/methods.md#perp-neg; ESD appendix C):
- front half (|azimuth| < 90):  r = 1 - |az|/90, positive = r front + (1 - r) side,
  negatives: front with f_fs(r), side with f_sf(1 - r);
- back half (|azimuth| >= 90):  r = 2 - |az|/90, positive = r side + (1 - r) back,
  negatives: side with f_sb(r), front with f_fsb(r);
- overhead (elevation > 60): the overhead prompt, no negatives;
with f(r) = a exp(-b r) + c. Then, all branches [pos, uncond, neg...] in ONE prior call,
    e_pos = eps_pos - eps_u,   e_i = eps_neg_i - eps_u,
    eps   = eps_u + s (e_pos - sum_i f_i perp(e_i, e_pos)),   perp(x, y) = x - <x,y>/<y,y> y.
The negative weights sit inside the guidance scale s, as in the Perp-Neg authors' 3D code
(stable-dreamfusion) and threestudio, whose (a, b, c) docs/methods.md quotes.

Interpolating conditionings: for SD these are CLIP hidden states, mixed linearly. For the analytic
prior they are log-weights over the references, so r log pi_front + (1 - r) log pi_side is the
geometric mixture pi ∝ pi_front^r pi_side^(1-r): as the camera turns, prior mass moves smoothly
from the front-bin references to the side-bin ones (the softmax in its posterior renormalises).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from t3d.errors import T3dError
from t3d.guidance.piece import Piece
from t3d.prompts.views import ViewPrompts, view_bin_of

FRONT, SIDE, BACK, OVERHEAD = 0, 1, 2, 3  # order of VIEW_NAMES / ViewPrompts.all_prompts()

# (a, b, c) of f(r) = a exp(-b r) + c
F_SIDE_BACK = (1.0, 0.5, -0.606)  # side as a negative, side-back half
F_FRONT_SIDE_BACK = (1.0, 0.5, 0.967)  # front as a negative, side-back half
F_FRONT_SIDE = (4.0, 0.5, -2.426)  # front as a negative, front-side half
F_SIDE_FRONT = (4.0, 0.5, -2.426)  # side as a negative, front-side half


def shifted_exp(abc: tuple[float, float, float], r: torch.Tensor) -> torch.Tensor:
    a, b, c = abc
    return a * torch.exp(-b * r) + c


@dataclass
class PerpNegPlan:
    """What each camera of a batch mixes and subtracts."""

    pos_weights: torch.Tensor  # (B, 4) weights over the view conditionings for the positive prompt
    neg_index: torch.Tensor  # (B, 2) view index of each negative
    neg_weight: torch.Tensor  # (B, 2) f(r); 0 = no negative (overhead)


def perp_neg_plan(azimuth: torch.Tensor, elevation: torch.Tensor) -> PerpNegPlan:
    a = (((azimuth.float() + 180.0) % 360.0) - 180.0).abs()
    front_half = a < 90.0
    r = torch.where(front_half, 1.0 - a / 90.0, 2.0 - a / 90.0)
    zero = torch.zeros_like(r)
    pos = torch.stack([torch.where(front_half, r, zero), torch.where(front_half, 1.0 - r, r),
                       torch.where(front_half, zero, 1.0 - r), zero], dim=-1)
    idx_front_half = torch.tensor([FRONT, SIDE], device=a.device)
    idx_back_half = torch.tensor([SIDE, FRONT], device=a.device)
    neg_index = torch.where(front_half[:, None], idx_front_half, idx_back_half)
    w0 = torch.where(front_half, shifted_exp(F_FRONT_SIDE, r), shifted_exp(F_SIDE_BACK, r))
    w1 = torch.where(front_half, shifted_exp(F_SIDE_FRONT, 1.0 - r), shifted_exp(F_FRONT_SIDE_BACK, r))
    neg_weight = torch.stack([w0, w1], dim=-1)
    overhead = view_bin_of(azimuth, elevation) == OVERHEAD
    pos = torch.where(overhead[:, None], torch.nn.functional.one_hot(torch.full_like(neg_index[:, 0], OVERHEAD), 4).to(pos), pos)
    neg_weight = torch.where(overhead[:, None], torch.zeros_like(neg_weight), neg_weight)
    return PerpNegPlan(pos, neg_index, neg_weight)


def mix_conditions(views: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """sum_k weights[b, k] views[k]; a zero weight contributes nothing even where views is -inf
    (the analytic prior's masked references), instead of 0 * -inf = nan."""
    w = weights.to(views).view(*weights.shape, *([1] * (views.dim() - 1)))
    terms = torch.where(w > 0, w * views[None], torch.zeros((), dtype=views.dtype, device=views.device))
    return terms.sum(1)


def perpendicular_component(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per sample, the part of x orthogonal to y."""
    dims = tuple(range(1, x.dim()))
    dot = (x * y).sum(dims, keepdim=True)
    norm2 = (y * y).sum(dims, keepdim=True).clamp_min(1e-12)
    return x - dot / norm2 * y


class PerpNegGuide(Piece):
    """Guided prior eps with Perp-Neg, in one batched prior call."""

    def __init__(self, prior, scale: float, views: ViewPrompts):
        if not views.enabled:
            raise T3dError("--perp-neg needs view prompts (it interpolates them); drop --no-view-prompts")
        self.prior, self.scale, self.views = prior, scale, views
        self.view_conds = prior.embed(views.all_prompts())  # (4, ...) front, side, back, overhead
        self.uncond = prior.embed([""])
        halfway = torch.tensor([[0.5, 0.5, 0, 0], [0, 0.5, 0.5, 0]])
        mixed = mix_conditions(self.view_conds, halfway).flatten(1)
        if not torch.isfinite(mixed).any(dim=1).all():
            raise T3dError("Perp-Neg cannot interpolate this prior's view conditionings: no reference is "
                           "allowed by both the front and side (or side and back) prompts; with the analytic "
                           "prior use --adherence below 1")

    @classmethod
    def from_config(cls, cfg, context) -> "PerpNegGuide":
        return cls(context.prior, cfg.scale, context.views)

    def conditions(self, cameras) -> tuple[torch.Tensor, torch.Tensor]:
        plan = perp_neg_plan(cameras.azimuth, cameras.elevation)
        pos = mix_conditions(self.view_conds, plan.pos_weights.to(self.view_conds.device))
        return pos, self.uncond.expand(len(cameras), *self.uncond.shape[1:])

    def eps(self, x_t: torch.Tensor, t: torch.Tensor, cameras, scale: float | None = None) -> torch.Tensor:
        scale = self.scale if scale is None else scale
        device = self.view_conds.device
        plan = perp_neg_plan(cameras.azimuth.to(device), cameras.elevation.to(device))
        pos, uncond = self.conditions(cameras)
        b = x_t.shape[0]
        # Negatives with weight 0 (overhead cameras) are not computed at all.
        rows, slots = (plan.neg_weight > 0).nonzero(as_tuple=True)
        neg = self.view_conds[plan.neg_index[rows, slots]]
        rows_x = rows.to(x_t.device)
        out = self.prior.eps(torch.cat([x_t, x_t, x_t[rows_x]]), torch.cat([t, t, t[rows_x]]),
                             torch.cat([pos, uncond, neg]))
        eps_pos, eps_u, eps_neg = out[:b], out[b:2 * b], out[2 * b:]
        e_pos = eps_pos - eps_u
        weight = plan.neg_weight[rows, slots].to(out).view(-1, *([1] * (out.dim() - 1)))
        push = weight * perpendicular_component(eps_neg - eps_u[rows_x], e_pos[rows_x])
        total = torch.zeros_like(e_pos).index_add_(0, rows_x, push)
        return eps_u + scale * (e_pos - total)
