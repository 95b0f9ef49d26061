"""Volume rendering of the field along camera rays (nerfacc's weight and accumulation functions).

Samples are stratified between the ray's entry and exit of the scene cube. With an occupancy
grid, only samples in occupied cells go through the network; the rest have zero density.
"""

from __future__ import annotations

from dataclasses import dataclass

import nerfacc
import torch

from t3d.scene.cameras import Cameras
from t3d.scene.occupancy import OccupancyGrid


@dataclass
class RenderOutput:
    rgb: torch.Tensor  # (B, 3, H, W)
    opacity: torch.Tensor  # (B, 1, H, W)
    depth: torch.Tensor  # (B, 1, H, W) expected distance along the ray (0 where empty)
    normal: torch.Tensor | None = None  # (B, 3, H, W) world-space, in [-1, 1]
    weights: torch.Tensor | None = None  # (B*H*W, S) for regularisers


def ray_box_interval(origins: torch.Tensor, dirs: torch.Tensor, bound: float):
    """Entry and exit distances of rays through the cube [-bound, bound]^3 (slab method)."""
    inv = 1.0 / torch.where(dirs.abs() < 1e-9, torch.full_like(dirs, 1e-9), dirs)
    t0 = (-bound - origins) * inv
    t1 = (bound - origins) * inv
    near = torch.minimum(t0, t1).amax(-1).clamp_min(0.0)
    far = torch.maximum(t0, t1).amin(-1)
    return near, torch.maximum(far, near)  # a miss gives an empty interval


def render(field, cameras: Cameras, resolution: int, samples_per_ray: int = 64,
           background: tuple[float, float, float] | torch.Tensor = (1.0, 1.0, 1.0),
           occupancy: OccupancyGrid | None = None, generator: torch.Generator | None = None,
           with_normals: bool = False, chunk_rays: int | None = None) -> RenderOutput:
    """Render B cameras at resolution x resolution. `generator` jitters samples (training)."""
    origins, dirs = cameras.rays(resolution)
    batch = len(cameras)
    origins, dirs = origins.reshape(-1, 3), dirs.reshape(-1, 3)
    if chunk_rays is not None and origins.shape[0] > chunk_rays:
        parts = [_render_rays(field, o, d, samples_per_ray, occupancy, generator, with_normals)
                 for o, d in zip(origins.split(chunk_rays), dirs.split(chunk_rays))]
        rgb, opacity, depth, normal, weights = (
            None if parts[0][i] is None else torch.cat([p[i] for p in parts]) for i in range(5))
    else:
        rgb, opacity, depth, normal, weights = _render_rays(
            field, origins, dirs, samples_per_ray, occupancy, generator, with_normals)
    bg = torch.as_tensor(background, dtype=rgb.dtype, device=rgb.device)
    if bg.dim() == 1:
        bg = bg.expand_as(rgb)
    rgb = rgb + (1 - opacity) * bg

    def image(x):  # (B*H*W, C) -> (B, C, H, W)
        return x.view(batch, resolution, resolution, -1).permute(0, 3, 1, 2).contiguous()

    return RenderOutput(image(rgb), image(opacity), image(depth),
                        None if normal is None else image(normal), weights)


def _render_rays(field, origins, dirs, samples_per_ray, occupancy, generator, with_normals):
    n_rays, device = origins.shape[0], origins.device
    near, far = ray_box_interval(origins, dirs, field.cfg.bound)
    steps = torch.arange(samples_per_ray, device=device, dtype=origins.dtype)
    if generator is not None:
        steps = steps + torch.rand(n_rays, samples_per_ray, generator=generator).to(device)
    else:
        steps = steps + 0.5
    span = (far - near)[:, None] / samples_per_ray
    t_mid = near[:, None] + steps * span
    t_starts, t_ends = t_mid - 0.5 * span, t_mid + 0.5 * span
    points = origins[:, None] + dirs[:, None] * t_mid[..., None]  # (R, S, 3)
    flat = points.view(-1, 3)

    keep = occupancy.query(flat) if occupancy is not None else torch.ones(flat.shape[0], dtype=torch.bool, device=device)
    keep &= (span > 0).expand(-1, samples_per_ray).reshape(-1)
    density = torch.zeros(flat.shape[0], device=device, dtype=origins.dtype)
    colors = torch.zeros(flat.shape[0], 3, device=device, dtype=origins.dtype)
    normals = None
    if keep.any():
        kept = flat[keep]
        if with_normals:
            with torch.enable_grad():
                kept = kept.detach().requires_grad_(True)
                d_kept, c_kept = field(kept)
                grad = torch.autograd.grad(d_kept.sum(), kept, create_graph=torch.is_grad_enabled())[0]
            normals = torch.zeros_like(flat)
            normals[keep] = -torch.nn.functional.normalize(grad, dim=-1)
        else:
            d_kept, c_kept = field(kept)
        density = density.masked_scatter(keep, d_kept.to(density.dtype))
        colors = colors.masked_scatter(keep[:, None].expand(-1, 3), c_kept.to(colors.dtype))

    weights, _, _ = nerfacc.render_weight_from_density(t_starts, t_ends, density.view(n_rays, -1))
    rgb = nerfacc.accumulate_along_rays(weights, colors.view(n_rays, samples_per_ray, 3))
    opacity = nerfacc.accumulate_along_rays(weights, None)
    depth = nerfacc.accumulate_along_rays(weights, t_mid[..., None])
    normal = None
    if normals is not None:
        normal = nerfacc.accumulate_along_rays(weights, normals.view(n_rays, samples_per_ray, 3))
    return rgb, opacity, depth, normal, weights
