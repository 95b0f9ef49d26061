"""The SD prior on tiny random models built offline: loading, shapes, v-pred, caching, CFG,
memory knobs, latent modes, errors, and `t3d generate --model FOLDER` end to end."""

from __future__ import annotations

import shutil
import socket
from types import SimpleNamespace

import pytest
import torch

from t3d.cli import main
from t3d.errors import T3dError
from t3d.priors.base import Prior, guided_eps
from t3d.priors.stable_diffusion import (DEFAULT_SD_MODEL, StableDiffusionPrior, default_sd_model,
                                         fit_rgb_to_latent, resolve_dtype)
from t3d.priors.tiny_sd import build_tiny_sd


@pytest.fixture(scope="session")
def tiny_eps_dir(tmp_path_factory):
    return build_tiny_sd(tmp_path_factory.mktemp("tiny_sd_eps"), prediction_type="epsilon", seed=0)


@pytest.fixture(scope="session")
def tiny_v_dir(tmp_path_factory):
    return build_tiny_sd(tmp_path_factory.mktemp("tiny_sd_v"), prediction_type="v_prediction", seed=1)


@pytest.fixture(scope="module")
def prior(tiny_eps_dir):
    # The same public constructor `--model /path/to/folder` reaches through the prior factory.
    return StableDiffusionPrior(str(tiny_eps_dir), "cpu")


def _noisy(prior, batch=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    x_t = torch.randn(batch, prior.latent_channels, prior.latent_size, prior.latent_size, generator=g)
    t = torch.tensor([20, 700, 400, 999][:batch])
    return x_t, t


def test_loads_local_folder_with_protocol_attributes(prior, tiny_eps_dir):
    from diffusers import DDPMScheduler

    assert isinstance(prior, Prior)
    assert (prior.image_size, prior.latent_size, prior.latent_channels) == (32, 16, 4)
    assert prior.num_train_timesteps == 1000 and prior.prediction_type == "epsilon"
    # alphas_cumprod is the model's own schedule, float32 on the prior's device.
    expected = DDPMScheduler.from_pretrained(tiny_eps_dir, subfolder="scheduler").alphas_cumprod
    assert prior.alphas_cumprod.dtype == torch.float32 and prior.alphas_cumprod.shape == (1000,)
    torch.testing.assert_close(prior.alphas_cumprod, expected.float())
    # Frozen, eval-mode, fp32 on CPU.
    for net in (prior.unet, prior.vae, prior.text_encoder):
        assert not net.training
        assert all(not p.requires_grad for p in net.parameters())
        assert next(net.parameters()).dtype == torch.float32


def test_shapes_of_encode_decode_embed_eps(prior):
    rgb = torch.rand(2, 3, 24, 24)  # not the native size: encode resizes to 32
    x0 = prior.encode(rgb)
    assert x0.shape == (2, 4, 16, 16) and x0.dtype == torch.float32
    img = prior.decode(x0)
    assert img.shape == (2, 3, 32, 32) and img.min() >= 0 and img.max() <= 1
    cond = prior.embed(["a red mug", ""])
    assert cond.shape == (2, 77, 32) and cond.dtype == torch.float32
    x_t, t = _noisy(prior)
    with torch.no_grad():
        eps = prior.eps(x_t, t, cond)
    assert eps.shape == x_t.shape and torch.isfinite(eps).all()


def test_encode_is_the_scaled_vae_posterior_mean_and_differentiable(prior):
    rgb = torch.rand(1, 3, 32, 32, requires_grad=True)
    x0 = prior.encode(rgb)
    with torch.no_grad():
        mean = prior.vae.encode(rgb.detach() * 2 - 1).latent_dist.mean
    torch.testing.assert_close(x0.detach(), mean * prior.vae.config.scaling_factor)
    # Gradient flows back to the image even through the resize path.
    small = torch.rand(1, 3, 20, 20, requires_grad=True)
    (prior.encode(small) ** 2).sum().backward()
    (x0**2).sum().backward()
    for leaf in (rgb, small):
        assert leaf.grad is not None and torch.isfinite(leaf.grad).all() and leaf.grad.abs().sum() > 0


def test_eps_model_returns_raw_unet_output(prior):
    x_t, t = _noisy(prior)
    cond = prior.embed(["a chair", "a chair"])
    with torch.no_grad():
        raw = prior.unet(x_t, t, encoder_hidden_states=cond).sample
        torch.testing.assert_close(prior.eps(x_t, t, cond), raw)


class _OracleUNet:
    """Stands in for the UNet: returns the exact training target for the x_t it was built for."""

    def __init__(self, x_t, target):
        self.x_t, self.target = x_t, target

    def __call__(self, x, t, encoder_hidden_states):
        assert torch.equal(x, self.x_t)
        return SimpleNamespace(sample=self.target)


@pytest.mark.parametrize("kind", ["epsilon", "v_prediction"])
def test_eps_and_x0_follow_the_schedulers_own_formulas(kind, tiny_eps_dir, tiny_v_dir, monkeypatch):
    """A perfect model of either kind must give back the injected noise, and Tweedie's x0 from
    eps() must equal the x0 that diffusers' DDIM scheduler derives from the raw model output."""
    from diffusers import DDPMScheduler

    folder = tiny_eps_dir if kind == "epsilon" else tiny_v_dir
    prior = StableDiffusionPrior(str(folder), "cpu")
    assert prior.prediction_type == kind
    sched = DDPMScheduler.from_pretrained(folder, subfolder="scheduler")  # the model's own
    g = torch.Generator().manual_seed(7)
    x0 = torch.randn(4, 4, 16, 16, generator=g)
    noise = torch.randn(4, 4, 16, 16, generator=g)
    t = torch.tensor([20, 400, 700, 999])
    x_t = sched.add_noise(x0, noise, t)
    torch.testing.assert_close(prior.schedule.add_noise(x0, noise, t), x_t)
    target = noise if kind == "epsilon" else sched.get_velocity(x0, noise, t)
    monkeypatch.setattr(prior, "unet", _OracleUNet(x_t, target))

    eps = prior.eps(x_t, t, prior.embed([""] * 4))
    torch.testing.assert_close(eps, noise, atol=1e-5, rtol=1e-5)
    if kind == "v_prediction":
        assert not torch.allclose(target, noise, atol=1e-2)  # so the conversion did something
    x0_hat = prior.schedule.predict_x0(x_t, eps, t)
    prior.scheduler.set_timesteps(50)
    for i in range(4):
        ddim_x0 = prior.scheduler.step(target[i:i + 1], int(t[i]), x_t[i:i + 1]).pred_original_sample
        torch.testing.assert_close(x0_hat[i:i + 1], ddim_x0, atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(ddim_x0, x0[i:i + 1], atol=1e-3, rtol=1e-3)


class _CountingEncoder:
    """Wraps the text encoder, recording how many prompts each call encodes."""

    def __init__(self, inner):
        self.inner, self.batches = inner, []

    def __call__(self, ids, *args, **kwargs):
        self.batches.append(ids.shape[0])
        return self.inner(ids, *args, **kwargs)


def test_embed_encodes_each_prompt_once_and_survives_release(tiny_eps_dir):
    prior = StableDiffusionPrior(str(tiny_eps_dir), "cpu")  # own instance: this test releases the encoder
    counter = _CountingEncoder(prior.text_encoder)
    prior.text_encoder = counter

    first = prior.embed(["a cat", "a hat", "a cat"])
    assert counter.batches == [2]  # one call, duplicates encoded once
    torch.testing.assert_close(first[0], first[2])
    assert not torch.allclose(first[0], first[1])
    again = prior.embed(["a hat", "a cat", ""])
    assert counter.batches == [2, 1]  # only "" was new
    torch.testing.assert_close(again[:2], first[[1, 0]])
    prior.embed(["", "a cat"])
    assert counter.batches == [2, 1]

    prior.release_text_encoder()
    assert prior.text_encoder is None and prior.tokenizer is None
    torch.testing.assert_close(prior.embed(["a hat", "a cat", ""]), again)
    with pytest.raises(T3dError, match="released"):
        prior.embed(["a new prompt"])


def test_guided_eps_matches_separate_calls(prior):
    x_t, t = _noisy(prior, seed=5)
    cond = prior.embed(["a teapot, front view", "a teapot, back view"])
    uncond = prior.embed(["", ""])
    scale = 7.5
    with torch.no_grad():
        guided = guided_eps(prior, x_t, t, cond, uncond, scale)
        eps_u = prior.eps(x_t, t, uncond)
        eps_c = prior.eps(x_t, t, cond)
    torch.testing.assert_close(guided, eps_u + scale * (eps_c - eps_u), atol=1e-5, rtol=1e-4)
    assert not torch.allclose(eps_u, eps_c)  # the prompt matters, so the check is not vacuous


def test_reduced_precision_model_returns_float32(tiny_eps_dir):
    # bfloat16 stands in for CUDA's fp16 here: CPU kernels for it exist everywhere.
    prior = StableDiffusionPrior(str(tiny_eps_dir), "cpu", dtype=torch.bfloat16)
    assert prior.unet.dtype == torch.bfloat16 and prior.vae.dtype == torch.bfloat16
    x0 = prior.encode(torch.rand(1, 3, 32, 32))
    x_t, t = _noisy(prior, batch=1)
    with torch.no_grad():
        eps = prior.eps(x_t, t, prior.embed(["a lamp"]))
    assert x0.dtype == eps.dtype == prior.embed(["a lamp"]).dtype == torch.float32


@pytest.fixture
def offline(monkeypatch):
    """HF_HUB_OFFLINE=1, also in the already-imported hub constants, and sockets that record any use."""
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    attempts = []

    def refuse(*args, **kwargs):
        attempts.append(args)
        raise OSError("network disabled in tests")

    # Name lookup comes first (and fails first on a machine without network), so watch it too.
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    return attempts


@pytest.mark.parametrize("model, reason", [
    ("/definitely/not/a/folder", "no such folder"),
    ("t3d-test-owner/no-such-sd-model", "HF_HUB_OFFLINE=1"),
])
def test_unavailable_model_is_one_clear_line(offline, model, reason):
    with pytest.raises(T3dError) as info:
        StableDiffusionPrior(model, "cpu")
    message = str(info.value)
    assert "--model analytic" in message and "--model /path/to/diffusers-folder" in message
    assert model in message and reason in message and "\n" not in message
    assert "Looked for" in message
    assert offline == []  # nothing tried to reach the network


def test_hub_id_is_found_in_HF_cache_offline(offline, tiny_eps_dir, tmp_path, monkeypatch):
    """A Hub id resolves through the Hugging Face cache (HF_HOME / HF_HUB_CACHE) with no network."""
    import huggingface_hub.constants

    cache = tmp_path / "hub"
    repo = cache / "models--t3d-test-owner--tiny-sd"
    commit = "0" * 40
    shutil.copytree(tiny_eps_dir, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    prior = StableDiffusionPrior("t3d-test-owner/tiny-sd", "cpu")
    assert prior.name == "sd:t3d-test-owner/tiny-sd" and prior.latent_size == 16
    assert offline == []


def test_folder_missing_a_part_is_a_clear_error(offline, tiny_eps_dir, tmp_path):
    broken = tmp_path / "no_unet"
    shutil.copytree(tiny_eps_dir, broken)
    shutil.rmtree(broken / "unet")
    with pytest.raises(T3dError, match="--model analytic") as info:
        StableDiffusionPrior(str(broken), "cpu")
    assert "has no unet/" in str(info.value) and "\n" not in str(info.value)
    # A part that is there but unreadable is caught by diffusers' loader, still one line.
    (broken / "unet").mkdir()
    with pytest.raises(T3dError, match="--model analytic") as info:
        StableDiffusionPrior(str(broken), "cpu")
    assert "\n" not in str(info.value)
    assert offline == []


def test_single_file_checkpoint_gets_a_conversion_hint(offline, tmp_path):
    ckpt = tmp_path / "model.safetensors"
    ckpt.write_bytes(b"not really")
    with pytest.raises(T3dError, match="from_single_file") as info:
        StableDiffusionPrior(str(ckpt), "cpu")
    assert "\n" not in str(info.value)


def test_default_model_and_env_override(monkeypatch):
    monkeypatch.delenv("T3D_SD_MODEL", raising=False)
    assert default_sd_model() == DEFAULT_SD_MODEL == "stable-diffusion-v1-5/stable-diffusion-v1-5"
    monkeypatch.setenv("T3D_SD_MODEL", "/models/my-sd")
    assert default_sd_model() == "/models/my-sd"


def test_dtype_names():
    assert resolve_dtype(None, torch.device("cpu")) == resolve_dtype("auto", torch.device("cpu")) == torch.float32
    assert resolve_dtype("auto", torch.device("cuda")) == torch.float16
    assert resolve_dtype("bf16", torch.device("cpu")) == torch.bfloat16
    with pytest.raises(T3dError, match="unknown Stable Diffusion dtype"):
        resolve_dtype("fp8", torch.device("cpu"))


def test_memory_knobs_do_not_change_results(prior, tiny_eps_dir):
    knobs = StableDiffusionPrior(str(tiny_eps_dir), "cpu", attention_slicing=True, channels_last=True,
                                 vae_checkpointing=True)
    x_t, t = _noisy(prior, seed=11)
    cond = prior.embed(["a vase", "a vase"])
    with torch.no_grad():
        torch.testing.assert_close(knobs.eps(x_t, t, cond), prior.eps(x_t, t, cond), atol=1e-5, rtol=1e-4)
    grads = []
    for p in (prior, knobs):
        rgb = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(3), requires_grad=True)
        (p.encode(rgb) ** 2).sum().backward()
        grads.append(rgb.grad)
    torch.testing.assert_close(grads[0], grads[1], atol=1e-5, rtol=1e-4)
    assert knobs.vae.encoder.gradient_checkpointing


def test_rgb_latent_mode_maps_the_render_without_the_vae(tiny_eps_dir):
    fast = StableDiffusionPrior(str(tiny_eps_dir), "cpu", latent_mode="rgb")
    # The renderer is asked for latent-size images; x0 keeps the latent shape the UNet wants.
    assert fast.image_size == fast.latent_size == 16 and fast.native_image_size == 32
    calls = []
    fast.vae.encoder.register_forward_hook(lambda *args: calls.append(1))
    rgb = torch.rand(2, 3, 16, 16, requires_grad=True)
    x0 = fast.encode(rgb)
    assert x0.shape == (2, 4, 16, 16) and x0.dtype == torch.float32 and calls == []
    weight, bias = fast.rgb_to_latent
    torch.testing.assert_close(x0, torch.einsum("oc,bchw->bohw", weight, rgb * 2 - 1) + bias.view(1, 4, 1, 1))
    x0.sum().backward()
    assert rgb.grad is not None and rgb.grad.abs().sum() > 0
    assert fast.encode(torch.rand(1, 3, 64, 64)).shape == (1, 4, 16, 16)  # larger renders are resized
    with pytest.raises(T3dError, match="latent mode"):
        StableDiffusionPrior(str(tiny_eps_dir), "cpu", latent_mode="pixels")


def test_rgb_to_latent_fit_recovers_a_linear_vae(prior, monkeypatch):
    """On a VAE that is exactly linear in colour (per latent pixel), the fit is exact."""
    w0 = torch.tensor([[0.8, -0.2, 0.1], [0.3, 0.5, -0.4], [-0.6, 0.2, 0.9], [0.1, -0.7, 0.2]])
    b0 = torch.tensor([0.05, -0.1, 0.2, -0.3])

    def linear_vae(rgb):
        pooled = torch.nn.functional.avg_pool2d(rgb, prior.vae_scale_factor)
        return torch.einsum("oc,bchw->bohw", w0, pooled * 2 - 1) + b0.view(1, 4, 1, 1)

    monkeypatch.setattr(prior, "vae_latents", linear_vae)
    weight, bias = fit_rgb_to_latent(prior)
    torch.testing.assert_close(weight, w0, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(bias, b0, atol=1e-5, rtol=1e-5)


# ---------------------------------------------------------------- the CLI, end to end

def test_generate_with_a_local_sd_folder_writes_a_run(tiny_eps_dir, tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["generate", "a cat", "--model", str(tiny_eps_dir), "--steps", "3", "--out", str(out),
                 "--resolution", "16", "--batch", "1", "--video-frames", "2",
                 "--set", "output.video_resolution=16", "--set", "output.mesh_resolution=16",
                 "--set", "field.grid_resolution=16", "--set", "render.samples_per_ray=16",
                 "--preview-every", "0"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step_000003.safetensors"]
    assert (out / "video.mp4").stat().st_size > 0
    config = (out / "config.yaml").read_text()
    assert f"model: {tiny_eps_dir}" in config and "prompt: a cat" in config
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


def test_factory_passes_the_config_sd_knobs(tiny_eps_dir):
    from t3d.config import RunConfig
    from t3d.priors.config import SDConfig
    from t3d.priors.factory import build_prior

    cfg = RunConfig(prompt="a cat", model=str(tiny_eps_dir))
    assert build_prior(cfg, torch.device("cpu")).latent_mode == "vae"  # the default sd section
    cfg.sd = SDConfig(dtype="bf16", latent_mode="rgb", vae_checkpointing=True)
    prior = build_prior(cfg, torch.device("cpu"))
    assert isinstance(prior, StableDiffusionPrior)
    assert prior.latent_mode == "rgb" and prior.dtype == torch.bfloat16 and prior.image_size == 16
    assert prior.vae.encoder.gradient_checkpointing


def test_sd_flags_reach_the_prior_and_the_saved_config(tiny_eps_dir, tmp_path, capsys):
    import yaml

    from t3d.config import load_config
    from t3d.priors.factory import build_prior

    out = tmp_path / "run"
    code = main(["generate", "a cat", "--model", str(tiny_eps_dir), "--steps", "1", "--out", str(out),
                 "--resolution", "16", "--batch", "1", "--latent-mode", "rgb", "--sd-dtype", "fp32",
                 "--low-vram", "--no-video", "--no-mesh", "--preview-every", "0",
                 "--set", "field.grid_resolution=16", "--set", "render.samples_per_ray=16"])
    assert code == 0, capsys.readouterr().err
    sd = yaml.safe_load((out / "config.yaml").read_text())["sd"]
    # --low-vram is saved as itself; the prior turns it into sliced attention + VAE checkpointing.
    assert sd["latent_mode"] == "rgb" and sd["dtype"] == "fp32" and sd["low_vram"] is True
    prior = build_prior(load_config(out / "config.yaml"), torch.device("cpu"))
    assert prior.latent_mode == "rgb" and prior.dtype == torch.float32
    assert prior.vae.encoder.gradient_checkpointing
    assert any("Sliced" in type(p).__name__ for p in prior.unet.attn_processors.values())


def test_unknown_sd_flag_values_exit_2(tiny_eps_dir, tmp_path, capsys):
    for flag, value in (("--latent-mode", "pixels"), ("--sd-dtype", "int8")):
        code = main(["generate", "a cat", "--model", str(tiny_eps_dir), "--steps", "1",
                     "--out", str(tmp_path / "run"), flag, value])
        err = capsys.readouterr().err
        assert code == 2 and value in err and "Traceback" not in err
        assert not (tmp_path / "run").exists()
