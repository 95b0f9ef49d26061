"""Export and video options: defaults are valid, every bad value is one clear line, no torch needed."""

import dataclasses
import subprocess
import sys

import pytest

from t3d.config import validate
from t3d.config.options import field_help
from t3d.errors import T3dError
from t3d.export.config import MeshExportConfig, VideoConfig


def test_defaults_are_valid_and_documented():
    assert validate(MeshExportConfig()) is None and validate(VideoConfig()) is None
    for cls in (MeshExportConfig, VideoConfig):
        for field in dataclasses.fields(cls):
            assert field_help(field), f"{cls.__name__}.{field.name} has no help text"


@pytest.mark.parametrize("changes, message", [
    ({"format": "stl"}, "unknown mesh format 'stl'; choose glb, obj or ply"),
    ({"resolution": 8}, "resolution.* must be between 16 and 1024, got 8"),
    ({"threshold": -1.0}, "threshold must be greater than 0"),
    ({"threshold": float("nan")}, "threshold must be a finite number"),
    ({"min_component_share": 1.5}, "min_component_share must be between 0 and 1"),
    ({"faces": 10}, "--faces must be 0 .keep every face. or at least 100"),
    ({"texture_size": 32}, "--texture-size must be between 64 and 8192"),
    ({"bake_source": "magic"}, "unknown bake source"),
    ({"roughness": float("inf")}, "roughness must be a finite number"),
    ({"smooth": -1.0}, "smooth must be between 0 and 8"),
    ({"check_views": 0}, "check_views must be between 1"),
    ({"check_min_iou": 2.0}, "check_min_iou must be between 0 and 1"),
    ({"check_elevation": 100.0}, "check_elevation must be between -90 and 90"),
])
def test_bad_mesh_options_are_one_line_errors(changes, message):
    with pytest.raises(T3dError, match=message) as err:
        validate(MeshExportConfig(**changes))
    assert "\n" not in str(err.value)


def test_faces_zero_means_keep_all():
    validate(MeshExportConfig(faces=0))


@pytest.mark.parametrize("changes, message", [
    ({"resolution": 4}, "resolution.* must be between 16"), ({"fps": 0}, "fps must be between 1"),
    ({"elevation": 91.0}, "elevation.* must be between -90 and 90"),
    ({"panels": ("rgb", "x")}, "video panels must be chosen from rgb, normal, depth"),
    ({"gif_resolution": 2}, "gif_resolution must be between 16"),
])
def test_bad_video_options_are_one_line_errors(changes, message):
    with pytest.raises(T3dError, match=message):
        validate(VideoConfig(**changes))


def test_config_module_does_not_import_torch():
    code = "import sys, t3d.export.config; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
