import os
import tempfile

import pytest

# Reference renders are cached across the whole test session (and never in the user's home).
os.environ.setdefault("T3D_CACHE", os.path.join(tempfile.gettempdir(), "t3d-test-cache"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
import t3d  # noqa: E402,F401  (before any test touches torch: caps oneDNN below AMX, see t3d/__init__.py)

# Small but complete runs: every stage (train, checkpoint, preview, video, mesh) executes.
TINY_RUN = [
    "--resolution", "16", "--batch", "1", "--video-frames", "4", "--preview-every", "2",
    "--checkpoint-every", "2", "--video-resolution", "24", "--mesh-resolution", "24", "--texture-size", "64",
    "--set", "analytic.resolution=16", "--set", "analytic.azimuth_step=30", "--set", "analytic.jitter_copies=1",
    "--set", "field.grid_resolution=16", "--set", "render.samples_per_ray=24",
    "--set", "mesh.bake_resolution=32", "--set", "mesh.check_resolution=32",
]


@pytest.fixture
def tiny_run_args():
    return list(TINY_RUN)


# Tiny random models saved to folders, built once per session (read-only for the tests that use them).
@pytest.fixture(scope="session")
def tiny_sd_dir(tmp_path_factory):
    """A tiny random Stable Diffusion folder (epsilon prediction): what `--model FOLDER` loads."""
    from t3d.priors.tiny_sd import build_tiny_sd

    return build_tiny_sd(tmp_path_factory.mktemp("tiny_sd_eps"), prediction_type="epsilon", seed=0)


@pytest.fixture(scope="session")
def tiny_sd_v_dir(tmp_path_factory):
    """The same with v-prediction (SD 2.x 768 style)."""
    from t3d.priors.tiny_sd import build_tiny_sd

    return build_tiny_sd(tmp_path_factory.mktemp("tiny_sd_v"), prediction_type="v_prediction", seed=1)


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory):
    """A tiny random BERT masked LM folder: what `--mlm FOLDER` loads."""
    from tests.helpers.mlm import build_tiny_bert

    return build_tiny_bert(tmp_path_factory.mktemp("tiny_bert"))
