"""Exported GLBs pass the Khronos glTF-Validator with zero errors.

Needs Node.js and the npm package gltf-validator, installed by examples/gltf_client_check.sh (or
`npm install --prefix examples/.gltf-client gltf-validator three`); GLTF_CLIENT_DIR points
elsewhere. Without them the test is skipped, unless T3D_REQUIRE_GLTF_VALIDATOR=1 (CI, which
installs them): then a missing validator is a failure, never a silent pass.
"""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from t3d.export.bake import surface_colors
from t3d.export.build import textured_asset, vertex_color_asset
from t3d.export.surface import extract_surface, sample_density_grid
from t3d.export.writers import write_asset
from tests.helpers.export import PEAK, AnalyticField, sphere_density

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
CLIENT = Path(os.environ.get("GLTF_CLIENT_DIR", EXAMPLES / ".gltf-client"))


def validator_or_skip() -> list[str]:
    node = shutil.which("node")
    installed = (CLIENT / "node_modules" / "gltf-validator").is_dir()
    if node and installed:
        return [node, str(EXAMPLES / "gltf_client" / "validate.mjs"), str(CLIENT)]
    missing = "node" if not node else f"gltf-validator in {CLIENT}"
    if os.environ.get("T3D_REQUIRE_GLTF_VALIDATOR") == "1":
        pytest.fail(f"T3D_REQUIRE_GLTF_VALIDATOR=1 but {missing} is missing")
    pytest.skip(f"{missing} is missing (examples/gltf_client_check.sh installs it)")


@pytest.mark.parametrize("textured", [True, False], ids=["texture", "vertex-colours"])
def test_exported_glb_has_no_validator_errors(tmp_path, textured):
    command = validator_or_skip()
    field = AnalyticField()
    surface = extract_surface(sample_density_grid(sphere_density, 32), PEAK / 2, 1.0, max_faces=1500)
    bake = lambda points, normals: surface_colors(field, points)  # noqa: E731
    asset = textured_asset(surface, bake, 128) if textured else vertex_color_asset(surface, bake)
    path = tmp_path / "mesh.glb"
    write_asset(asset, path, "glb")
    done = subprocess.run([*command, str(path)], capture_output=True, text=True, timeout=120)
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["errors"] == 0 and done.returncode == 0, report
    assert report["warnings"] == 0, report["messages"]
    if textured:
        assert report["textures"][0]["width"] == 128 and report["textures"][0]["height"] == 128
