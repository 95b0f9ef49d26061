"""Deterministic DDIM moves (priors/ddim.py): inversion and sampling are each other's inverse on
the guided analytic prior, up to the discretisation error of the grid."""

import pytest
import torch

from t3d.priors.analytic import AnalyticPrior
from t3d.priors.config import AnalyticConfig
from t3d.priors.ddim import ddim_invert, ddim_sample, inversion_levels
from t3d.scene.cameras import orbit_cameras
from tests.helpers.configs import distillation

NO_VIEW_PROMPTS = {"prompts.view_prompts": False}


@pytest.fixture(scope="module")
def head_prior():
    """The built-in prior (three objects, so CFG on "a smiling head" matters), small references."""
    return AnalyticPrior(AnalyticConfig(resolution=16, azimuth_step=30, jitter_copies=1), "cpu")


def rel_err(a, b):
    return ((a - b).flatten(1).norm(dim=1) / b.flatten(1).norm(dim=1)).max().item()


def test_ddim_round_trip_on_the_analytic_prior(head_prior):
    """Invert a prior sample to t and run DDIM back. Measured (max relative error of 2 images):
    CFG 1: 0.035 with 100 steps to t = 0.98, 0.49 with the paper's int(10 t) = 9 steps;
    CFG 7.5 (its own sample): 0.035 with 100 steps, 0.19 with 9; the CFG-1 sample through CFG 7.5:
    0.47 with 100 steps (inversion error grows with CFG off the guided model's samples). The analytic prior's samples carry kernel noise (bandwidth 0.25) whose score is stiff
    near t = 0, which is what coarse grids miss; the error falls as the grid is refined."""
    sd = distillation(head_prior, "a smiling head", "sds", NO_VIEW_PROMPTS)
    cams = orbit_cameras(2)

    def eps_at(scale):
        return lambda x, t: sd.guide.eps(x, t, cams, scale=scale)

    x_T = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    errors = {}
    for scale in (1.0, 7.5):
        # A sample of the guided model itself: a CFG-1 sample inverted at CFG 7.5 sits where the
        # guided field extrapolates hard (the pose-free unconditional makes CFG pull to the front)
        # and does not come back (measured 0.47 even with 300 steps).
        x0 = ddim_sample(head_prior, eps_at(scale), x_T, inversion_levels(torch.full((2,), 999), 100))
        for n in (9, 100):
            levels = inversion_levels(torch.full((2,), 980), n)
            assert levels.min() == 0 and levels[-1].eq(980).all()  # from the clean image, never negative
            x_t = ddim_invert(head_prior, eps_at(scale), x0, levels)
            errors[scale, n] = rel_err(ddim_sample(head_prior, eps_at(scale), x_t, levels), x0)
    assert errors[1.0, 100] < 0.05
    assert errors[1.0, 100] < 0.2 * errors[1.0, 9]  # converges as the grid is refined
    assert errors[7.5, 100] < 0.05
    # CFG > 1 inverts worse an image that is not its own sample (the paper's point about inversion
    # with CFG): the CFG-1 sample through CFG 7.5 and back, 100 steps.
    x0 = ddim_sample(head_prior, eps_at(1.0), x_T, inversion_levels(torch.full((2,), 999), 100))
    levels = inversion_levels(torch.full((2,), 980), 100)
    crossed = rel_err(ddim_sample(head_prior, eps_at(7.5), ddim_invert(head_prior, eps_at(7.5), x0, levels), levels), x0)
    assert crossed > 5 * errors[1.0, 100]
