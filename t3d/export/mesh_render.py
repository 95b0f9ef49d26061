"""Render an exported mesh through t3d's cameras on the CPU (unlit: the colour is the albedo).

The field's renders are unlit albedo over a white background, so the mesh is drawn the same way
for the mesh check. Edges are anti-aliased by supersampling (a box filter over s x s samples),
which gives the silhouette the same soft one-pixel edge as the volume renderer's opacity.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from t3d.export.asset import MeshAsset
from t3d.export.raster import rasterize
from t3d.scene.cameras import Cameras


@dataclass
class MeshImages:
    rgb: torch.Tensor  # (B, H, W, 3) float in [0, 1], composited over the background
    coverage: torch.Tensor  # (B, H, W) share of each pixel's samples that hit the mesh
    normal: torch.Tensor  # (B, H, W, 3) world-space unit normals where covered (0 elsewhere)


def sample_texture(texture: np.ndarray, uv: torch.Tensor) -> torch.Tensor:
    """Bilinear lookup of an (H, W, 3) uint8 texture at (N, 2) uv (v up) -> (N, 3) float in [0, 1]."""
    image = torch.from_numpy(np.array(texture, np.uint8)).permute(2, 0, 1)[None].float() / 255.0
    grid = torch.stack([uv[:, 0] * 2 - 1, (1 - uv[:, 1]) * 2 - 1], dim=-1).view(1, 1, -1, 2).float()
    # Texel centres at (i + 0.5) / size (align_corners=False); beyond the edge, the edge texel.
    out = F.grid_sample(image, grid, mode="bilinear", padding_mode="border", align_corners=False)
    return out[0, :, 0].t()


def surface_colors(asset: MeshAsset, face: torch.Tensor, bary: torch.Tensor) -> torch.Tensor:
    """(N, 3) colours in [0, 1] at points given by triangle index and barycentrics."""
    corners = torch.from_numpy(asset.faces)[face]  # (N, 3) vertex indices
    if asset.textured:
        uv = (torch.from_numpy(asset.uv)[corners] * bary[..., None]).sum(dim=1)
        return sample_texture(asset.texture, uv)
    if asset.vertex_colors is None:
        return torch.full((len(face), 3), 0.8)  # no colour at all: a light grey clay
    colors = torch.from_numpy(asset.vertex_colors).float()[corners] / 255.0
    return (colors * bary[..., None]).sum(dim=1)


def _render_view(asset: MeshAsset, cameras: Cameras, size: int, background: torch.Tensor):
    verts = torch.from_numpy(asset.vertices).float()
    uv, depth = cameras.project(verts[None], size, size)
    faces = torch.from_numpy(asset.faces)
    # Triangles reaching behind the camera plane are dropped (cameras orbit outside the object).
    visible = (depth[0][faces] > 1e-4).all(dim=1)
    faces = faces[visible]
    raster = rasterize(uv[0][faces], size, size, depth[0][faces])
    hit = raster.face >= 0
    face_index = torch.nonzero(visible).squeeze(1)[raster.face[hit]]
    rgb = background.expand(size, size, 3).clone()
    rgb[hit] = surface_colors(asset, face_index, raster.bary[hit])
    normal = torch.zeros(size, size, 3)
    corners = torch.from_numpy(asset.faces)[face_index]
    smooth = (torch.from_numpy(asset.normals).float()[corners] * raster.bary[hit][..., None]).sum(dim=1)
    normal[hit] = F.normalize(smooth, dim=-1)
    return rgb, hit.float(), normal


def render_mesh(asset: MeshAsset, cameras: Cameras, resolution: int, supersample: int = 2,
                background=(1.0, 1.0, 1.0)) -> MeshImages:
    """Draw `asset` (world frame) from each camera at resolution x resolution."""
    cameras = cameras.to("cpu")
    bg = torch.tensor(background, dtype=torch.float32)
    size = resolution * supersample
    rgbs, covers, normals = [], [], []
    for v in range(len(cameras)):
        rgb, cover, normal = _render_view(asset, cameras[v:v + 1], size, bg)
        rgbs.append(rgb)
        covers.append(cover)
        normals.append(normal)

    def pool(x: torch.Tensor) -> torch.Tensor:  # (B, S, S, C) -> (B, R, R, C), box filter
        return F.avg_pool2d(x.permute(0, 3, 1, 2), supersample).permute(0, 2, 3, 1)

    normal = pool(torch.stack(normals))
    return MeshImages(pool(torch.stack(rgbs)), pool(torch.stack(covers)[..., None])[..., 0],
                      F.normalize(normal, dim=-1) * (normal.norm(dim=-1, keepdim=True) > 0))
