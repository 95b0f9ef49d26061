"""The analytic prior: its denoiser is the exact posterior of its smoothed reference mixture,
prompts select objects and view bins, and its exact samples follow the prompt's mass."""

import math

import pytest
import torch

from t3d.priors.analytic import AnalyticPrior, parse_view
from t3d.priors.base import guided_eps
from t3d.priors.config import AnalyticConfig
from t3d.priors.references import ReferenceSet
from tests.helpers.tolerances import mixture_eps_rounding, sum_rounding

# Log weights of a few entries, normalised in fp32, then exp: about 4 roundings of values <= 1.
WEIGHT_TOL = sum_rounding(1.0, 4)


def two_reference_prior(bandwidth=0.0, adherence=0.5, res=4):
    gen = torch.Generator().manual_seed(0)
    images = torch.rand(2, 3, res, res, generator=gen)
    refs = ReferenceSet(images, azimuth=torch.tensor([0.0, 180.0]), elevation=torch.tensor([10.0, 10.0]),
                        group=torch.tensor([0, 0]), group_names=["toy"], group_words=[("toy",)])
    cfg = AnalyticConfig(bandwidth=bandwidth, adherence=adherence, front_mass=0.75)
    return AnalyticPrior(cfg, "cpu", refs=refs)


def brute_force_eps(prior, x_t, t, log_pi):
    """eps = -s_t * grad log p_t(x_t), with p_t a Gaussian mixture, by autograd in float64."""
    a2 = prior.alphas_cumprod[t].double()
    var = a2 * prior.cfg.bandwidth**2 + (1 - a2)
    x = x_t.double().reshape(-1).requires_grad_(True)
    centres = a2.sqrt() * prior.ref_x.double()
    log_comp = -((x[None] - centres) ** 2).sum(-1) / (2 * var) + log_pi.double()
    log_p = torch.logsumexp(log_comp, dim=0)
    (grad,) = torch.autograd.grad(log_p, x)
    return (-(1 - a2).sqrt() * grad).view_as(x_t).float()


@pytest.mark.parametrize("bandwidth", [0.0, 0.3])
@pytest.mark.parametrize("t", [50, 400, 900])
def test_eps_matches_the_mixture_score(bandwidth, t):
    prior = two_reference_prior(bandwidth)
    cond = prior.embed(["a toy"])
    x0 = 0.5 * prior.ref_x[0].view(1, 3, 4, 4) + 0.5 * prior.ref_x[1].view(1, 3, 4, 4)
    noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(1))
    tt = torch.tensor([t])
    x_t = prior.schedule.add_noise(x0, noise, tt)
    got = prior.eps(x_t, tt, cond)
    want = brute_force_eps(prior, x_t, tt, cond[0])
    tol = mixture_eps_rounding(x_t, prior.ref_x, cond[0], float(prior.alphas_cumprod[t]), bandwidth)
    torch.testing.assert_close(got, want, rtol=0, atol=tol)


def test_small_noise_returns_the_nearest_reference():
    prior = two_reference_prior(bandwidth=0.0)
    cond = prior.embed(["a toy"])
    x0 = 0.8 * prior.ref_x[1].view(1, 3, 4, 4) + 0.2 * prior.ref_x[0].view(1, 3, 4, 4)
    t = torch.tensor([5])
    x_t = prior.schedule.add_noise(x0, torch.zeros_like(x0), t)
    denoised = prior.denoise(x_t, t, cond)
    # The posterior is saturated (the other weight underflows): w @ refs is the reference up to a
    # rounding or two of values <= 1.
    torch.testing.assert_close(denoised, prior.ref_x[1].view(1, 3, 4, 4), rtol=0, atol=sum_rounding(1.0, 2))


def test_pose_bias_puts_front_mass_on_front_references():
    prior = two_reference_prior()
    weights = prior.embed(["a toy"])[0].exp()
    assert torch.allclose(weights, torch.tensor([0.75, 0.25]), rtol=0, atol=WEIGHT_TOL)


def test_unconditional_has_no_pose_bias_so_cfg_amplifies_the_front():
    prior = two_reference_prior()
    assert torch.allclose(prior.embed([""])[0].exp(), torch.tensor([0.5, 0.5]), rtol=0, atol=WEIGHT_TOL)
    biased = two_reference_prior()
    biased.cfg.uncond_pose = "biased"
    assert torch.allclose(biased.embed([""])[0].exp(), torch.tensor([0.75, 0.25]), rtol=0, atol=WEIGHT_TOL)
    # Halfway between the two references at high noise: the guided denoiser leans to the front
    # (reference 0) more the higher the guidance scale; with a biased unconditional CFG adds nothing.
    x_t = (0.5 * (prior.ref_x[0] + prior.ref_x[1])).view(1, 3, 4, 4) * prior.alphas_cumprod[800].sqrt()
    t = torch.tensor([800])
    front_share, rounding = [], 0.0
    for p in (prior, biased):
        cond, uncond = p.embed(["a toy"]), p.embed([""])
        for scale in (1.0, 7.5, 100.0):
            eps = guided_eps(p, x_t, t, cond, uncond, scale)
            x0 = (x_t - (1 - p.alphas_cumprod[800]).sqrt() * eps) / p.alphas_cumprod[800].sqrt()
            d = x0.reshape(-1) - p.ref_x[1]
            front_share.append(float(d @ (p.ref_x[0] - p.ref_x[1]) / (p.ref_x[0] - p.ref_x[1]).square().sum()))
        if p is biased:
            # eps_c - eps_u is rounding only (the same mixture: D-term sums of size |eps|); CFG 100
            # multiplies it by 99, x0 by s/a, and the share divides |dx0| by |r0 - r1|.
            a2, d = float(p.alphas_cumprod[800]), p.ref_x.shape[1]
            rounding = 99 * sum_rounding(eps.abs().max(), d) * math.sqrt(d * (1 - a2) / a2) / float(
                (p.ref_x[0] - p.ref_x[1]).norm())
    uniform_1, uniform_7, uniform_100, biased_1, biased_7, biased_100 = front_share
    assert uniform_1 < uniform_7 < uniform_100 and uniform_100 > 5 * uniform_7
    assert abs(biased_100 - biased_1) < rounding < 0.01 * (uniform_100 - uniform_1)


def test_full_adherence_masks_references_outside_the_view_bin():
    prior = two_reference_prior(adherence=1.0)
    back = prior.embed(["a toy, back view"])[0]
    assert back[0] == -math.inf and back[1] == 0.0
    # Even when x_t sits on the front reference, CFG with a back-view prompt uses only the back one.
    t = torch.tensor([20])
    x_t = prior.schedule.add_noise(prior.ref_x[0].view(1, 3, 4, 4), torch.zeros(1, 3, 4, 4), t)
    w = prior.posterior(x_t, t, prior.embed(["a toy, back view"]))
    assert w[0, 0] == 0.0 and w[0, 1] == 1.0
    eps = guided_eps(prior, x_t, t, prior.embed(["a toy, back view"]), prior.embed([""]), 7.5)
    assert torch.isfinite(eps).all()


def test_partial_adherence_mixes_the_bin_in():
    prior = two_reference_prior(adherence=0.5)
    back = prior.embed(["a toy, back view"])[0].exp()
    # (1 - rho) * pose-biased + rho * back-only = 0.5 * [0.75, 0.25] + 0.5 * [0, 1]
    assert torch.allclose(back, torch.tensor([0.375, 0.625]), rtol=0, atol=WEIGHT_TOL)


def test_view_phrases_are_parsed():
    assert parse_view("a cat, front view") == 0
    assert parse_view("a cat, side view") == 1
    assert parse_view("a cat, back view") == 2
    assert parse_view("a cat, top view") == 3 and parse_view("a cat, overhead view") == 3
    assert parse_view("a cat") is None


def test_builtin_prior_selects_objects_by_keyword():
    from t3d.errors import T3dError

    prior = AnalyticPrior(AnalyticConfig(resolution=16, azimuth_step=30, jitter_copies=1), "cpu")
    assert set(prior.refs.group_names) >= {"head", "mug", "bird"}
    head = prior.refs.group_names.index("head")
    weights = prior.embed(["a smiling head"])[0].exp()
    assert weights[prior.refs.group != head].sum() == 0
    assert abs(weights.sum().item() - 1) < sum_rounding(1.0, len(weights))  # an fp32 sum of N weights
    uncond = prior.embed([""])[0].exp()
    assert (uncond > 0).all()
    with pytest.raises(T3dError, match="head"):
        prior.check_prompt("a spaceship")


def test_prior_samples_follow_the_prompt_mass():

    prior = AnalyticPrior(AnalyticConfig(resolution=16, azimuth_step=30, jitter_copies=1, bandwidth=0.0))
    x = prior.samples("a smiling head", 50, torch.Generator().manual_seed(0))  # what FID compares against
    refs = prior.refs.images.reshape(len(prior.refs), -1)
    nearest = torch.cdist(x.reshape(50, -1), refs).argmin(1)
    assert x.shape == (50, 3, 16, 16)
    assert (prior.refs.group[nearest] == prior.group_of("a head")).all()  # bandwidth 0: exact head references
