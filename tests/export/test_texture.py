"""Texture bake: UV atlas, texel points, seam fill, and the baked colour against the field's."""

import math

import numpy as np
import pytest
import torch

from t3d.export.bake import surface_colors
from t3d.export.build import textured_asset
from t3d.export.mesh_render import sample_texture
from t3d.export.surface import extract_surface, sample_density_grid
from t3d.export.texture import fill_empty, texel_points, unwrap
from tests.helpers.export import PEAK, AnalyticField, direction_color, sphere_density

SIZE = 256


@pytest.fixture(scope="module")
def sphere_surface():
    return extract_surface(sample_density_grid(sphere_density, 40), PEAK / 2, 1.0, max_faces=3000)


@pytest.fixture(scope="module")
def baked(sphere_surface):
    field = AnalyticField()
    return textured_asset(sphere_surface, lambda points, normals: surface_colors(field, points), SIZE)


def max_world_per_texel(asset) -> float:
    """Largest stretch of the texel -> surface map over all triangles (world units per texel)."""
    tri_uv = asset.uv[asset.faces].astype(np.float64) * SIZE  # (F, 3, 2) in texels
    tri_xyz = asset.vertices[asset.faces].astype(np.float64)
    e_uv = np.stack([tri_uv[:, 1] - tri_uv[:, 0], tri_uv[:, 2] - tri_uv[:, 0]], axis=-1)  # (F, 2, 2)
    e_xyz = np.stack([tri_xyz[:, 1] - tri_xyz[:, 0], tri_xyz[:, 2] - tri_xyz[:, 0]], axis=-1)  # (F, 3, 2)
    jac = e_xyz @ np.linalg.inv(e_uv)
    return float(np.linalg.norm(jac, ord=2, axis=(1, 2)).max())


def test_baked_texture_matches_the_field_colour_at_random_surface_points(baked):
    rng = np.random.default_rng(0)
    areas = np.linalg.norm(np.cross(*(baked.vertices[baked.faces[:, k]] - baked.vertices[baked.faces[:, 0]]
                                      for k in (1, 2))), axis=1)
    faces = rng.choice(len(baked.faces), 3000, p=areas / areas.sum())
    bary = rng.dirichlet(np.ones(3), 3000)
    corners = baked.faces[faces]
    points = (baked.vertices[corners] * bary[..., None]).sum(axis=1)
    uv = (baked.uv[corners] * bary[..., None]).sum(axis=1)
    looked_up = sample_texture(baked.texture, torch.from_numpy(uv)).numpy()
    truth = direction_color(torch.from_numpy(points).float()).numpy()
    error = np.abs(looked_up - truth).max()
    # Error budget. The colour 0.5 + 0.4 p / |p| changes by at most L = 0.4 / min|p| per world
    # unit. A bilinear lookup blends 4 texels within one texel of the point in u and v, each
    # holding the exact colour of its own surface point; a texel just outside a chart holds the
    # colour of a point clamped onto the nearest triangle, at most 2 texels away. So the blend is
    # off by at most L * 2 * sqrt(2) * s (s = the atlas' largest world length per texel), plus
    # 0.5 / 255 from storing uint8 (the bilinear weights sum to 1, so rounding does not grow).
    lipschitz = 0.4 / np.linalg.norm(points, axis=1).min()
    bound = lipschitz * 2 * math.sqrt(2) * max_world_per_texel(baked) + 0.5 / 255
    # Here s ~ 0.027 and L ~ 0.83, so the bound is ~0.063 (the measured error is ~0.014); a
    # wrong texel mapping (flipped v, swapped charts) is off by up to 0.8.
    assert bound < 0.1
    assert error <= bound, (error, bound)


def test_every_chart_texel_gets_a_point_on_its_triangle(baked, sphere_surface):
    atlas = unwrap(sphere_surface.vertices, sphere_surface.faces, SIZE)
    texels = texel_points(atlas, SIZE)
    inside = texels.inside
    # Inside texels: barycentrics in [0, 1] reproduce the texel centre in uv.
    tri = atlas.uv[atlas.faces[texels.face[inside]]] * [SIZE, -SIZE] + [0, SIZE]
    centre = (tri * texels.bary[inside][..., None]).sum(axis=1)
    expected = np.stack([texels.cols[inside] + 0.5, texels.rows[inside] + 0.5], axis=-1)
    # float32 uv (2^-24 relative) scaled by 256: error well below 1e-3 texel.
    assert np.abs(centre - expected).max() < 1e-3
    # Three fp32 barycentrics summing to 1: a few roundings.
    assert (texels.bary >= 0).all() and np.allclose(texels.bary.sum(axis=1), 1, atol=1e-5)
    # Each texel appears once.
    flat = texels.rows * SIZE + texels.cols
    assert len(np.unique(flat)) == len(flat)


def test_fill_gives_empty_texels_nearby_colours_never_the_background():
    image = np.zeros((16, 16, 3))
    known = np.zeros((16, 16), bool)
    image[2:6, 2:6] = [1.0, 0.0, 0.0]
    image[10:14, 10:14] = [0.0, 0.0, 1.0]
    known[2:6, 2:6] = known[10:14, 10:14] = True
    filled = fill_empty(image, known)
    assert np.array_equal(filled[known], image[known])
    # Every texel is a blend of the two charts' colours (no black background left anywhere).
    # Blends of (1, 0, 0) and (0, 0, 1) with weights summing to 1 (fp64: ~1e-16).
    assert np.allclose(filled.sum(axis=-1), 1.0) and (filled[..., 1] == 0).all()
    assert filled[0, 0, 0] == 1.0 and filled[15, 15, 2] == 1.0  # nearest chart wins far out
    assert filled[6, 6, 0] > 0.5 and filled[9, 9, 2] > 0.5  # just outside a chart: its colour


def test_unwrap_refuses_meshes_too_large_for_xatlas():
    from t3d.errors import T3dError
    from t3d.export.texture import MAX_UNWRAP_FACES

    faces = np.zeros((MAX_UNWRAP_FACES + 1, 3), np.int64)
    with pytest.raises(T3dError, match="decimate"):
        unwrap(np.zeros((3, 3), np.float32), faces, 256)
