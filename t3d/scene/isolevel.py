"""Choosing the density level of the exported surface from what the renderer actually shows.

A score-distilled field has no natural density scale: one run's surface sits at density 2,
another's at 200, and a fixed marching-cubes threshold returns either a shrunken core or a
foggy hull. So the default level is the one whose voxel silhouettes best match the volume
renderer's own opacity masks (IoU over a few orbit views): the mesh then covers what the
video shows.
"""

from __future__ import annotations

import numpy as np
import torch

from t3d.scene.cameras import Cameras


def grid_points(axis: torch.Tensor) -> torch.Tensor:
    """(N^3, 3) world coordinates of the grid with these coordinates on each axis (x slowest)."""
    return torch.stack(torch.meshgrid(axis, axis, axis, indexing="ij"), dim=-1).view(-1, 3)


def silhouette_iou(points: torch.Tensor, masks: torch.Tensor, cameras: Cameras) -> float:
    """Mean IoU between the pixels `points` project to and each view's boolean mask (V, H, W)."""
    views, height, width = masks.shape
    if points.shape[0] == 0:
        return 0.0
    uv, depth = cameras.project(points[None].expand(views, -1, -1), height, width)
    ious = []
    for v in range(views):
        col, row = uv[v, :, 0].floor().long(), uv[v, :, 1].floor().long()
        ok = (depth[v] > 0) & (col >= 0) & (col < width) & (row >= 0) & (row < height)
        hit = torch.zeros(height, width, dtype=torch.bool)
        hit[row[ok], col[ok]] = True
        union = (hit | masks[v]).sum().item()
        ious.append((hit & masks[v]).sum().item() / union if union else 0.0)
    return float(np.mean(ious))


def silhouette_matched_level(volume: np.ndarray, bound: float, masks: torch.Tensor, cameras: Cameras,
                             candidates: int = 24) -> float:
    """The density level (out of log-spaced candidates) whose silhouettes best match `masks`.

    `volume` is density on a regular grid over [-bound, bound]^3; a coarse copy (<= 64^3) is
    enough to rank levels, which keeps the search to a second or two on a CPU.
    """
    stride = max(1, volume.shape[0] // 64)
    coarse = torch.from_numpy(np.ascontiguousarray(volume[::stride, ::stride, ::stride])).reshape(-1)
    points = grid_points(torch.linspace(-bound, bound, volume.shape[0])[::stride])
    top = float(coarse.max())
    if not np.isfinite(top) or top <= 0:
        return 0.0
    levels = np.geomspace(top * 1e-3, top * 0.95, candidates)
    scores = [silhouette_iou(points[coarse > level], masks.cpu(), cameras.to("cpu")) for level in levels]
    return float(levels[int(np.argmax(scores))])
