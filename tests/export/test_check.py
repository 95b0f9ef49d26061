"""export_run_mesh end to end on closed-form fields, and the mesh check that catches a wrong mesh."""

import json
from dataclasses import replace

import numpy as np
import pytest
import torch
import trimesh

from t3d.errors import T3dError
from t3d.export.asset import MeshAsset
from t3d.export.check import CHECK_JSON, CHECK_PNG
from t3d.export.config import MeshExportConfig
from t3d.export.load import load_asset
from t3d.export.mesh_export import check_mesh_file, export_run_mesh
from t3d.export.writers import write_asset
from tests.helpers.export import AnalyticField, AnalyticScene, sphere_scene

SMALL = dict(resolution=40, faces=2000, texture_size=128, check_views=4, check_resolution=48,
             bake_views=4, bake_resolution=48)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("run")
    scene = sphere_scene()
    return scene, run_dir, export_run_mesh(scene, run_dir, MeshExportConfig(**SMALL))


def test_export_writes_a_textured_glb_that_passes_the_check(exported):
    scene, run_dir, result = exported
    assert result.mesh_path == run_dir / "mesh.glb" and result.mesh_path.is_file()
    assert sorted(p.name for p in run_dir.iterdir()) == sorted([CHECK_JSON, CHECK_PNG, "mesh.glb"])
    assert result.texture_size == 128 and 0 < result.faces <= 2000
    # The sphere's render has a sharp edge (density 0 -> 50 over ~0.1); the matched level's
    # silhouettes agree with it up to the edge pixels.
    assert result.level_iou > 0.95 and result.check.passed and result.iou_mean > 0.95
    report = json.loads((run_dir / CHECK_JSON).read_text())
    # JSON keeps every bit of a float; approx's 1e-6 only covers an fp32 value written as fp64.
    assert report["iou_mean"] == pytest.approx(result.iou_mean) and len(report["iou"]) == 4
    assert report["psnr_mean"] == pytest.approx(result.psnr_mean)
    assert report["passed"] is True and report["faces"] == result.faces


def test_export_colour_matches_the_render(exported):
    _, _, result = exported
    # Inside the silhouette the texture holds the projected renders of a smooth colour (errors of
    # a few uint8 steps); most of the error is on edge pixels, where the mesh's box-filtered edge
    # and the volume's soft edge differ: about 1.5% of the union pixels (IoU 0.985) with errors
    # up to ~0.5 per channel bound the MSE near 0.015 * 0.25, i.e. ~24 dB (measured: 26.4 dB).
    # The same mesh in flat grey scores 13 dB (next test), so 20 dB separates the two.
    assert result.psnr_mean > 20


def variants(right: MeshAsset) -> dict:
    """The exported mesh, and three wrong ones: a box, the mesh moved sideways, the mesh in grey."""
    box = trimesh.creation.box(extents=(1.6, 1.6, 1.6))
    grey = MeshAsset(right.vertices, right.faces, right.normals,
                     vertex_colors=np.full((len(right.vertices), 3), 128, np.uint8))
    return {
        "right": right,
        "box": MeshAsset(np.asarray(box.vertices, np.float32), np.asarray(box.faces),
                         np.asarray(box.vertex_normals, np.float32), vertex_colors=grey.vertex_colors[:8]),
        "displaced": replace(right, vertices=right.vertices + np.float32([0.0, 0.35, 0.0])),
        "grey": grey,
    }


def test_check_flags_a_box_and_a_displaced_mesh_and_passes_the_right_one(exported, tmp_path):
    scene, run_dir, _ = exported
    cfg = MeshExportConfig(**SMALL)
    checks = {}
    for name, asset in variants(load_asset(run_dir / "mesh.glb")).items():
        path = tmp_path / f"{name}.glb"
        write_asset(asset, path, "glb")
        checks[name] = check_mesh_file(scene, path, tmp_path, cfg)
    assert checks["right"].passed and checks["right"].iou_mean > 0.95
    # The box covers the ball and much more; the moved ball overlaps only part of its place.
    assert not checks["box"].passed and checks["box"].iou_mean < 0.6
    assert not checks["displaced"].passed and checks["displaced"].iou_mean < 0.7
    # Right silhouette, wrong colour: the IoU cannot tell, the PSNR can.
    assert checks["grey"].iou_mean > 0.95
    assert checks["grey"].psnr_mean < checks["right"].psnr_mean - 8


def test_empty_field_is_one_clear_error_and_writes_nothing(tmp_path):
    empty = AnalyticScene(AnalyticField(density=lambda p: torch.zeros(len(p))))
    with pytest.raises(T3dError, match="the field is empty") as err:
        export_run_mesh(empty, tmp_path, MeshExportConfig(**SMALL))
    assert "\n" not in str(err.value)
    assert list(tmp_path.iterdir()) == []


def test_obj_and_ply_exports(tmp_path):
    scene = sphere_scene()
    obj = export_run_mesh(scene, tmp_path, MeshExportConfig(format="obj", check=False, **SMALL))
    assert [p.name for p in obj.paths] == ["mesh.png", "mesh.mtl", "mesh.obj"]
    ply = export_run_mesh(scene, tmp_path, MeshExportConfig(format="ply", check=False, **SMALL),
                          out_path=tmp_path / "other" / "shape.ply")
    assert ply.mesh_path == tmp_path / "other" / "shape.ply" and ply.texture_size is None


def test_output_suffix_that_contradicts_the_format_is_refused(tmp_path):
    with pytest.raises(T3dError, match="suffix .obj but the mesh format is glb"):
        export_run_mesh(sphere_scene(), tmp_path, MeshExportConfig(**SMALL), out_path=tmp_path / "m.obj")
    assert list(tmp_path.iterdir()) == []
