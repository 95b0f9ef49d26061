"""Mesh extraction (marching cubes on a density field) and export to glb/obj/ply."""

import math

import numpy as np
import pytest
import torch
import trimesh
from scipy.spatial import cKDTree

from t3d.errors import T3dError
from t3d.scene.mesh import MESH_FORMATS, export_mesh, extract_mesh
from tests.helpers.tolerances import sum_rounding

RES = 48
VOXEL = 2.0 / (RES - 1)
THRESHOLD = 25.0  # 50 * sigmoid(0) = 25, so the surface sits exactly at radius 0.5


def sphere_density(p):
    return 50.0 * torch.sigmoid((0.5 - p.norm(dim=-1)) * 40.0)


def blob_density(p):
    """The sphere plus a tiny floater near the (+1, +1, +1) corner."""
    blob = 50.0 * torch.sigmoid((0.07 - (p - torch.tensor([0.8, 0.8, 0.8])).norm(dim=-1)) * 40.0)
    return sphere_density(p) + blob


def front_back_color(p):
    """Red where x > 0 (the front), blue behind; green added on the top half (z > 0)."""
    c = torch.zeros(len(p), 3)
    c[:, 0] = (p[:, 0] > 0).float()
    c[:, 2] = (p[:, 0] <= 0).float()
    c[:, 1] = (p[:, 2] > 0).float()
    return c


@pytest.fixture(scope="module")
def sphere():
    return extract_mesh(sphere_density, front_back_color, resolution=RES, threshold=THRESHOLD)


def test_sphere_is_closed_round_and_the_right_size(sphere):
    assert sphere.is_watertight
    radius = np.linalg.norm(sphere.vertices, axis=1)
    # Discretisation, not rounding: marching cubes puts vertices within a voxel of the surface, and
    # its flat facets cut a little inside the sphere (a few % of the volume at 48^3).
    assert np.abs(radius - 0.5).mean() < VOXEL
    assert sphere.volume == pytest.approx(4 / 3 * math.pi * 0.5**3, rel=0.03)


def test_normals_point_outward(sphere):
    dots = (sphere.face_normals * sphere.triangles_center).sum(axis=1)
    assert dots.mean() > 0
    assert (dots > 0).mean() > 0.99


def test_vertex_colours_come_from_color_fn(sphere):
    colors = sphere.visual.vertex_colors
    assert colors.dtype == np.uint8 and colors.shape == (len(sphere.vertices), 4)
    front = sphere.vertices[:, 0] > VOXEL
    back = sphere.vertices[:, 0] < -VOXEL
    assert (colors[front, 0] == 255).all() and (colors[front, 2] == 0).all()
    assert (colors[back, 2] == 255).all() and (colors[back, 0] == 0).all()
    assert (colors[:, 3] == 255).all()


def test_chunking_does_not_change_the_result(sphere):
    small = extract_mesh(sphere_density, front_back_color, resolution=RES, threshold=THRESHOLD, chunk=1000)
    # Bit-exact: the density is computed per point, so chunks change no value, and marching cubes
    # sees the same volume.
    assert np.array_equal(small.vertices, sphere.vertices) and (small.faces == sphere.faces).all()


def test_surface_touching_the_box_is_capped():
    half_space = lambda p: 50.0 * (p[:, 2] < 0.3).float()  # noqa: E731  dense below z = 0.3
    mesh = extract_mesh(half_space, front_back_color, resolution=24, threshold=THRESHOLD)
    assert mesh.is_watertight
    assert np.allclose(mesh.bounds[0], -1.0) and np.allclose(mesh.bounds[1][:2], 1.0)
    assert mesh.volume == pytest.approx(4 * 1.3, rel=0.05)  # the cap lies within a voxel (0.087) of z = 0.3


def test_floater_is_dropped_but_the_largest_component_always_kept():
    kept = extract_mesh(blob_density, front_back_color, resolution=RES, threshold=THRESHOLD,
                        min_component_fraction=0.0)
    assert len(kept.split(only_watertight=False)) == 2  # the blob is really there to drop

    cleaned = extract_mesh(blob_density, front_back_color, resolution=RES, threshold=THRESHOLD)
    assert len(cleaned.split(only_watertight=False)) == 1
    assert np.linalg.norm(cleaned.vertices, axis=1).max() < 0.5 + 2 * VOXEL
    assert len(cleaned.visual.vertex_colors) == len(cleaned.vertices)

    strict = extract_mesh(blob_density, front_back_color, resolution=RES, threshold=THRESHOLD,
                          min_component_fraction=1.0)
    assert len(strict.faces) == len(cleaned.faces)


@pytest.mark.parametrize("field", [lambda p: torch.zeros(len(p)), lambda p: torch.full((len(p),), 100.0)],
                         ids=["empty", "full"])
def test_no_surface_is_a_user_error(field):
    with pytest.raises(T3dError, match="no surface at density threshold 25"):
        extract_mesh(field, front_back_color, resolution=16, threshold=THRESHOLD)


def test_no_surface_error_suggests_a_threshold_inside_the_field_range():
    with pytest.raises(T3dError, match=r"max 4.*--threshold 2"):
        extract_mesh(lambda p: 4.0 * (p.norm(dim=-1) < 0.5).float(), front_back_color, resolution=16,
                     threshold=THRESHOLD)


@pytest.mark.parametrize("fmt", MESH_FORMATS)
def test_export_round_trip_keeps_vertices_colours_and_goes_y_up(sphere, fmt, tmp_path):
    path = export_mesh(sphere, tmp_path / f"sphere.{fmt}")
    assert path.is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"sphere.{fmt}"]  # no temp files left
    loaded = trimesh.load(path, force="mesh")
    assert len(loaded.vertices) == len(sphere.vertices)
    assert len(loaded.faces) == len(sphere.faces)

    # t3d world (x, y, z) is written as (x, z, -y): up +z becomes +y, the front +x stays +x.
    expected = sphere.vertices[:, [0, 2, 1]] * np.array([1.0, 1.0, -1.0])
    dist, idx = cKDTree(expected).query(loaded.vertices)
    assert dist.max() < sum_rounding(0.5, 3)  # the files store fp32: half an ulp of each coordinate <= 0.5
    colors = np.asarray(loaded.visual.vertex_colors)
    # 8-bit colours; a format may store them as floats and round back (one level).
    assert np.abs(colors[:, :3].astype(int) - sphere.visual.vertex_colors[idx, :3].astype(int)).max() <= 1

    top = loaded.vertices[np.argmax(loaded.vertices[:, 1])]  # world +z pole is now the +y pole
    assert top[1] == pytest.approx(0.5, abs=VOXEL)
    front = loaded.vertices[:, 0] > VOXEL
    assert (colors[front, 0] == 255).all() and (colors[front, 2] == 0).all()
    upper = loaded.vertices[:, 1] > VOXEL
    assert (colors[upper, 1] == 255).all() and (colors[loaded.vertices[:, 1] < -VOXEL, 1] == 0).all()
    assert loaded.volume > 0  # the rotation kept the normals outward


def test_export_does_not_modify_the_mesh(sphere, tmp_path):
    before = sphere.vertices.copy()
    export_mesh(sphere, tmp_path / "a.glb")
    assert np.array_equal(sphere.vertices, before)


def test_format_argument_overrides_the_suffix(sphere, tmp_path):
    path = export_mesh(sphere, tmp_path / "mesh.bin", fmt="PLY")
    assert path.read_bytes().startswith(b"ply")


def test_unknown_format_is_a_user_error_listing_the_supported_ones(sphere, tmp_path):
    with pytest.raises(T3dError, match="glb, obj, ply"):
        export_mesh(sphere, tmp_path / "mesh.stl")
    assert list(tmp_path.iterdir()) == []


def test_failed_export_leaves_the_old_file_intact(sphere, tmp_path, monkeypatch):
    path = tmp_path / "mesh.glb"
    path.write_bytes(b"old mesh")

    def half_write_then_fail(self, file_obj=None, file_type=None, **kwargs):
        with open(file_obj, "wb") as fh:
            fh.write(b"glTF half")
        raise RuntimeError("disk full")

    monkeypatch.setattr(trimesh.Trimesh, "export", half_write_then_fail)
    with pytest.raises(RuntimeError, match="disk full"):
        export_mesh(sphere, path)
    assert path.read_bytes() == b"old mesh"
    assert [p.name for p in tmp_path.iterdir()] == ["mesh.glb"]
