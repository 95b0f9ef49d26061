"""Marching cubes, parts cleanup, closure at the bound, decimation and the empty-field error."""

import math

import numpy as np
import pytest
import torch
import trimesh

from t3d.errors import T3dError
from t3d.export.surface import extract_surface, sample_density_grid, smooth_volume
from tests.helpers.export import PEAK, sphere_density

RES = 48
VOXEL = 2.0 / (RES - 1)
LEVEL = PEAK / 2  # sits exactly at the sphere's radius 0.5


def with_floater(p):
    """The sphere plus a small ball (radius 0.12) near the (+1, +1, +1) corner."""
    return sphere_density(p) + sphere_density(p, centre=(0.75, 0.75, 0.75), radius=0.12)


def as_trimesh(surface) -> trimesh.Trimesh:
    return trimesh.Trimesh(surface.vertices, surface.faces, process=False)


@pytest.fixture(scope="module")
def sphere():
    return extract_surface(sample_density_grid(sphere_density, RES), LEVEL, 1.0)


def test_sphere_is_closed_round_the_right_size_with_outward_normals(sphere):
    mesh = as_trimesh(sphere)
    assert mesh.is_watertight and mesh.is_winding_consistent
    radius = np.linalg.norm(sphere.vertices, axis=1)
    # Marching cubes interpolates linearly between grid points: off the true radius by << a voxel.
    assert np.abs(radius - 0.5).max() < 0.5 * VOXEL
    assert mesh.volume == pytest.approx(4 / 3 * math.pi * 0.5**3, rel=0.03)
    # Smooth vertex normals point away from the centre, within a few degrees.
    cos = (sphere.normals * sphere.vertices).sum(axis=1) / radius
    assert cos.min() > 0.98
    # Normalised fp32 vectors: unit length up to a few roundings (6e-8 each).
    assert np.allclose(np.linalg.norm(sphere.normals, axis=1), 1.0, atol=1e-5)


def test_parts_below_the_share_are_dropped_and_the_rest_kept():
    volume = sample_density_grid(with_floater, RES)
    everything = extract_surface(volume, LEVEL, 1.0, min_share=0.0)
    assert len(everything.parts_found) == 2 and everything.parts_kept == everything.parts_found
    floater_share = everything.parts_found[1] / sum(everything.parts_found)
    assert 0.01 < floater_share < 0.2  # the floater is really there, and small

    cleaned = extract_surface(volume, LEVEL, 1.0, min_share=floater_share * 1.5)
    assert cleaned.parts_kept == everything.parts_found[:1]
    assert np.linalg.norm(cleaned.vertices, axis=1).max() < 0.5 + VOXEL
    kept = extract_surface(volume, LEVEL, 1.0, min_share=floater_share * 0.5)
    assert kept.parts_kept == everything.parts_found


def test_keep_largest_drops_every_other_part_whatever_its_size():
    two_balls = lambda p: (sphere_density(p, centre=(-0.45, 0, 0), radius=0.35)  # noqa: E731
                           + sphere_density(p, centre=(0.5, 0, 0), radius=0.3))
    volume = sample_density_grid(two_balls, RES)
    both = extract_surface(volume, LEVEL, 1.0, min_share=0.02)
    assert len(both.parts_kept) == 2
    largest = extract_surface(volume, LEVEL, 1.0, min_share=0.02, keep_largest=True)
    assert largest.parts_kept == both.parts_found[:1]
    assert largest.vertices[:, 0].max() < -0.1 + VOXEL  # only the bigger ball, left of x = -0.1


def test_surface_reaching_the_bound_is_capped_flat_on_the_bound():
    # Dense below z = 0.3 everywhere: the renderer shows a slab cut by the box on five sides.
    slab = lambda p: PEAK * torch.sigmoid((0.3 - p[:, 2]) * 40.0)  # noqa: E731
    surface = extract_surface(sample_density_grid(slab, 24), LEVEL, 1.0)
    mesh = as_trimesh(surface)
    assert mesh.is_watertight and mesh.volume > 0
    # Vertices are moved onto the bound (+-1 up to an fp32 rounding); the volume's error is the
    # interpolated cap at z = 0.3 (within a fraction of a voxel, 2 / 23).
    assert np.allclose(mesh.bounds[0], -1.0) and np.allclose(mesh.bounds[1][:2], 1.0)
    assert mesh.volume == pytest.approx(4 * 1.3, rel=0.02)
    bottom = np.abs(surface.vertices[:, 2] + 1.0) < 1e-6  # on the bound, up to an fp32 rounding
    on_cap = bottom[surface.faces].all(axis=1)
    assert on_cap.sum() > 10
    # Flat, facing out of the box: cross products of in-plane edges, exact up to a rounding or two.
    assert np.allclose(mesh.face_normals[on_cap], [0, 0, -1], atol=1e-6)
    assert (mesh.area_faces > 0).all()  # no face collapsed by the move onto the bound survives


def test_decimation_gives_at_most_the_requested_faces_and_keeps_the_shape(sphere):
    small = extract_surface(sample_density_grid(sphere_density, RES), LEVEL, 1.0, max_faces=800)
    assert 0 < len(small.faces) <= 800 < len(sphere.faces)
    mesh = as_trimesh(small)
    assert mesh.is_watertight
    assert mesh.volume == pytest.approx(4 / 3 * math.pi * 0.5**3, rel=0.05)  # 800 faces: coarser facets


@pytest.mark.parametrize("field", [lambda p: torch.zeros(len(p)), lambda p: torch.full((len(p),), 100.0)],
                         ids=["empty", "full"])
def test_a_level_with_no_surface_is_one_user_error(field):
    with pytest.raises(T3dError, match="no surface at density level 25") as err:
        extract_surface(sample_density_grid(field, 16), LEVEL, 1.0)
    assert "\n" not in str(err.value)


def test_smoothing_removes_voxel_noise_from_the_surface():
    # Per-voxel noise of up to 40% of the peak on a sphere: a bumpy, pitted level set.
    rng = torch.Generator().manual_seed(0)
    noise = torch.rand(32, 32, 32, generator=rng).numpy() * 0.4 * PEAK
    volume = 0.7 * sample_density_grid(sphere_density, 32) + noise
    rough = as_trimesh(extract_surface(volume, LEVEL, 1.0, min_share=0.0))
    smooth = as_trimesh(extract_surface(smooth_volume(volume, 1.0), LEVEL, 1.0, min_share=0.0))
    # The mean noise (0.2 peak) moves the level set out to 0.7 * density = 25 - 10, i.e. radius
    # 0.5 + logit(15 / 35) / 40 = 0.507 and area 4 pi 0.507^2 = 3.23. Smoothed: within 5% of it,
    # as a blur of sigma = 1 voxel = 2 / 31 moves a ball's level set by about sigma^2 / r = 0.008
    # (1.7% of the radius, 3.4% of the area). Unsmoothed, pits and bumps add more than 10%.
    assert smooth.area == pytest.approx(4 * math.pi * 0.507**2, rel=0.05)
    assert rough.area > 1.1 * smooth.area
    assert len(smooth.split(only_watertight=False)) == 1
    assert smooth_volume(volume, 0.0) is volume
