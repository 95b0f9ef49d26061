"""From a clean surface to a coloured asset: texture bake (UV atlas) or per-vertex colours."""

from __future__ import annotations

from typing import Callable

import numpy as np
import trimesh
from scipy import sparse

from t3d.export.asset import MeshAsset
from t3d.export.bake import normal_ray_colors, surface_colors
from t3d.export.config import MeshExportConfig
from t3d.export.project_bake import MIN_WEIGHT, bake_cameras, projected_colors, render_bake_views
from t3d.export.surface import Surface
from t3d.export.texture import fill_empty, texel_points, unwrap

Baker = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (points, region normals) -> (N, 3) colours in [0, 1]

# Fallback for points no bake view sees: render along the inward normal from 0.05 x bound in
# front of the point to a full bound behind it. The demo fields' renders gather their colour
# over ~0.5 of the bound past the iso-surface (see t3d.export.project_bake), so the ray must
# reach that deep to give the same tone.
NORMAL_RAY_OUTSIDE = 0.05
NORMAL_RAY_INSIDE = 1.0
# A point counts as visible from a bake view if it is at most this many grid voxels behind
# the mesh's own depth buffer (pixel footprint on slanted faces plus rasterisation rounding).
VISIBILITY_VOXELS = 2.0
# Bake views are weighted by how they face the surrounding *region* (normals of a copy smoothed
# by this many Laplacian steps), not each pit and bump of a noisy level set: a pit in the
# demo head's face then takes its colour from the front views, like its surroundings and like
# the render (mesh check, head: 18.6 dB with the mesh's own normals, 18.7 dB smoothed, and the
# eyes reappear where the raw normals pulled in bright colour from the side views).
REGION_SMOOTHING_STEPS = 100


def to_uint8(colors: np.ndarray) -> np.ndarray:
    return np.round(np.clip(np.nan_to_num(colors), 0.0, 1.0) * 255.0).astype(np.uint8)


def make_baker(scene, surface: Surface, cfg: MeshExportConfig) -> Baker:
    """The colour source `cfg.bake_source` as a function of surface points and their normals."""
    field, device = scene.field, scene.device
    if cfg.bake_source == "surface":
        return lambda points, normals: surface_colors(field, points, device=device)
    bound = float(scene.cfg.field.bound)
    geometry = MeshAsset(surface.vertices, surface.faces, surface.normals)
    cameras = bake_cameras(scene.distance, scene.fovy, cfg.bake_views)
    views = render_bake_views(scene, geometry, cameras, cfg.bake_resolution)
    tolerance = VISIBILITY_VOXELS * 2.0 * bound / (cfg.resolution - 1)
    background = tuple(getattr(scene.cfg.render, "background", (1.0, 1.0, 1.0)))

    def bake(points: np.ndarray, normals: np.ndarray) -> np.ndarray:
        colors, weight = projected_colors(points, normals, views, tolerance)
        unseen = weight < MIN_WEIGHT
        if unseen.any():
            colors[unseen] = normal_ray_colors(field, points[unseen], normals[unseen], NORMAL_RAY_OUTSIDE * bound,
                                               NORMAL_RAY_INSIDE * bound, background, device=device)
        return colors

    return bake


def region_normals(surface: Surface, steps: int = REGION_SMOOTHING_STEPS) -> np.ndarray:
    """(V, 3) vertex normals of a Laplacian-smoothed copy of the surface (same vertex order).

    Each step moves every vertex halfway to the mean of its edge neighbours.
    """
    mesh = trimesh.Trimesh(surface.vertices, surface.faces, process=False)
    edges = mesh.edges_unique
    n = len(surface.vertices)
    adjacency = sparse.coo_matrix((np.ones(2 * len(edges)), (edges.ravel(), edges[:, ::-1].ravel())), shape=(n, n))
    degree = np.asarray(adjacency.sum(axis=1)).ravel()
    mean_of_neighbours = sparse.diags(1.0 / np.maximum(degree, 1)) @ adjacency.tocsr()
    vertices = surface.vertices.astype(np.float64)
    for _ in range(steps):
        vertices = 0.5 * vertices + 0.5 * (mean_of_neighbours @ vertices)
    smoothed = trimesh.Trimesh(vertices, surface.faces, process=False)
    return np.asarray(smoothed.vertex_normals, np.float32)


def _interpolate(values: np.ndarray, faces: np.ndarray, face: np.ndarray, bary: np.ndarray) -> np.ndarray:
    return (values[faces[face]] * bary[..., None]).sum(axis=1)


def textured_asset(surface: Surface, bake: Baker, texture_size: int) -> MeshAsset:
    """UV-unwrap the surface and bake colours into a texture_size^2 texture (empty texels filled)."""
    atlas = unwrap(surface.vertices, surface.faces, texture_size)
    vertices = surface.vertices[atlas.vertex_source]
    normals = surface.normals[atlas.vertex_source]
    texels = texel_points(atlas, texture_size)
    points = _interpolate(vertices, atlas.faces, texels.face, texels.bary)
    point_normals = _interpolate(region_normals(surface)[atlas.vertex_source], atlas.faces, texels.face, texels.bary)
    texture = np.zeros((texture_size, texture_size, 3), np.float64)
    known = np.zeros((texture_size, texture_size), bool)
    texture[texels.rows, texels.cols] = bake(points, point_normals)
    known[texels.rows, texels.cols] = True
    return MeshAsset(vertices, atlas.faces, normals, uv=atlas.uv, texture=to_uint8(fill_empty(texture, known)))


def vertex_color_asset(surface: Surface, bake: Baker) -> MeshAsset:
    colors = bake(surface.vertices, region_normals(surface))
    return MeshAsset(surface.vertices, surface.faces, surface.normals, vertex_colors=to_uint8(colors))
