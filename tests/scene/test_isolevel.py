"""The automatic mesh level reproduces the silhouette the renderer shows."""

import numpy as np
import torch

from t3d.scene.cameras import orbit_cameras
from t3d.scene.isolevel import grid_points, silhouette_matched_level


def test_level_matches_a_known_sphere():
    # Density falls linearly from 40 at the centre to 0 at radius 0.8; the renderer shows a ball of
    # radius 0.5, i.e. the level 40 * (1 - 0.5 / 0.8) = 15.
    res = 48
    points = grid_points(torch.linspace(-1, 1, res))
    volume = (40 * (1 - points.norm(dim=-1) / 0.8)).clamp_min(0).view(res, res, res).numpy()
    cams = orbit_cameras(3, 15.0, 2.0, 45.0)
    uv, _ = cams.project(torch.zeros(3, 1, 3), 48)
    rows, cols = torch.meshgrid(torch.arange(48), torch.arange(48), indexing="ij")
    # Silhouette of a radius-0.5 ball at distance 2: angular radius asin(0.5 / 2).
    focal = 0.5 * 48 / np.tan(np.radians(22.5))
    radius_px = focal * np.tan(np.arcsin(0.25))
    masks = torch.stack([((rows + 0.5 - uv[i, 0, 1]) ** 2 + (cols + 0.5 - uv[i, 0, 0]) ** 2) < radius_px**2
                         for i in range(3)])
    level = silhouette_matched_level(volume, 1.0, masks, cams, candidates=40)
    assert 11.0 < level < 19.0, level
