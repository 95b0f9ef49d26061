"""GSD's multi-view gradient consistency (docs/methods.md#gsd; the paper's Sec. 4.3-4.4).

Each training camera gets a neighbour a few degrees away in azimuth (same elevation, fov and
distance), rendered in the same batch. The 2D gradient of one view is warped into the other with
the rendered depth, and the loss is the occlusion-masked `1 - cos` between corresponding
per-pixel gradient vectors (Eq. 13), in both directions.

The loss regularises geometry only: both gradient maps are detached, so it reaches the field
through the rendered depth that places the warp's sampling points. The warp is bilinear
(differentiable in the sampling location); the author's snapshot used nearest sampling on detached
gradients, so its loss sent no gradient to the geometry at all.

Eq. 13 sums over pixels; here the sum is divided by the number of unoccluded pixels, so the
weight does not depend on the image size (default weight 5.0, from the author's code).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from t3d.guidance.piece import Piece
from t3d.scene.cameras import Cameras, wrap_azimuth
from t3d.scene.view_geometry import surface_on_grid, warp_from


class NeighbourViews:
    """`cameras_for_step`: the batch [anchors; neighbours], neighbour k paired with anchor k.

    Even anchors get +offset, odd ones -offset, so a batch sees both sides (±5 degrees)."""

    def __init__(self, offset_degrees: float = 5.0):
        self.offset = offset_degrees

    def __call__(self, cameras: Cameras) -> Cameras:
        sign = 1.0 - 2.0 * (torch.arange(len(cameras), device=cameras.azimuth.device) % 2)
        nb = Cameras(wrap_azimuth(cameras.azimuth + sign * self.offset), cameras.elevation.clone(),
                     cameras.distance.clone(), cameras.fovy.clone())
        return Cameras.cat([cameras, nb])


class GradientConsistency(Piece):
    """Loss term (`name`, `loss(ctx)`) on a batch laid out by `NeighbourViews`, which it asks the
    engine to render (`cameras_for_step`)."""

    name = "grad_consistency"

    def __init__(self, weight: float, threshold: float = 0.5, tolerance: float = 2.0,
                 neighbour_azimuth: float = 5.0):
        self.weight, self.threshold, self.tolerance = weight, threshold, tolerance
        self.neighbours = NeighbourViews(neighbour_azimuth)

    @classmethod
    def from_config(cls, cfg, context) -> "GradientConsistency | None":
        return cls(cfg.weight, neighbour_azimuth=cfg.neighbour_azimuth) if cfg.weight > 0 else None

    def cameras_for_step(self, cameras: Cameras) -> Cameras:
        return self.neighbours(cameras)

    def loss(self, ctx) -> torch.Tensor:
        batch = len(ctx.cameras)
        if batch % 2 or ctx.render is None:
            raise ValueError("gradient consistency needs the rendered [anchors; neighbours] batch "
                             "(ScoreDistillation.cameras_for_step) and its render")
        half = batch // 2
        size = ctx.grad.shape[-1]
        opacity, distance = surface_on_grid(ctx.render, size)  # differentiable: the geometry path
        # Target view i takes its partner's gradient: anchors from neighbours and back.
        partner = torch.cat([torch.arange(half, batch), torch.arange(half)]).to(ctx.grad.device)
        grad = ctx.grad.detach()
        warped, visible = warp_from(grad[partner], distance[partner].detach(), ctx.cameras[partner],
                                    distance, ctx.cameras, self.tolerance, opacity[partner], self.threshold)
        mask = (visible & (opacity.detach() > self.threshold)).float()
        cosine = F.cosine_similarity(grad, warped, dim=1, eps=1e-8)[:, None]
        return self.weight * ((1 - cosine) * mask).sum() / mask.sum().clamp_min(1.0)
