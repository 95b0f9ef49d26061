"""GLB / OBJ / PLY files: texture of the requested size with UVs, PBR material, +y up, atomic writes."""

import json
import struct

import numpy as np
import pytest
import torch
import trimesh
from PIL import Image

from t3d.errors import T3dError
from t3d.export.bake import surface_colors
from t3d.export.build import textured_asset, vertex_color_asset
from t3d.export.load import load_asset
from t3d.export.mesh_render import render_mesh
from t3d.export.surface import extract_surface, sample_density_grid
from t3d.export.writers import write_asset
from t3d.scene.cameras import orbit_cameras
from tests.helpers.export import PEAK, AnalyticField, sphere_density

SIZE = 128


@pytest.fixture(scope="module")
def surface():
    return extract_surface(sample_density_grid(sphere_density, 32), PEAK / 2, 1.0, max_faces=1500)


@pytest.fixture(scope="module")
def bake():
    field = AnalyticField()
    return lambda points, normals: surface_colors(field, points)


@pytest.fixture(scope="module")
def textured(surface, bake):
    return textured_asset(surface, bake, SIZE)


def glb_json(path) -> dict:
    """The JSON chunk of a GLB (12-byte header, then chunk length + type + data)."""
    data = path.read_bytes()
    magic, version, _ = struct.unpack_from("<4sII", data, 0)
    assert magic == b"glTF" and version == 2
    length, kind = struct.unpack_from("<I4s", data, 12)
    assert kind == b"JSON"
    return json.loads(data[20:20 + length])


def test_glb_carries_a_pbr_base_colour_texture_of_the_requested_size(textured, tmp_path):
    path = tmp_path / "mesh.glb"
    assert write_asset(textured, path, "glb", roughness=0.9) == [path]
    assert [p.name for p in tmp_path.iterdir()] == ["mesh.glb"]  # atomic: no temp file left
    gltf = glb_json(path)
    material = gltf["materials"][0]["pbrMetallicRoughness"]
    # glTF stores the factor as a float; approx covers 0.9 passing through fp32 (6e-8 relative).
    assert material["metallicFactor"] == 0.0 and material["roughnessFactor"] == pytest.approx(0.9)
    assert "baseColorTexture" in material
    attributes = gltf["meshes"][0]["primitives"][0]["attributes"]
    assert {"POSITION", "NORMAL", "TEXCOORD_0"} <= set(attributes)
    mesh = trimesh.load(path, force="mesh", process=False)
    assert mesh.visual.uv.shape == (len(mesh.vertices), 2)
    assert mesh.visual.material.baseColorTexture.size == (SIZE, SIZE)


def test_obj_writes_mtl_and_png_beside_it(textured, tmp_path):
    path = tmp_path / "mesh.obj"
    written = write_asset(textured, path, "obj")
    assert [p.name for p in written] == ["mesh.png", "mesh.mtl", "mesh.obj"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mesh.mtl", "mesh.obj", "mesh.png"]
    assert Image.open(tmp_path / "mesh.png").size == (SIZE, SIZE)
    mtl = (tmp_path / "mesh.mtl").read_text()
    assert "map_Kd mesh.png" in mtl and "Pm 0" in mtl
    text = path.read_text()
    assert "mtllib mesh.mtl" in text and "\nvt " in text and "\nvn " in text
    mesh = trimesh.load(path, force="mesh", process=False)
    assert mesh.visual.uv.shape == (len(mesh.vertices), 2)
    assert np.asarray(mesh.visual.material.image).shape[:2] == (SIZE, SIZE)


@pytest.mark.parametrize("fmt", ["glb", "obj"])
def test_written_textured_mesh_renders_like_the_one_in_memory(textured, tmp_path, fmt):
    path = tmp_path / f"mesh.{fmt}"
    write_asset(textured, path, fmt)
    back = load_asset(path)
    cams = orbit_cameras(3, 20.0, 2.0, 45.0)
    a, b = render_mesh(textured, cams, 48), render_mesh(back, cams, 48)
    assert torch.equal(a.coverage, b.coverage)
    # Same triangles and texels; float32 positions/uv through text (OBJ: 6 decimals) move a
    # lookup by < 1e-5 texel, so colours agree to well within one uint8 step (1/255).
    assert (a.rgb - b.rgb).abs().max() < 1 / 255


def test_files_are_y_up_with_the_front_kept_at_plus_x(textured, tmp_path):
    path = tmp_path / "mesh.glb"
    write_asset(textured, path, "glb")
    raw = trimesh.load(path, force="mesh", process=False)
    # t3d world (x, y, z) is written as (x, z, -y).
    expected = textured.vertices[:, [0, 2, 1]] * np.array([1.0, 1.0, -1.0])
    assert np.abs(np.asarray(raw.vertices) - expected).max() < 1e-6  # fp32 coordinates <= 1: exact or 1 ulp
    assert raw.volume > 0  # a proper rotation: faces still wound outward


def test_ply_keeps_vertex_colours_and_normals(surface, bake, tmp_path):
    asset = vertex_color_asset(surface, bake)
    path = tmp_path / "mesh.ply"
    write_asset(asset, path, "ply")
    header = path.read_bytes()[:400]
    assert b"property float nx" in header and b"property uchar red" in header
    mesh = trimesh.load(path, force="mesh", process=False)
    colors = np.asarray(mesh.visual.vertex_colors)[:, :3]
    assert np.array_equal(colors, asset.vertex_colors)


def test_glb_without_texture_has_vertex_colours(surface, bake, tmp_path):
    asset = vertex_color_asset(surface, bake)
    write_asset(asset, tmp_path / "mesh.glb", "glb")
    assert "COLOR_0" in glb_json(tmp_path / "mesh.glb")["meshes"][0]["primitives"][0]["attributes"]
    back = load_asset(tmp_path / "mesh.glb")
    assert not back.textured and np.abs(back.vertex_colors.astype(int) - asset.vertex_colors).max() <= 1


def test_unknown_format_is_refused_before_writing(textured, tmp_path):
    with pytest.raises(T3dError, match="glb, obj, ply"):
        write_asset(textured, tmp_path / "mesh.stl", "stl")
    assert list(tmp_path.iterdir()) == []


def test_failed_write_leaves_the_old_file_intact(textured, tmp_path, monkeypatch):
    path = tmp_path / "mesh.glb"
    path.write_bytes(b"old mesh")

    def fail(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(trimesh.exchange.gltf, "export_glb", fail)
    with pytest.raises(RuntimeError, match="disk full"):
        write_asset(textured, path, "glb")
    assert path.read_bytes() == b"old mesh" and [p.name for p in tmp_path.iterdir()] == ["mesh.glb"]
