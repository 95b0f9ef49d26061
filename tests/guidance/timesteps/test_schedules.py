"""Timestep schedules (guidance/timesteps/): RecDreamer's back-and-forth ranges and
ProlificDreamer's t_max milestone, built from the config as a run builds them."""

from types import SimpleNamespace

import torch

from t3d.guidance.timesteps.config import TIMESTEPS
from t3d.guidance.timesteps.schedules import bnf_range
from tests.helpers.configs import run_config


def build_schedule(settings: dict):
    """The timestep piece a run with these settings uses (on a prior with T = 1000)."""
    cfg = run_config("sds", settings).guidance.timesteps
    return TIMESTEPS.build(cfg, SimpleNamespace(prior=SimpleNamespace(num_train_timesteps=1000)))


def test_bnf_schedule_goes_forth_and_back():
    # n_i = 2: the run has 4 intervals: [0.5, .98], [.02, .98], [.02, .98], [.02, 0.5].
    assert bnf_range(0.1, 2, 0.02, 0.98) == (0.5, 0.98)
    assert bnf_range(0.3, 2, 0.02, 0.98) == (0.02, 0.98)
    assert bnf_range(0.6, 2, 0.02, 0.98) == (0.02, 0.98)
    assert bnf_range(0.9, 2, 0.02, 0.98) == (0.02, 0.5)
    sched = build_schedule({"guidance.timesteps.kind": "bnf", "guidance.timesteps.intervals": 4})
    gen = torch.Generator().manual_seed(0)
    early = sched.sample(256, 0.05, gen)
    late = sched.sample(256, 0.99, gen)
    assert early.min() >= 750 and late.max() <= 250


def test_t_max_milestone_drops_t_max_after_its_fraction_of_the_run():
    sched = build_schedule({"guidance.timesteps.max_milestone": (0.2, 0.5)})
    gen = torch.Generator().manual_seed(0)
    early, late = sched.sample(4000, 0.1, gen), sched.sample(4000, 0.2, gen)
    assert early.max() > 900 and early.min() >= 20
    assert late.max() <= 500 and late.min() >= 20 and late.float().mean() > 200
