"""End to end through the CLI on the analytic prior: outputs, resume, determinism."""

import json

import numpy as np
import pytest
import trimesh
from safetensors.torch import load_file

from t3d.cli import main
from t3d.config import load_config
from t3d.video import read_video_frames
from tests.conftest import TINY_RUN


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    run = tmp_path_factory.mktemp("gen") / "head"
    assert main(["generate", "a smiling head", "--steps", "6", "--out", str(run), *TINY_RUN]) == 0
    return run


def test_run_folder_layout(run_dir):
    assert (run_dir / "config.yaml").is_file()
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == [
        "step_000002.safetensors", "step_000004.safetensors", "step_000006.safetensors"]
    assert (run_dir / "previews" / "step_000006.png").is_file()
    assert (run_dir / "video.mp4").is_file() and (run_dir / "mesh.glb").is_file()
    records = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]
    assert records[-1]["step"] == 6 and np.isfinite(records[-1]["loss"])


def test_config_replays_the_run(run_dir, tmp_path):
    cfg = load_config(run_dir / "config.yaml")
    assert cfg.prompt == "a smiling head" and cfg.steps == 6 and cfg.render.resolution == 16
    assert cfg.camera.distance == (2.0, 2.0)  # resolved from the prior, not left implicit
    replay = tmp_path / "replay"
    assert main(["generate", "--config", str(run_dir / "config.yaml"), "--out", str(replay),
                 "--no-video", "--no-mesh"]) == 0
    a = load_file(run_dir / "checkpoints" / "step_000006.safetensors")
    b = load_file(replay / "checkpoints" / "step_000006.safetensors")
    # Bit-exact: the saved config is the whole run (nothing left to the prior), run again in the
    # same process with the same kernels and per-step generators.
    assert a.keys() == b.keys() and all(np.array_equal(a[k].numpy(), b[k].numpy()) for k in a)


def test_video_has_the_requested_frames(run_dir, tmp_path):
    frames = read_video_frames(run_dir / "video.mp4")
    assert frames.shape[0] == 4
    out = tmp_path / "orbit.mp4"
    assert main(["render-video", str(run_dir), "--frames", "7", "--resolution", "20", "--panels", "rgb,depth,normal",
                 "--out", str(out)]) == 0
    frames = read_video_frames(out)
    assert frames.shape[:3] == (7, 20, 60)


@pytest.mark.parametrize("fmt", ["glb", "obj", "ply"])
def test_exported_meshes_load_with_vertex_colours(run_dir, tmp_path, fmt):
    out = tmp_path / f"m.{fmt}"
    assert main(["export-mesh", str(run_dir), "--format", fmt, "--out", str(out), "--threshold", "5"]) == 0
    mesh = trimesh.load(out, force="mesh")
    assert len(mesh.vertices) > 100 and len(mesh.faces) > 100
    # glb and obj carry a baked texture (sampled here at each vertex's uv), ply per-vertex colours.
    visual = mesh.visual.to_color() if mesh.visual.kind == "texture" else mesh.visual
    colors = np.asarray(visual.vertex_colors)
    assert colors.shape == (len(mesh.vertices), 4)
    assert colors[:, :3].std() > 0  # real per-vertex colours, not one default value


def test_resume_equals_an_uninterrupted_run(tmp_path):
    straight, split = tmp_path / "straight", tmp_path / "split"
    common = [*TINY_RUN, "--no-video", "--no-mesh"]
    assert main(["generate", "a mug", "--steps", "8", "--out", str(straight), *common]) == 0
    assert main(["generate", "a mug", "--steps", "4", "--out", str(split), *common]) == 0
    assert main(["generate", "--resume", str(split), "--steps", "8", "--no-video", "--no-mesh"]) == 0
    a = load_file(straight / "checkpoints" / "step_000008.safetensors")
    b = load_file(split / "checkpoints" / "step_000008.safetensors")
    assert a.keys() == b.keys()
    # Bit-exact: the same process and thread count run the same kernels, the checkpoint holds every
    # fp32 state exactly (weights, Adam moments and step counts), and each step draws from a
    # generator seeded by (seed, step).
    for key in a:
        assert np.array_equal(a[key].numpy(), b[key].numpy()), key


def test_same_seed_same_result_and_other_seed_differs(tmp_path):
    common = [*TINY_RUN, "--no-video", "--no-mesh", "--steps", "2"]
    for name, seed in (("a", "1"), ("b", "1"), ("c", "2")):
        assert main(["generate", "a bird", "--seed", seed, "--out", str(tmp_path / name), *common]) == 0
    grid = "field/encoding.grid"
    a, b, c = (load_file(tmp_path / n / "checkpoints" / "step_000002.safetensors")[grid] for n in "abc")
    assert np.array_equal(a.numpy(), b.numpy())
    assert not np.allclose(a.numpy(), c.numpy())  # another seed moves the grid by far more than rounding


def test_overwrite_replaces_a_run(run_dir, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    (copy / "notes.txt").write_text("mine")
    assert main(["generate", "a mug", "--steps", "2", "--out", str(copy), "--overwrite", "--no-video", "--no-mesh",
                 *TINY_RUN]) == 0
    assert load_config(copy / "config.yaml").prompt == "a mug"
    assert [p.name for p in (copy / "checkpoints").iterdir()] == ["step_000002.safetensors"]
    assert not (copy / "video.mp4").exists()
    assert (copy / "notes.txt").read_text() == "mine"


def test_generate_with_diffuse_shading_runs(tmp_path, tiny_run_args, capsys):
    out = tmp_path / "run"
    code = main(["generate", "a smiling head", "--steps", "2", "--out", str(out), "--shading", "diffuse",
                 "--textureless-prob", "0.5", "--no-video", "--no-mesh", *tiny_run_args])
    assert code == 0, capsys.readouterr().err
    assert load_config(out / "config.yaml").render.shading == "diffuse"
