"""UV atlas (xatlas) and the texels' 3D surface points, plus the fill that keeps seams clean.

Texel (row i, column j) of a size x size texture has its centre at uv = ((j + 0.5) / size,
1 - (i + 0.5) / size): v points up the image (OBJ convention; the glTF writer flips it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import xatlas

from t3d.errors import T3dError
from t3d.export.raster import rasterize

# xatlas' chart search grows faster than linearly (measured here: 5k faces 1 s, 20k 6.5 s, 50k
# 33 s on one core) and the 0.0.11 wheel crashes the process on some meshes near 80k faces.
MAX_UNWRAP_FACES = 60_000
GROW_TEXELS = 2  # texels around every chart that still get a true surface colour (bilinear reach)


@dataclass
class Atlas:
    vertex_source: np.ndarray  # (V',) index of the input vertex each atlas vertex copies
    faces: np.ndarray  # (F, 3) int64 into the atlas vertices (same triangles, same order)
    uv: np.ndarray  # (V', 2) float32 in [0, 1], v up


@dataclass
class TexelPoints:
    rows: np.ndarray  # (N,) texel rows
    cols: np.ndarray  # (N,) texel columns
    face: np.ndarray  # (N,) triangle each texel samples
    bary: np.ndarray  # (N, 3) float32 barycentrics in that triangle
    inside: np.ndarray  # (N,) bool: the texel centre lies in the triangle (False: grown border texel)


def unwrap(vertices: np.ndarray, faces: np.ndarray, texture_size: int, padding: int = 4) -> Atlas:
    """Cut the mesh into charts and pack them into the unit square (xatlas)."""
    if len(faces) > MAX_UNWRAP_FACES:
        raise T3dError(f"texture baking unwraps at most {MAX_UNWRAP_FACES} faces, the mesh has {len(faces)}; "
                       f"decimate it (faces option) or export vertex colours (no texture)")
    atlas = xatlas.Atlas()
    atlas.add_mesh(np.ascontiguousarray(vertices, np.float32), np.ascontiguousarray(faces, np.uint32))
    pack = xatlas.PackOptions()
    pack.resolution = texture_size
    pack.padding = padding  # empty texels between charts, so bilinear lookups stay in their chart
    pack.bilinear = True
    atlas.generate(xatlas.ChartOptions(), pack)
    source, new_faces, uv = atlas[0]
    return Atlas(source.astype(np.int64), new_faces.astype(np.int64), uv.astype(np.float32))


def uv_to_pixels(uv: np.ndarray, size: int) -> torch.Tensor:
    """(..., 2) uv (v up) -> pixel coordinates (x = column, y = row) of a size x size image."""
    uv = torch.as_tensor(uv, dtype=torch.float64)
    return torch.stack([uv[..., 0] * size, (1.0 - uv[..., 1]) * size], dim=-1)


def _barycentric(tri: torch.Tensor, point: torch.Tensor) -> torch.Tensor:
    """Barycentrics of 2D points (N, 2) in triangles (N, 3, 2), clamped onto the triangle."""
    a, b, c = tri[:, 0], tri[:, 1], tri[:, 2]
    v0, v1, v2 = b - a, c - a, point - a
    den = v0[:, 0] * v1[:, 1] - v1[:, 0] * v0[:, 1]
    den = torch.where(den.abs() < 1e-12, torch.full_like(den, 1e-12), den)
    wb = (v2[:, 0] * v1[:, 1] - v1[:, 0] * v2[:, 1]) / den
    wc = (v0[:, 0] * v2[:, 1] - v2[:, 0] * v0[:, 1]) / den
    weights = torch.stack([1 - wb - wc, wb, wc], dim=-1).clamp_min(0)
    return weights / weights.sum(dim=1, keepdim=True).clamp_min(1e-12)


def _grow(face: torch.Tensor) -> torch.Tensor:
    """Give every empty texel next to a covered one (4-neighbours) that neighbour's triangle."""
    out = face.clone()
    for shift, dim in ((1, 0), (-1, 0), (1, 1), (-1, 1)):
        moved = torch.roll(face, shift, dims=dim)
        edge = torch.zeros_like(face, dtype=torch.bool)  # roll wraps around: ignore the wrapped line
        index = [slice(None), slice(None)]
        index[dim] = slice(0, 1) if shift == 1 else slice(-1, None)
        edge[tuple(index)] = True
        take = (out < 0) & (moved >= 0) & ~edge
        out[take] = moved[take]
    return out


def texel_points(atlas: Atlas, size: int, grow: int = GROW_TEXELS) -> TexelPoints:
    """Which triangle, at which barycentrics, every texel of the charts (and `grow` around) shows."""
    tri = uv_to_pixels(atlas.uv[atlas.faces], size)  # (F, 3, 2)
    raster = rasterize(tri, size, size)
    inside = raster.face >= 0
    face = raster.face
    for _ in range(grow):
        face = _grow(face)
    rows, cols = torch.nonzero(face >= 0, as_tuple=True)
    chosen = face[rows, cols]
    bary = raster.bary[rows, cols].double()
    border = ~inside[rows, cols]
    centres = torch.stack([cols[border] + 0.5, rows[border] + 0.5], dim=-1).double()
    bary[border] = _barycentric(tri[chosen[border]], centres)
    return TexelPoints(rows.numpy(), cols.numpy(), chosen.numpy(), bary.float().numpy(), inside[rows, cols].numpy())


def fill_empty(image: np.ndarray, known: np.ndarray) -> np.ndarray:
    """Fill unknown texels from known ones by pull-push (coverage-weighted mip pyramid).

    Every empty texel gets the average of the nearest known texels at the finest pyramid level
    that has any, so charts bleed into their surroundings, never the background into the
    charts, at every mip level a viewer samples.
    """
    weight = known.astype(np.float64)
    if weight.all() or not weight.any():
        return image
    h, w = weight.shape
    padded_c = np.zeros(((h + 1) // 2 * 2, (w + 1) // 2 * 2, image.shape[2]))
    padded_w = np.zeros(padded_c.shape[:2])
    padded_c[:h, :w] = image * weight[..., None]
    padded_w[:h, :w] = weight
    hh, ww = padded_w.shape[0] // 2, padded_w.shape[1] // 2
    sum_c = padded_c.reshape(hh, 2, ww, 2, -1).sum(axis=(1, 3))
    sum_w = padded_w.reshape(hh, 2, ww, 2).sum(axis=(1, 3))
    coarse = fill_empty(sum_c / np.maximum(sum_w, 1e-12)[..., None], sum_w > 0)
    up = np.repeat(np.repeat(coarse, 2, axis=0), 2, axis=1)[:h, :w]
    return np.where(known[..., None], image, up)
