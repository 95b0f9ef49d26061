"""Scenes with a closed form for tests: an opaque ball rendered exactly, a constant-density ball field."""

from __future__ import annotations

import torch

from t3d.scene.cameras import Cameras
from t3d.scene.config import FieldConfig
from t3d.scene.render import RenderOutput


RADIUS = 0.5


def cameras(*azimuths, elevation=10.0, distance=2.0, fovy=45.0) -> Cameras:
    n = len(azimuths)
    return Cameras(torch.tensor(azimuths, dtype=torch.float32), torch.full((n,), elevation),
                   torch.full((n,), distance), torch.full((n,), fovy))


def ball_render(cams: Cameras, size: int) -> RenderOutput:
    """Exact render of an opaque ball of radius RADIUS at the origin (depth = hit distance)."""
    o, d = cams.rays(size)
    b = (o * d).sum(-1)
    disc = b * b - ((o * o).sum(-1) - RADIUS**2)
    hit = (disc > 0).float()[:, None]
    t = (-b - disc.clamp_min(0).sqrt())[:, None] * hit
    return RenderOutput(rgb=torch.zeros(len(cams), 3, size, size), opacity=hit, depth=t)


class ConstantBall(torch.nn.Module):
    def __init__(self, density: float, radius: float):
        super().__init__()
        self.cfg = FieldConfig(bound=1.0)
        self.sigma, self.radius = density, radius

    def forward(self, points):
        inside = points.norm(dim=-1) < self.radius
        density = torch.where(inside, torch.full_like(points[:, 0], self.sigma), torch.zeros_like(points[:, 0]))
        rgb = torch.tensor([1.0, 0.0, 0.0]).expand(points.shape[0], 3)
        return density, rgb

    def density(self, points):
        return self.forward(points)[0]
