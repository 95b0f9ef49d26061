"""The rendered surface on the prior's grid, and moving points between views with it.

Guidance works on x0's grid (the latent grid for latent priors, pixels for pixel priors), which
may be coarser than the render. Shared by the 3D-consistent noise and the gradient warp (GSD).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from t3d.scene.cameras import Cameras


def surface_on_grid(render, size: int, eps: float = 1e-6) -> tuple[torch.Tensor, torch.Tensor]:
    """Opacity (B, 1, size, size) and the surface's distance along each ray (B, 1, size, size).

    The renderer's depth is the opacity-weighted distance sum(w_i t_i); dividing by the opacity
    gives the expected distance of the surface itself. Area pooling both first keeps that ratio
    an opacity-weighted average over the render pixels that one grid cell covers. Differentiable.
    """
    opacity, depth = render.opacity, render.depth
    if opacity.shape[-1] != size or opacity.shape[-2] != size:
        opacity = F.interpolate(opacity, size=(size, size), mode="area")
        depth = F.interpolate(depth, size=(size, size), mode="area")
    return opacity, depth / opacity.clamp_min(eps)


def unproject(cameras: Cameras, distance: torch.Tensor) -> torch.Tensor:
    """World points (B, H, W, 3) at `distance` (B, 1, H, W) along each pixel-centre ray."""
    origins, dirs = cameras.rays(distance.shape[-2], distance.shape[-1])
    return origins + dirs * distance[:, 0, ..., None]


def pixel_footprint(cameras: Cameras, size: int) -> torch.Tensor:
    """(B,) width in world units that one grid cell covers at the scene centre (the origin)."""
    return cameras.distance * 2 * torch.tan(0.5 * torch.deg2rad(cameras.fovy)) / size


def warp_from(source: torch.Tensor, source_distance: torch.Tensor, source_cameras: Cameras,
              target_distance: torch.Tensor, target_cameras: Cameras, tolerance: float = 2.0,
              source_opacity: torch.Tensor | None = None, threshold: float = 0.5):
    """Backward warp: `source` (B, C, H, W), seen by `source_cameras`, resampled into the target views.

    Each target pixel p is lifted to X = o + d * target_distance(p) and projected into the source
    view, where `source` is sampled bilinearly (grid_sample). The sampling location is a smooth
    function of `target_distance`, so a loss on the result sends gradient into the target's
    rendered depth (the public GSD snapshot used nearest sampling, which sends none).

    Returns (warped (B, C, H, W), visible (B, 1, H, W) bool). `visible` is the occlusion test: X
    lands inside the source image, on its rendered surface (|X - eye| within `tolerance` grid
    cells of the source's surface distance there) and, given `source_opacity`, on a pixel the
    source sees as covered. The mask carries no gradient.
    """
    size = target_distance.shape[-1]
    points = unproject(target_cameras, target_distance)  # (B, H, W, 3)
    flat = points.reshape(points.shape[0], -1, 3)
    pix, _ = source_cameras.project(flat, source.shape[-2], source.shape[-1])
    # grid_sample (align_corners=False) puts pixel centres at (i + 0.5) / W * 2 - 1, as rays() does.
    grid = torch.stack([pix[..., 0] / source.shape[-1], pix[..., 1] / source.shape[-2]], dim=-1) * 2 - 1
    grid = grid.view(points.shape[0], size, size, 2)
    warped = F.grid_sample(source, grid.to(source.dtype), mode="bilinear", padding_mode="zeros", align_corners=False)
    with torch.no_grad():
        inside = (grid.abs() <= 1).all(-1)[:, None]
        seen = F.grid_sample(source_distance.detach(), grid, mode="bilinear", align_corners=False)
        eye = source_cameras.position[:, None, None, :]
        to_source = (points.detach() - eye).norm(dim=-1)[:, None]
        slack = tolerance * pixel_footprint(source_cameras, size).view(-1, 1, 1, 1)
        visible = inside & ((to_source - seen).abs() < slack)
        if source_opacity is not None:
            cover = F.grid_sample(source_opacity.detach(), grid, mode="bilinear", align_corners=False)
            visible &= cover > threshold
    return warped, visible
