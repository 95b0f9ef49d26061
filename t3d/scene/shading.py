"""Diffuse shading of training renders with a random light, and "textureless" augmentation.

DreamFusion shades each training view with a random point light so that the prior judges shape
as well as colour, and sometimes replaces the albedo by white ("textureless") so that geometry
alone has to look right. We shade per pixel (deferred), with normals taken from the rendered depth
map: it needs no second-order gradients through the field's encoding (a dense grid's
grid_sample has none), costs a few image-sized operations, and is differentiable through depth,
so shading sends gradients to geometry.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from t3d.scene.cameras import Cameras


def depth_normals(depth: torch.Tensor, cameras: Cameras) -> torch.Tensor:
    """World-space unit normals (B, 3, H, W) of the surface seen in `depth` (B, 1, H, W).

    Each pixel's 3D point is origin + depth * ray; the normal is the cross product of the point
    grid's finite differences, flipped to face the camera.
    """
    batch, _, height, width = depth.shape
    origins, dirs = cameras.rays(height, width)  # (B, H, W, 3)
    points = origins + dirs * depth.permute(0, 2, 3, 1)
    # Central differences inside, one-sided at the border (replicate padding).
    padded = F.pad(points.permute(0, 3, 1, 2), (1, 1, 1, 1), mode="replicate")
    d_col = (padded[:, :, 1:-1, 2:] - padded[:, :, 1:-1, :-2])
    d_row = (padded[:, :, 2:, 1:-1] - padded[:, :, :-2, 1:-1])
    normal = F.normalize(torch.linalg.cross(d_col, d_row, dim=1), dim=1, eps=1e-8)
    facing = (normal * dirs.permute(0, 3, 1, 2)).sum(1, keepdim=True)
    return torch.where(facing > 0, -normal, normal)


def random_lights(cameras: Cameras, generator: torch.Generator, spread_deg: float = 45.0) -> torch.Tensor:
    """(B, 3) unit light directions near each camera's viewing direction (lit from the front)."""
    toward_camera = F.normalize(cameras.position, dim=-1)
    jitter = torch.randn(len(cameras), 3, generator=generator).to(toward_camera.device)
    jitter = jitter * torch.tan(torch.deg2rad(torch.tensor(spread_deg))) / 3 ** 0.5
    return F.normalize(toward_camera + jitter, dim=-1)


def shade(rgb: torch.Tensor, opacity: torch.Tensor, depth: torch.Tensor, cameras: Cameras,
          background: torch.Tensor, generator: torch.Generator, ambient: float = 0.2,
          textureless_prob: float = 0.0) -> torch.Tensor:
    """Re-light a composited render: foreground * (ambient + (1 - ambient) * max(0, n . l)).

    `rgb` is the render already composited over `background`; the foreground part is recovered
    as rgb - (1 - opacity) * background, so shading never touches the background.
    """
    bg = background.view(1, 3, 1, 1).to(rgb)
    foreground = rgb - (1 - opacity) * bg
    if textureless_prob > 0:
        white = torch.rand(len(cameras), generator=generator).to(rgb.device) < textureless_prob
        foreground = torch.where(white.view(-1, 1, 1, 1), opacity.expand_as(foreground), foreground)
    normal = depth_normals(depth, cameras)
    light = random_lights(cameras, generator).view(-1, 3, 1, 1)
    lambert = (normal * light).sum(1, keepdim=True).clamp_min(0)
    return foreground * (ambient + (1 - ambient) * lambert) + (1 - opacity) * bg
