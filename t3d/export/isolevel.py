"""Which density level the exported surface sits at: the one whose silhouettes match the render.

A score-distilled field has no natural density scale (one run's surface sits at density 2,
another's at 200), so a fixed marching-cubes threshold returns either a shrunken core or a foggy
hull. The renderer, though, defines what the object looks like: a pixel shows the object when
its opacity 1 - exp(-integral of density) exceeds 0.5. The level set {density >= L} is seen at a
pixel exactly when the density somewhere along that pixel's ray reaches L, i.e. when the ray's
maximum density is >= L. So, from the views of the evaluation orbit:

  1. sample the density grid (the one marching cubes will see) along every pixel ray, keep the
     maximum per pixel (trilinear lookups every voxel);
  2. the silhouette of level L is {pixels with max >= L}; the chosen level is the L that
     maximises the silhouette IoU with the renderer's opacity > 0.5 masks, over all views.

Step 2 is exact over every possible level: sorting the pixels by their ray maximum turns
"IoU at each level" into cumulative sums, and the level is placed halfway between the two ray
maxima that bracket the best IoU. The IoU reached is reported with the level, so a field whose
render no level can reproduce (a translucent haze) shows up as a low number.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from t3d.errors import T3dError
from t3d.scene.cameras import Cameras
from t3d.scene.render import ray_box_interval


@dataclass
class LevelChoice:
    level: float
    iou: float  # mean-over-pixels IoU of the level's silhouettes with the render's masks


def ray_max_density(volume: np.ndarray, bound: float, cameras: Cameras, resolution: int,
                    chunk_rays: int = 4096) -> torch.Tensor:
    """(V, H, W) largest grid density along each pixel ray inside the box (0 for rays that miss it)."""
    grid = torch.from_numpy(np.ascontiguousarray(volume, dtype=np.float32))[None, None]
    origins, dirs = cameras.to("cpu").rays(resolution)
    origins, dirs = origins.reshape(-1, 3), dirs.reshape(-1, 3)
    near, far = ray_box_interval(origins, dirs, bound)
    voxel = 2.0 * bound / (volume.shape[0] - 1)
    samples = int(math.ceil(2.0 * math.sqrt(3.0) * bound / voxel)) + 1  # the box diagonal, 1 per voxel
    steps = torch.linspace(0.0, 1.0, samples)
    out = []
    for o, d, n, f in zip(origins.split(chunk_rays), dirs.split(chunk_rays), near.split(chunk_rays),
                          far.split(chunk_rays)):
        t = n[:, None] + (f - n)[:, None] * steps  # (R, S), every sample inside the box
        points = o[:, None] + d[:, None] * t[..., None]
        # The volume is indexed [x, y, z] (x slowest); grid_sample wants (z, y, x) in [-1, 1].
        coords = (points / bound).flip(-1).view(1, -1, 1, 1, 3)
        dens = F.grid_sample(grid, coords, mode="bilinear", align_corners=True).view(len(o), samples)
        out.append(torch.where(f > n, dens.amax(dim=1), torch.zeros_like(n)))
    return torch.cat(out).view(len(cameras), resolution, resolution)


def best_level(ray_max: torch.Tensor, masks: torch.Tensor) -> LevelChoice:
    """The level whose silhouettes {ray_max >= level} best match `masks` (same shape), exactly."""
    values = ray_max.reshape(-1).double()
    wanted = masks.reshape(-1).bool()
    if not wanted.any():
        raise T3dError("the field is empty: its render shows no opaque pixel (opacity > 0.5) from the "
                       "evaluation orbit, so there is no surface to export")
    order = torch.argsort(values, descending=True)
    ranked, hits = values[order], wanted[order].double()
    # Silhouette = the k + 1 highest pixels: intersection and union by running sums.
    inter = torch.cumsum(hits, 0)
    union = wanted.sum() + torch.arange(1, len(ranked) + 1, dtype=torch.float64) - inter
    iou = inter / union
    # Only cut where the value changes (pixels with equal maxima enter the silhouette together).
    cut = torch.ones_like(ranked, dtype=torch.bool)
    cut[:-1] = ranked[:-1] > ranked[1:]
    iou = torch.where(cut & (ranked > 0), iou, torch.full_like(iou, -1.0))
    k = int(torch.argmax(iou))
    below = float(ranked[k + 1]) if k + 1 < len(ranked) else 0.0
    return LevelChoice(level=0.5 * (float(ranked[k]) + below), iou=float(iou[k]))


def silhouette_matched_level(volume: np.ndarray, bound: float, masks: torch.Tensor,
                             cameras: Cameras) -> LevelChoice:
    """The density level whose silhouettes from `cameras` best match the boolean `masks` (V, H, W)."""
    ray_max = ray_max_density(volume, bound, cameras, masks.shape[-1])
    return best_level(ray_max, masks.cpu())
