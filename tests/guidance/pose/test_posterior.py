"""The exact pose posteriors of the analytic prior (guidance/pose/posterior.py): p(k | x0) classifies
the references by their pose, p(k | x_t) is the prior's posterior summed per class."""

import pytest
import torch

from t3d.priors.analytic import AnalyticPrior
from t3d.priors.config import AnalyticConfig
from t3d.guidance.pose.classifier import pose_class_of
from t3d.guidance.pose.posterior import ExactCleanPosePosterior, ExactPosePosterior
from tests.helpers.tolerances import sum_rounding


@pytest.fixture(scope="module")
def analytic32():
    return AnalyticPrior(AnalyticConfig(resolution=32, azimuth_step=10.0))


def test_clean_pose_posterior_classifies_references_by_their_pose(analytic32):

    post = ExactCleanPosePosterior(analytic32, "a head", 4)
    refs = analytic32.refs
    head = (refs.group == analytic32.group_of("a head")).nonzero().flatten()[::5]
    p = post.log_probs(refs.images[head]).exp()  # clean images in [0, 1], as the rectifier decodes them
    assert torch.equal(p.argmax(1), pose_class_of(refs.azimuth[head], 4))
    # Class probabilities are sums of the N references' posterior weights, then log and exp.
    assert torch.allclose(p.sum(1), torch.ones(len(head)), rtol=0, atol=sum_rounding(1.0, len(refs)))


def test_exact_pose_posterior_is_the_prior_posterior_summed_per_class(analytic32):

    post = ExactPosePosterior(analytic32, "a head", 4)
    refs = analytic32.refs
    head = (refs.group == analytic32.group_of("a head")).nonzero().flatten()
    x0 = refs.images[head[:6]] * 2 - 1
    # At small t each reference image is classified as its own pose class with certainty.
    p_small = post.log_probs_noisy(x0, torch.full((6,), 1)).exp()
    assert torch.equal(p_small.argmax(1), pose_class_of(refs.azimuth[head[:6]], 4))
    assert torch.allclose(p_small.sum(1), torch.ones(6), rtol=0, atol=sum_rounding(1.0, len(refs)))
    # Law of total probability: over x_t drawn from the prior's own noised mixture, the mean of
    # p(k | x_t) is the prompt's class marginal (the default front_mass puts 0.75 on front).
    gen = torch.Generator().manual_seed(0)
    log_pi = analytic32.embed(["a head"])[0]
    n, t = 600, 700
    pick = torch.multinomial(log_pi.exp(), n, replacement=True, generator=gen)
    a2 = analytic32.alphas_cumprod[t]
    std = (a2 * analytic32.cfg.bandwidth**2 + 1 - a2).sqrt()
    x_t = a2.sqrt() * analytic32.ref_x[pick] + std * torch.randn(n, analytic32.ref_x.shape[1], generator=gen)
    p_mean = post.log_probs_noisy(x_t.view(n, 3, 32, 32), torch.full((n,), t)).exp().mean(0)
    marginal = log_pi.exp() @ post.class_onehot
    # Monte Carlo error, not rounding: over these 600 seeded draws the class means have sd <= 0.017
    # (measured); 0.04 is ~2.4 sd, and rounding moves the means by ~1e-6.
    assert torch.allclose(p_mean, marginal, rtol=0, atol=0.04), (p_mean, marginal)
    x = x0.clone().requires_grad_(True)
    post.log_probs_noisy(x, torch.full((6,), 600))[:, 1].sum().backward()
    assert x.grad.abs().sum() > 0
