"""Bake the field's *rendered* colour onto surface points by projecting renders from many views.

Why renders and not the field's colour at the surface: on the demo fields the renderer's
weights spread far past the level set (demo head, a ray onto the face: 10% of the weight by the
iso-surface, 50% 0.1-0.2 further in, 90% 0.5 in), so a pixel's colour is an average over a
thick layer, lighter and less saturated than the field's colour at the surface point (e.g.
rendered (0.47, 0.32, 0.27) where the iso-surface point is (0.28, 0.06, 0.03)). That is why
meshes coloured at the surface looked darker and more saturated than the video. The texture
must hold what the render shows, so it is taken from renders:

  for each bake view the field is rendered (unlit, over the run's background) and the mesh is
  rasterised for a depth buffer; a surface point visible from the view (in the frame, at most a
  tolerance behind the mesh's own depth, facing the camera) reads the view's colour at its
  pixel (bilinear). Views are blended with weight cos(normal, view)^2 * opacity, so head-on
  views dominate and silhouette pixels, half background, count little. The normals passed in
  are those of the surrounding region (t3d.export.build.region_normals), not of every bump.

The colour kept is the composited one, background included: the mesh is opaque, and a part the
field renders translucent (a thin grey haze over white) should look as it did in the video, not
turn into its own dark un-mixed colour. Mesh check on the demo runs (8 views between the bake
views, 128 px): projected composited renders 18.7 dB (head) / 16.2 dB (mug); the field's colour
at the surface point 16.3 / 12.4 dB; in an earlier variant of this bake, dividing the
background out cost 0.4 / 1.8 dB against compositing.

Points no bake view sees (pits, tunnels) get the colour rendered along their inward normal
instead (t3d.export.bake.normal_ray_colors, composited the same way).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from t3d.export.asset import MeshAsset
from t3d.export.raster import rasterize
from t3d.scene.cameras import Cameras

COS_POWER = 2.0  # mesh check, demo head / mug: power 1: 18.6 / 16.1 dB, 2: 18.6 / 16.2, 4: 18.3 / 16.0
MIN_WEIGHT = 1e-4


@dataclass
class BakeViews:
    cameras: Cameras
    rgb: torch.Tensor  # (V, 3, H, W) the field's renders, composited over the run's background
    opacity: torch.Tensor  # (V, 1, H, W)
    mesh_depth: torch.Tensor  # (V, H, W) view depth of the nearest mesh surface (inf: none)


def bake_cameras(distance: float, fovy: float, azimuths: int = 8) -> Cameras:
    """Three rings (elevations -20, 20, 55 degrees) of `azimuths` views each, plus straight down and up.

    The rings start half a step off the front, so they sit between the views of the mesh check
    (which start at the front): the check then measures the bake on views it was not made from.
    """
    start = 180.0 / azimuths
    az = torch.cat([start + torch.arange(azimuths) * 360.0 / azimuths for _ in range(3)] + [torch.zeros(2)])
    el = torch.cat([torch.full((azimuths,), e) for e in (-20.0, 20.0, 55.0)] + [torch.tensor([89.0, -89.0])])
    az = torch.remainder(az + 180.0, 360.0) - 180.0
    return Cameras(az.float(), el.float(), torch.full_like(az, distance).float(), torch.full_like(az, fovy).float())


@torch.no_grad()
def render_bake_views(scene, asset: MeshAsset, cameras: Cameras, resolution: int,
                      chunk_rays: int = 2**15) -> BakeViews:
    """Field renders and mesh depth buffers from every bake camera."""
    out = scene.render(cameras, resolution, chunk_rays=chunk_rays)
    opacity = out.opacity.float().cpu().clamp(0, 1)
    cams = cameras.to("cpu")
    verts = torch.from_numpy(asset.vertices).float()
    faces = torch.from_numpy(asset.faces)
    depths = []
    for v in range(len(cams)):
        uv, depth = cams[v:v + 1].project(verts[None], resolution, resolution)
        keep = (depth[0][faces] > 1e-4).all(dim=1)
        raster = rasterize(uv[0][faces[keep]], resolution, resolution, depth[0][faces[keep]])
        depths.append(raster.depth)
    return BakeViews(cams, out.rgb.float().cpu().clamp(0, 1), opacity, torch.stack(depths))


def _sample(image: torch.Tensor, uv: torch.Tensor, size: int) -> torch.Tensor:
    """Bilinear lookup of (C, H, W) at pixel coordinates (N, 2) -> (N, C)."""
    grid = (uv / size * 2 - 1).view(1, 1, -1, 2)
    return F.grid_sample(image[None], grid, mode="bilinear", padding_mode="border", align_corners=False)[0, :, 0].t()


def projected_colors(points: np.ndarray, normals: np.ndarray, views: BakeViews, tolerance: float,
                     chunk: int = 2**17) -> tuple[np.ndarray, np.ndarray]:
    """(N, 3) blended colour and (N,) total weight of every point over the bake views."""
    size = views.opacity.shape[-1]
    pts_all = torch.from_numpy(np.ascontiguousarray(points, np.float32))
    nrm_all = F.normalize(torch.from_numpy(np.ascontiguousarray(normals, np.float32)), dim=-1)
    colors, weights = [], []
    for pts, nrm in zip(pts_all.split(chunk), nrm_all.split(chunk)):
        acc, total = torch.zeros(len(pts), 3), torch.zeros(len(pts))
        for v in range(len(views.cameras)):
            cam = views.cameras[v:v + 1]
            uv, depth = cam.project(pts[None], size, size)
            uv, depth = uv[0], depth[0]
            col, row = uv[:, 0].floor().long(), uv[:, 1].floor().long()
            inside = (col >= 0) & (col < size) & (row >= 0) & (row < size) & (depth > 0)
            nearest = views.mesh_depth[v][row.clamp(0, size - 1), col.clamp(0, size - 1)]
            facing = (F.normalize(cam.position - pts, dim=-1) * nrm).sum(dim=-1).clamp_min(0)
            visible = inside & (depth <= nearest + tolerance) & (facing > 0)
            w = facing**COS_POWER * visible * _sample(views.opacity[v], uv, size)[:, 0]
            acc += w[:, None] * _sample(views.rgb[v], uv, size)
            total += w
        colors.append(acc / total.clamp_min(MIN_WEIGHT)[:, None])
        weights.append(total)
    return torch.cat(colors).clamp(0, 1).numpy(), torch.cat(weights).numpy()
