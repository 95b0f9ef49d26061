"""`make bench` times the real training step through the Trainer's timing hook."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import torch

from t3d.commands.generate import resolve_framing
from t3d.engine import Trainer
from t3d.priors.factory import build_prior
from t3d.timing import StepTimer
from tests.helpers.configs import run_config

ROOT = Path(__file__).resolve().parent.parent


def _trainer(tmp_path, method: str) -> Trainer:
    cfg = run_config(method, {"render.resolution": 16, "camera.batch": 1, "field.grid_resolution": 16,
                              "render.samples_per_ray": 16, "analytic.resolution": 16,
                              "analytic.azimuth_step": 30.0, "analytic.jitter_copies": 1})
    cfg.prompt, cfg.steps = "a smiling head", 4
    prior = build_prior(cfg, torch.device("cpu"))
    resolve_framing(cfg, prior)
    return Trainer(cfg, tmp_path, prior, torch.device("cpu"))


def test_the_timing_hook_records_every_part_and_changes_no_number(tmp_path):
    plain, timed = _trainer(tmp_path / "a", "esd"), _trainer(tmp_path / "b", "esd")
    timed.timer = StepTimer(torch.device("cpu"))
    for _ in range(2):
        assert plain.train_step() == timed.train_step()  # same records: the hook only watches
        plain.step += 1
        timed.step += 1
    counts = timed.timer.counts
    for part in ("cameras", "render", "guidance", "encode", "noise", "prior", "baseline", "terms", "backward",
                 "optimizer", "update"):
        assert counts.get(part) == 2, (part, counts)
    assert all(seconds > 0 for seconds in timed.timer.totals.values())


def test_bench_driver_smoke():
    out = subprocess.run([sys.executable, str(ROOT / "examples" / "bench.py"), "--quick", "--smoke",
                          "--only", "analytic-cpu-64-esd", "--threads", "1"], capture_output=True, text=True, cwd=ROOT,
                         timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    (row,) = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    assert row["config"] == "analytic-cpu-64-esd" and row["ms_per_step"] > 0
    parts = row["breakdown_ms"]
    assert parts["render"] > 0 and parts["backward"] > 0 and parts["baseline"] > 0  # ESD evaluates eps_phi
