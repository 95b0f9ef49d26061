"""Export and video options: defaults are valid, every bad value is one clear line, no torch needed."""

import dataclasses
import subprocess
import sys

import pytest

from t3d.errors import T3dError
from t3d.export.config import MeshExportConfig, VideoConfig


def test_defaults_are_valid_and_documented():
    assert MeshExportConfig().validate().texture_size == 1024
    assert VideoConfig().validate().resolution == 256
    source = open(sys.modules[MeshExportConfig.__module__].__file__).read()
    for cls in (MeshExportConfig, VideoConfig):
        for field in dataclasses.fields(cls):
            line = next(text for text in source.splitlines() if text.strip().startswith(f"{field.name}:"))
            assert "  # " in line, f"{cls.__name__}.{field.name} has no help comment"


@pytest.mark.parametrize("changes, message", [
    ({"format": "stl"}, "unknown mesh format 'stl'; choose from glb, obj, ply"),
    ({"resolution": 8}, "mesh resolution must be in"),
    ({"resolution": 64.5}, "mesh resolution must be an integer"),
    ({"threshold": -1.0}, "threshold must be positive"),
    ({"threshold": float("nan")}, "threshold must be finite"),
    ({"min_component_share": 1.5}, "min component share"),
    ({"faces": 10}, "mesh faces"),
    ({"texture_size": 32}, "texture size"),
    ({"texture_size": True}, "texture size must be an integer"),
    ({"bake_source": "magic"}, "unknown bake source"),
    ({"roughness": float("inf")}, "roughness must be finite"),
    ({"smooth": -1.0}, "smooth must be in"),
    ({"check_views": 0}, "mesh check views"),
    ({"check_min_iou": 2.0}, "minimum IoU"),
    ({"check_elevation": 100.0}, "check elevation"),
])
def test_bad_mesh_options_are_one_line_errors(changes, message):
    with pytest.raises(T3dError, match=message) as err:
        MeshExportConfig(**changes).validate()
    assert "\n" not in str(err.value)


def test_faces_zero_means_keep_all():
    assert MeshExportConfig(faces=0).validate().faces == 0


@pytest.mark.parametrize("changes, message", [
    ({"resolution": 4}, "video resolution"), ({"fps": 0}, "video fps"), ({"elevation": 91.0}, "elevation"),
    ({"panels": ("rgb", "x")}, "unknown video panel 'x'"), ({"gif_resolution": 2}, "gif resolution"),
])
def test_bad_video_options_are_one_line_errors(changes, message):
    with pytest.raises(T3dError, match=message):
        VideoConfig(**changes).validate()


def test_config_module_does_not_import_torch():
    code = "import sys, t3d.export.config; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
