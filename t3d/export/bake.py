"""Colour of surface points from the field itself: at the point, or volume-rendered along its normal.

`surface_colors` is the field's colour at the iso-surface point. `normal_ray_colors` renders a
ray straight onto the point along its inward normal, from `outside` in front of it to `inside`
behind it, and keeps sum(w_i c_i) / sum(w_i) with the renderer's weights w_i = T_i (1 -
exp(-sigma_i delta_i)), composited over `background` like the renderer: the colour the renderer
would show looking at the point head-on. It is what the projection bake
(t3d.export.project_bake) falls back to for points that no bake view sees.
"""

from __future__ import annotations

import numpy as np
import torch

RAY_SAMPLES = 64


@torch.no_grad()
def surface_colors(field, points: np.ndarray, chunk: int = 2**16, device="cpu") -> np.ndarray:
    """(N, 3) float32 colour of the field at the points."""
    pts = torch.from_numpy(np.ascontiguousarray(points, np.float32))
    out = [field.color(part.to(device)).float().cpu() for part in pts.split(chunk)]
    return torch.cat(out).numpy() if out else np.zeros((0, 3), np.float32)


@torch.no_grad()
def normal_ray_colors(field, points: np.ndarray, normals: np.ndarray, outside: float, inside: float,
                      background=(1.0, 1.0, 1.0), samples: int = RAY_SAMPLES, chunk: int = 4096,
                      device="cpu") -> np.ndarray:
    """(N, 3) float32 colour volume-rendered along the inward normal through each point."""
    pts = torch.from_numpy(np.ascontiguousarray(points, np.float32))
    nrm = torch.nn.functional.normalize(torch.from_numpy(np.ascontiguousarray(normals, np.float32)), dim=-1)
    # Sample midpoints of `samples` equal steps from `outside` in front of the point to `inside` behind it.
    step = (outside + inside) / samples
    offsets = outside - step * (torch.arange(samples, dtype=torch.float32) + 0.5)
    bg = torch.as_tensor(background, dtype=torch.float32).view(1, 3)
    out = []
    for p, n in zip(pts.split(chunk), nrm.split(chunk)):
        ray = (p[:, None] + n[:, None] * offsets[None, :, None]).reshape(-1, 3).to(device)
        density, rgb = field(ray)
        density = density.float().cpu().view(len(p), samples).clamp_min(0)
        rgb = rgb.float().cpu().view(len(p), samples, 3)
        alpha = 1.0 - torch.exp(-density * step)
        transmittance = torch.cumprod(torch.cat([torch.ones(len(p), 1), 1.0 - alpha[:, :-1]], dim=1), dim=1)
        weights = transmittance * alpha
        opacity = weights.sum(dim=1, keepdim=True)
        out.append((weights[..., None] * rgb).sum(dim=1) + (1.0 - opacity) * bg)
    return torch.cat(out).numpy() if out else np.zeros((0, 3), np.float32)
