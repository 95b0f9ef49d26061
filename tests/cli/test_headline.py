"""The first command a user types, as typed: `t3d generate "a smiling cat" --method esd`.

Offline on a CPU machine, `--model auto` lands on the built-in prior, which knows the cat, and
the run writes every output into its default folder. Only the step count and the size of the
video and the mesh bake are made small here; the prior, the method and the training settings are
the defaults a user gets. Whether the cat has one face is measured in docs/janus-benchmark.md.
"""

import trimesh

from t3d.cli import main
from t3d.config import load_config
from t3d.priors import auto
from t3d.video import read_video_frames

SMALL_OUTPUTS = ["--video-frames", "4", "--video-resolution", "32", "--mesh-resolution", "32",
                 "--texture-size", "64", "--set", "mesh.bake_resolution=32", "--set", "mesh.check_resolution=32"]


def test_the_headline_command_runs_offline_on_the_built_in_cat(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(auto, "cuda_available", lambda: False)  # a laptop without a GPU, whatever runs the tests
    monkeypatch.chdir(tmp_path)
    assert main(["generate", "a smiling cat", "--method", "esd", "--steps", "3", *SMALL_OUTPUTS]) == 0
    err = capsys.readouterr().err  # t3d's messages go to stderr, its results to files
    assert "prior: the built-in analytic prior (--model auto: no CUDA GPU here" in err

    [run] = (tmp_path / "runs").iterdir()  # the default folder: runs/<prompt>-<method>-<hash>
    assert run.name.startswith("a-smiling-cat-esd-")
    cfg = load_config(run / "config.yaml")
    assert (cfg.model, cfg.method, cfg.prompt) == ("analytic", "esd", "a smiling cat")  # replays without auto
    assert cfg.guidance.baseline.kind == "score_model" and cfg.guidance.baseline.esd_lambda == 0.5

    assert [p.name for p in (run / "checkpoints").iterdir()] == ["step_000003.safetensors"]
    frames = read_video_frames(run / "video.mp4")
    assert len(frames) == 4 and frames[0].std() > 0
    scene = trimesh.load(run / "mesh.glb")
    [mesh] = scene.geometry.values()
    assert mesh.visual.kind == "texture" and len(mesh.faces) > 50
