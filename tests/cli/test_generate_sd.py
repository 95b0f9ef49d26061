"""`t3d generate --model FOLDER` end to end on a tiny random Stable Diffusion folder
(tests/conftest.py): outputs, the SD flags, method pieces on latents, and refusals."""

import json

import pytest
import torch
from safetensors.torch import load_file

from t3d.cli import main
from t3d.config import load_config
from t3d.guidance.pose.features import save_tiny_dinov2
from tests.helpers.cli import generate_in_subprocess


def _log(out):
    return [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]


def test_generate_with_a_local_sd_folder_writes_a_run(tiny_sd_dir, tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["generate", "a cat", "--model", str(tiny_sd_dir), "--steps", "3", "--out", str(out),
                 "--resolution", "16", "--batch", "1", "--video-frames", "2",
                 "--set", "output.video_resolution=16", "--set", "output.mesh_resolution=16",
                 "--set", "field.grid_resolution=16", "--set", "render.samples_per_ray=16",
                 "--preview-every", "0"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step_000003.safetensors"]
    assert (out / "video.mp4").stat().st_size > 0
    config = load_config(out / "config.yaml")
    assert config.model == str(tiny_sd_dir) and config.prompt == "a cat"
    assert "trained to step 3" in err


def test_generate_with_a_missing_sd_folder_exits_2_with_one_line(tmp_path, capsys):
    missing = tmp_path / "no-such-model"
    code = main(["generate", "a cat", "--model", str(missing), "--steps", "3", "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("t3d: error:"), err
    assert str(missing) in lines[0] and "--model analytic" in lines[0] and "Traceback" not in err
    assert not (tmp_path / "run").exists()  # nothing written for a run that could not start


def test_sd_flags_reach_the_prior_and_the_saved_config(tiny_sd_dir, tmp_path, capsys):
    from t3d.priors.factory import build_prior

    out = tmp_path / "run"
    code = main(["generate", "a cat", "--model", str(tiny_sd_dir), "--steps", "1", "--out", str(out),
                 "--resolution", "16", "--batch", "1", "--latent-mode", "rgb", "--sd-dtype", "fp32",
                 "--low-vram", "--no-video", "--no-mesh", "--preview-every", "0",
                 "--set", "field.grid_resolution=16", "--set", "render.samples_per_ray=16"])
    assert code == 0, capsys.readouterr().err
    saved = load_config(out / "config.yaml")
    # --low-vram is saved as itself; the prior turns it into UNet + VAE gradient checkpointing.
    assert (saved.sd.latent_mode, saved.sd.dtype, saved.sd.low_vram) == ("rgb", "fp32", True)
    prior = build_prior(saved, torch.device("cpu"))
    assert prior.latent_mode == "rgb" and prior.dtype == torch.float32
    assert prior.vae.encoder.gradient_checkpointing
    assert any(getattr(m, "gradient_checkpointing", False) for m in prior.unet.modules())


def test_unknown_sd_flag_values_exit_2(tiny_sd_dir, tmp_path, capsys):
    for flag, value in (("--latent-mode", "pixels"), ("--sd-dtype", "int8")):
        code = main(["generate", "a cat", "--model", str(tiny_sd_dir), "--steps", "1",
                     "--out", str(tmp_path / "run"), flag, value])
        err = capsys.readouterr().err
        assert code == 2 and value in err and "Traceback" not in err
        assert not (tmp_path / "run").exists()


@pytest.mark.slow  # minutes under load: make test-slow (CI runs it)
def test_generate_gsd_on_a_tiny_sd_folder(tiny_sd_dir, tmp_path, capsys):
    out = tmp_path / "gsd-sd"
    code = main(["generate", "a cat", "--method", "gsd", "--model", str(tiny_sd_dir), "--steps", "3",
                 "--out", str(out), "--resolution", "16", "--batch", "1", "--video-frames", "2",
                 "--set", "output.video_resolution=16", "--set", "output.mesh_resolution=16",
                 "--set", "field.grid_resolution=16", "--set", "render.samples_per_ray=16",
                 "--preview-every", "0"])
    assert code == 0, capsys.readouterr().err
    last = _log(out)[-1]
    assert last["step"] == 3 and "grad_consistency" in last


def test_generate_sdi_with_a_tiny_sd_folder(tiny_sd_dir, tmp_path):
    run = tmp_path / "run"
    code = main(["generate", "a cat", "--method", "sdi", "--model", str(tiny_sd_dir), "--steps", "3", "--out", str(run),
                 "--resolution", "16", "--batch", "2", "--no-video", "--no-mesh", "--preview-every", "0",
                 "--set", "field.grid_resolution=16", "--set", "render.samples_per_ray=16"])
    assert code == 0
    records = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert records[-1]["step"] == 3 and "convexity" in records[-1]


def test_generate_esd_with_sd_checkpoints_the_lora_and_resume_continues_it(tiny_sd_dir, tmp_path, capsys):
    common = ["--model", str(tiny_sd_dir), "--method", "esd", "--resolution", "16", "--batch", "1",
              "--preview-every", "0", "--checkpoint-every", "2", "--no-video", "--no-mesh",
              "--set", "field.grid_resolution=16", "--set", "render.samples_per_ray=16"]
    straight, split = tmp_path / "straight", tmp_path / "split"
    assert main(["generate", "a cat", "--steps", "3", "--out", str(straight), *common]) == 0, capsys.readouterr().err
    ck = load_file(straight / "checkpoints" / "step_000003.safetensors")
    lora = [k for k in ck if k.startswith("guidance/score_model/weights/") and ".lora_B." in k]
    assert lora and any(ck[k].abs().max() > 0 for k in lora)  # trained away from its zero init
    assert any(k.startswith("guidance/score_model/optim/") for k in ck)
    assert main(["generate", "a cat", "--steps", "2", "--out", str(split), *common]) == 0
    assert main(["generate", "--resume", str(split), "--steps", "3", "--no-video", "--no-mesh"]) == 0
    resumed = load_file(split / "checkpoints" / "step_000003.safetensors")
    assert resumed.keys() == ck.keys()
    # Bit-exact: the same process and thread count run the same kernels, the checkpoint holds every
    # fp32 state exactly (weights, Adam moments and step counts), and each step draws from a
    # generator seeded by (seed, step).
    for key in ck:  # the field, the LoRA, the camera MLP and their AdamW state
        assert torch.equal(resumed[key], ck[key]), key


@pytest.mark.slow
def test_generate_usd_on_tiny_sd_and_tiny_dinov2(tiny_sd_dir, tmp_path):
    sd = tiny_sd_dir
    dino = save_tiny_dinov2(tmp_path / "dino")
    out = tmp_path / "run"
    done = generate_in_subprocess(["a dog", "--method", "usd", "--model", str(sd), "--pose-features", str(dino),
                      "--rectifier-mode", "stopgrad", "--steps", "2", "-o", str(out), "--no-video", "--no-mesh",
                      "--resolution", "16", "--batch", "1", "--preview-every", "0",
                      "--set", "field.grid_resolution=16", "--set", "render.samples_per_ray=16",
                      "--set", "guidance.terms.rectifier.template_steps=2"])
    assert done.returncode == 0, done.stderr[-2000:]
    assert (out / "checkpoints" / "step_000002.safetensors").exists()


@pytest.mark.slow  # minutes under load: make test-slow (CI runs it)
@pytest.mark.parametrize("classifier", ["posterior", "posterior-x0"])
def test_pose_posterior_classifier_is_refused_without_the_analytic_prior(tiny_sd_dir, tmp_path, classifier):
    sd = tiny_sd_dir
    done = generate_in_subprocess(["a dog", "--method", "usd", "--model", str(sd), "--pose-classifier", classifier,
                      "--steps", "1", "-o", str(tmp_path / "r"), "--no-video", "--no-mesh"])
    assert done.returncode == 2, done.stderr[-2000:]
    assert "needs a prior with an exact pose posterior" in done.stderr and "Traceback" not in done.stderr
