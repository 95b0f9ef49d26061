"""VSD/ESD's camera-conditioned score model on the analytic prior: starts at the prior's score,
learns, batches its two branches correctly, lambda = 0 is VSD exactly, checkpoints exactly,
and `t3d generate --method vsd/esd` runs end to end (with --resume continuing it exactly)."""

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import yaml
from safetensors.torch import load_file

from t3d.cli import main
from t3d.config import preset
from t3d.guidance.baseline.config import ScoreModelConfig
from t3d.guidance.baseline.score_model import CameraScoreModel, camera_condition
from t3d.guidance.step import ScoreDistillation, StepContext
from t3d.priors.analytic import AnalyticPrior
from t3d.priors.config import AnalyticConfig
from tests.conftest import TINY_RUN
from tests.helpers.configs import run_config

PROMPT = "a smiling head"


@pytest.fixture(scope="module")
def prior():
    return AnalyticPrior(AnalyticConfig(resolution=16, azimuth_step=30.0, jitter_copies=1), "cpu")


def esd_cfg(lam=0.5, kind="network", **score):
    """The trainable backbone unless a test asks otherwise (the kernel one: test_kernel_score.py)."""
    return ScoreModelConfig(esd_lambda=lam, backbone=kind, **score)


def cams(n=2, seed=0):
    from t3d.scene.cameras import CameraRanges, sample_cameras

    return sample_cameras(CameraRanges(distance=(2.0, 2.0), fovy=(45.0, 45.0)), n, torch.Generator().manual_seed(seed))


def noisy(prior, n=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    x_t = torch.randn(n, 3, prior.latent_size, prior.latent_size, generator=g)
    return x_t, torch.tensor([100, 700, 400, 900][:n])


def ctx_for(prior, x0, cameras, seed=0):
    return StepContext(prior, cameras, 0.0, torch.Generator().manual_seed(seed), x0)


def test_camera_condition_is_the_flat_c2w_and_zeros_mean_no_camera():
    c = cams(3)
    assert torch.equal(camera_condition(c, 3, "cpu"), c.c2w().reshape(3, 16))
    assert torch.equal(camera_condition(None, 3, "cpu"), torch.zeros(3, 16))


@pytest.mark.parametrize("kind", ["network", "kernel"])
def test_fresh_score_model_is_the_prior_score_for_the_prompt(prior, kind):
    torch.manual_seed(0)
    model = CameraScoreModel(prior, esd_cfg(kind=kind), PROMPT)
    x_t, t = noisy(prior)
    expected = prior.eps(x_t, t, prior.embed([PROMPT] * 2))  # view-independent prompt, no CFG
    with torch.no_grad():
        for c in (cams(), None):
            torch.testing.assert_close(model.eps(x_t, t, c), expected)


def _images(prior, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(2, 3, prior.latent_size, prior.latent_size, generator=g) * 2 - 1


def _held_out_loss(model, prior, c):
    """Denoising MSE on the training images at fixed (t, noise): 16 draws, no randomness left."""
    g = torch.Generator().manual_seed(99)
    x0 = _images(prior).repeat(8, 1, 1, 1)
    t = torch.randint(0, 1000, (16,), generator=g)
    noise = torch.randn(x0.shape, generator=g)
    with torch.no_grad():
        return model.backbone.loss(x0, noise, t, camera_condition(c, 16, "cpu") if c is not None else torch.zeros(16, 16)).item()


def _train(model, prior, steps, seed=0, vary=False):
    """`vary`: new images every step, so that different cameras have seen different renders."""
    losses = []
    for step in range(steps):
        images = _images(prior, seed + 1000 * step if vary else seed)
        losses.append(model.update(ctx_for(prior, images, cams(2, step), seed=step)))
    return losses


def test_update_learns_the_renders_and_the_camera(prior):
    torch.manual_seed(0)
    model = CameraScoreModel(prior, esd_cfg(uncond_prob=0.0, lr=3e-3), PROMPT)
    before = {k: p.detach().clone() for k, p in model.params.items()}
    before_loss = _held_out_loss(model, prior, None)
    _train(model, prior, 40)
    after_loss = _held_out_loss(model, prior, None)
    assert after_loss < 0.8 * before_loss, (before_loss, after_loss)
    changed = [k for k, p in model.params.items() if not torch.equal(p, before[k])]
    assert any(k.startswith("camera.") for k in changed) and any(k.startswith("net.") for k in changed)
    x_t, t = noisy(prior)
    with torch.no_grad():
        assert (model.eps(x_t, t, cams()) - model.eps(x_t, t, None)).abs().max() > 1e-4


@pytest.mark.parametrize("kind", ["network", "kernel"])
def test_esd_baseline_batches_both_branches_correctly(prior, kind):
    torch.manual_seed(0)
    model = CameraScoreModel(prior, esd_cfg(lam=0.3, kind=kind, uncond_prob=0.5, lr=3e-3), PROMPT)
    _train(model, prior, 5, vary=True)
    x_t, t = noisy(prior)
    c = cams()
    ctx = ctx_for(prior, x_t, c)
    ctx.x_t, ctx.t = x_t, t
    with torch.no_grad():
        expected = 0.3 * model.eps(x_t, t, None) + 0.7 * model.eps(x_t, t, c)
    torch.testing.assert_close(model(ctx), expected, atol=1e-5, rtol=1e-5)
    assert (model(ctx) - model.eps(x_t, t, c)).abs().max() > 1e-5  # lambda really mixes


def _run_steps(prior, cfg, steps=4):
    """A 2D toy of the engine loop: an image parameter, guidance loss, Adam, guidance.update()."""
    torch.manual_seed(0)
    sd = ScoreDistillation(prior, cfg.guidance, cfg.prompts, PROMPT)
    logit = torch.zeros(2, 3, 16, 16, requires_grad=True)
    opt = torch.optim.Adam([logit], lr=0.05)
    grads = []
    for step in range(steps):
        loss, _ = sd.loss(torch.sigmoid(logit), cams(2, step), step / steps, torch.Generator().manual_seed(step))
        opt.zero_grad()
        loss.backward()
        grads.append(logit.grad.clone())
        opt.step()
        sd.update()
    return grads, sd


def test_esd_with_lambda_zero_is_vsd_exactly(prior):
    vsd = run_config("vsd")
    assert preset("esd")["guidance"]["baseline"]["esd_lambda"] == 0.5 and vsd.guidance.baseline.esd_lambda == 0.0
    esd0 = run_config("esd", {"guidance.baseline.esd_lambda": 0.0})
    g_vsd, m_vsd = _run_steps(prior, vsd)
    g_esd, m_esd = _run_steps(prior, esd0)
    assert all(torch.equal(a, b) for a, b in zip(g_vsd, g_esd))
    a, b = m_vsd.state_dict(), m_esd.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    g_half, _ = _run_steps(prior, run_config("esd"))
    assert not torch.equal(g_half[-1], g_vsd[-1])  # and lambda = 0.5 is something else


def test_state_dict_holds_weights_and_adamw_state_and_resumes_exactly(prior):
    torch.manual_seed(0)
    a = CameraScoreModel(prior, esd_cfg(lr=3e-3), PROMPT)
    _train(a, prior, 3)
    state = {k: v.clone() for k, v in a.state_dict().items()}
    assert all(isinstance(v, torch.Tensor) for v in state.values())
    assert any(k.startswith("optim/") and k.endswith("/exp_avg_sq") for k in state)
    torch.manual_seed(123)  # a different initialisation, overwritten by the load
    b = CameraScoreModel(prior, esd_cfg(lr=3e-3), PROMPT)
    b.load_state_dict(state)
    _train(a, prior, 2, seed=5)
    _train(b, prior, 2, seed=5)
    for k, p in a.params.items():
        assert torch.equal(p, b.params[k]), k


# ---------------------------------------------------------------- the CLI, end to end

@pytest.mark.parametrize("method, kind", [("vsd", "network"), ("esd", "auto")])
def test_generate_vsd_and_esd_write_the_usual_outputs(method, kind, tmp_path):
    run = tmp_path / method
    assert main(["generate", PROMPT, "--method", method, "--steps", "4", "--out", str(run), *TINY_RUN,
                 "--score-model", kind]) == 0
    assert (run / "video.mp4").stat().st_size > 0 and (run / "mesh.glb").is_file()
    assert (run / "previews" / "step_000004.png").is_file()
    records = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert records[-1]["step"] == 4 and np.isfinite(records[-1]["loss"])
    baseline = yaml.safe_load((run / "config.yaml").read_text())["guidance"]["baseline"]
    assert baseline["kind"] == "score_model" and baseline["esd_lambda"] == (0.5 if method == "esd" else 0.0)
    assert baseline["backbone"] == kind
    ck = load_file(run / "checkpoints" / "step_000004.safetensors")
    if kind == "network":
        assert any(k.startswith("guidance/score_model/weights/net.") for k in ck)
        assert any(k.startswith("guidance/score_model/optim/") for k in ck)
    else:  # auto on the analytic prior: the render kernel, whose state is its memory of 4 steps x 1 render
        assert ck["guidance/score_model/memory/renders"].shape[0] == 4


def test_esd_resume_equals_an_uninterrupted_run(tmp_path):
    straight, split = tmp_path / "straight", tmp_path / "split"
    common = [*TINY_RUN, "--no-video", "--no-mesh", "--method", "esd", "--esd-lambda", "0.7", "--uncond-prob", "0.3"]
    assert main(["generate", "a mug", "--steps", "6", "--out", str(straight), *common]) == 0
    assert main(["generate", "a mug", "--steps", "4", "--out", str(split), *common]) == 0
    assert main(["generate", "--resume", str(split), "--steps", "6", "--no-video", "--no-mesh"]) == 0
    a = load_file(straight / "checkpoints" / "step_000006.safetensors")
    b = load_file(split / "checkpoints" / "step_000006.safetensors")
    assert a.keys() == b.keys() and any(k.startswith("guidance/score_model/") for k in a)
    for key in a:  # field, score-model weights and their AdamW state alike
        assert np.allclose(a[key].numpy(), b[key].numpy(), atol=1e-6), key


@pytest.mark.parametrize("flags, message", [
    (["--method", "esd", "--esd-lambda", "1.5"], "--esd-lambda (guidance.baseline.esd_lambda) must be between 0 and 1"),
    (["--method", "sds", "--esd-lambda", "0.5"], "--esd-lambda is an option of baseline 'score_model'"),
    (["--method", "vsd", "--uncond-prob", "-0.1"], "--uncond-prob (guidance.baseline.uncond_prob) must be between 0 and 1"),
    (["--method", "vsd", "--score-model", "lora"], "unknown score model 'lora'"),
    (["--t-max-milestone", "0.2"], "--t-max-milestone: a milestone is FRACTION:VALUE"),
    (["--resolution-milestone", "0.2:12.5"], "--resolution-milestone: a resolution milestone is FRACTION:PIXELS"),
])
def test_bad_score_model_flags_exit_2_with_one_line(flags, message, tmp_path, capsys):
    code = main(["generate", PROMPT, "--steps", "2", "--out", str(tmp_path / "run"), *flags])
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err, err
    assert len(err.strip().splitlines()) == 1


# ---------------------------------------------------------------- ProlificDreamer schedules

def test_t_max_milestone_drops_t_max_after_its_fraction_of_the_run():
    from t3d.guidance.timesteps.config import TIMESTEPS

    cfg = run_config("sds", {"guidance.timesteps.max_milestone": (0.2, 0.5)}).guidance.timesteps
    sched = TIMESTEPS.build(cfg, SimpleNamespace(prior=SimpleNamespace(num_train_timesteps=1000)))
    gen = torch.Generator().manual_seed(0)
    early, late = sched.sample(4000, 0.1, gen), sched.sample(4000, 0.2, gen)
    assert early.max() > 900 and early.min() >= 20
    assert late.max() <= 500 and late.min() >= 20 and late.float().mean() > 200


def test_resolution_milestone_switches_the_training_render(tmp_path):
    from t3d.config import RunConfig
    from t3d.engine import Trainer
    from t3d.priors.factory import build_prior
    from t3d.commands.generate import resolve_framing

    cfg = RunConfig(prompt="a mug", steps=4)
    cfg.analytic = AnalyticConfig(resolution=16, azimuth_step=30.0, jitter_copies=1)
    cfg.field.grid_resolution, cfg.render.samples_per_ray, cfg.camera.batch = 16, 16, 1
    cfg.render.resolution, cfg.render.resolution_milestone = 8, (0.5, 12)
    prior = build_prior(cfg, torch.device("cpu"))
    resolve_framing(cfg, prior)
    trainer = Trainer(cfg, tmp_path, prior, torch.device("cpu"))
    seen = []
    original = trainer.scene.render
    trainer.scene.render = lambda cams, res, **kw: seen.append(res) or original(cams, res, **kw)
    for _ in range(4):
        assert trainer.train_step() is not None
        trainer.step += 1
    assert seen == [8, 8, 12, 12]
