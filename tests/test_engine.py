"""The training engine (t3d/engine.py): non-finite steps are skipped and counted, persistent ones stop
cleanly, an interrupt saves a checkpoint, and the resolution milestone switches the training render."""

import json

import pytest
import torch

from t3d.commands.generate import GenerateRequest, new_run_config, resolve_framing
from t3d.config import RunConfig
from t3d.engine import Trainer
from t3d.errors import TrainingDiverged
from t3d.priors.config import AnalyticConfig
from t3d.priors.factory import build_prior
from t3d.run import checkpoint as ckpt
from t3d.run.folder import prepare_new_run_dir
from tests.conftest import TINY_RUN


def tiny_trainer(tmp_path, steps):
    sets = [TINY_RUN[i + 1] for i, a in enumerate(TINY_RUN) if a == "--set"]
    cfg = new_run_config(GenerateRequest(prompt="a smiling head", steps=steps, sets=sets, overrides={
        "render.resolution": 16, "camera.batch": 1, "output.checkpoint_every": 2, "output.preview_every": 0}))
    cfg.max_bad_steps = 3
    prior = build_prior(cfg, torch.device("cpu"))
    resolve_framing(cfg, prior)
    run_dir = prepare_new_run_dir(tmp_path / "run", overwrite=False)
    return Trainer(cfg, run_dir, prior, torch.device("cpu"))


def poison_after(trainer, good_steps):
    real = trainer.guidance.loss

    def loss(rgb, *args, **kwargs):
        value, stats = real(rgb, *args, **kwargs)
        return (value * float("nan") if trainer.step >= good_steps else value), stats

    trainer.guidance.loss = loss


def test_isolated_bad_steps_are_skipped_and_counted(tmp_path):
    trainer = tiny_trainer(tmp_path, steps=6)
    real, calls = trainer.guidance.loss, {"n": 0}

    def flaky(rgb, *args, **kwargs):
        calls["n"] += 1
        value, stats = real(rgb, *args, **kwargs)
        return (value * float("nan") if calls["n"] in (2, 3) else value), stats

    trainer.guidance.loss = flaky
    trainer.train()
    assert trainer.step == 6 and trainer.skipped == 2
    records = [json.loads(x) for x in (trainer.run_dir / "log.jsonl").read_text().splitlines()]
    assert sum(1 for r in records if r.get("skipped")) == 2
    assert all(torch.isfinite(p).all() for p in trainer.scene.field.parameters())


def test_persistent_nan_stops_with_the_last_good_checkpoint_intact(tmp_path):
    trainer = tiny_trainer(tmp_path, steps=20)
    poison_after(trainer, good_steps=4)
    with pytest.raises(TrainingDiverged, match="non-finite") as info:
        trainer.train()
    assert info.value.exit_code == 1
    last = ckpt.list_checkpoints(trainer.run_dir)[-1]
    assert last.name == "step_000004.safetensors"
    tensors, meta = ckpt.read_checkpoint(last)
    assert meta["step"] == 4 and all(torch.isfinite(v).all() for v in tensors.values() if v.is_floating_point())


def test_ctrl_c_finishes_the_step_saves_a_checkpoint_and_a_second_one_stops_at_once(tmp_path):
    import os
    import signal

    from t3d.engine import Interrupted

    trainer = tiny_trainer(tmp_path, steps=20)
    real = trainer.guidance.loss

    def ctrl_c_during_step_4(rgb, *args, **kwargs):
        if trainer.step == 3:  # the 4th step is running
            os.kill(os.getpid(), signal.SIGINT)
        return real(rgb, *args, **kwargs)

    trainer.guidance.loss = ctrl_c_during_step_4
    before = signal.getsignal(signal.SIGINT)  # SIG_IGN under a background shell, else Python's default
    with pytest.raises(Interrupted, match="--resume") as info:
        trainer.train()
    assert info.value.exit_code == 130
    # The interrupted step completed: its weights are saved under its own number, nothing after it.
    last = ckpt.list_checkpoints(trainer.run_dir)[-1]
    assert last.name == "step_000004.safetensors" and trainer.step == 4
    assert ckpt.read_checkpoint(last)[1]["step"] == 4
    assert signal.getsignal(signal.SIGINT) == before  # the caller's handler is put back

    # A second Ctrl-C within one step interrupts that step at once (KeyboardInterrupt, no checkpoint).
    trainer.cfg.steps = 30

    def two_ctrl_c(rgb, *args, **kwargs):
        if trainer.step == 6:
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGINT)
        return real(rgb, *args, **kwargs)

    trainer.guidance.loss = two_ctrl_c
    with pytest.raises(KeyboardInterrupt):
        trainer.train()
    assert signal.getsignal(signal.SIGINT) == before


def test_resolution_milestone_switches_the_training_render(tmp_path):
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
