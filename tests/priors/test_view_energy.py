"""The analytic prior's view energy: a view phrase makes the references outside its bin look
farther, by adherence / (1 - adherence) view gaps, at every noise level (docs/janus-findings.md)."""

import math

import torch

from t3d.priors.config import AnalyticConfig
from t3d.priors.analytic import AnalyticPrior
from t3d.priors.mixture import mixture_posterior
from t3d.priors.base import guided_eps
from t3d.priors.references import ReferenceSet


def toy_prior(adherence=0.5, bandwidth=0.0):
    """Two 4x4 references: the front (azimuth 0) and the back (180) of one object."""
    images = torch.rand(2, 3, 4, 4, generator=torch.Generator().manual_seed(0))
    refs = ReferenceSet(images, azimuth=torch.tensor([0.0, 180.0]), elevation=torch.tensor([10.0, 10.0]),
                        group=torch.tensor([0, 0]), group_names=["toy"], group_words=[("toy",)])
    return AnalyticPrior(AnalyticConfig(bandwidth=bandwidth, adherence=adherence, front_mass=0.75), "cpu", refs=refs)


def gap(prior):
    return float(((prior.ref_x[0] - prior.ref_x[1]) ** 2).sum())  # each one's nearest other-bin reference


def test_only_a_view_phrase_below_full_adherence_has_energy():
    prior = toy_prior()
    assert not prior.view_energy("a toy").any() and not prior.view_energy("").any()
    back = prior.view_energy("a toy, back view")
    # The view gap of a two-reference object is their squared distance; 0.5 / (1 - 0.5) = 1 gap.
    assert back[1] == 0 and math.isclose(float(back[0]), gap(prior), rel_tol=1e-5)
    assert not toy_prior(adherence=1.0).view_energy("a toy, back view").any()  # masked instead
    assert not toy_prior(adherence=0.0).view_energy("a toy, back view").any()


def test_the_energy_enters_the_posterior_as_extra_squared_distance():
    prior = toy_prior(bandwidth=0.3)
    cond = prior.embed(["a toy, back view"])
    x0 = (0.7 * prior.ref_x[0] + 0.3 * prior.ref_x[1]).view(1, 3, 4, 4)
    for step in (100, 500, 900):
        t = torch.tensor([step])
        x_t = prior.schedule.add_noise(x0, torch.randn(x0.shape, generator=torch.Generator().manual_seed(step)), t)
        a2 = float(prior.alphas_cumprod[step])
        var = a2 * 0.3**2 + (1 - a2)
        d = ((x_t.reshape(1, -1) - math.sqrt(a2) * prior.ref_x) ** 2).sum(-1)
        logit = cond[0] - (d + a2 * torch.tensor([gap(prior), 0.0])) / (2 * var)
        want = torch.softmax(logit, 0)
        # float32 distances of 48 values of order 1: relative rounding ~1e-6 on logits of order 10
        assert torch.allclose(prior.posterior(x_t, t, cond)[0], want, atol=1e-4)


def test_an_undecided_view_follows_its_prompt_a_formed_one_keeps_its_pose():
    prior = toy_prior(adherence=0.3)  # energy 0.3 / 0.7 = 0.43 gaps
    cond = prior.embed(["a toy, back view"])
    t = torch.tensor([200])
    undecided = (0.6 * prior.ref_x[0] + 0.4 * prior.ref_x[1]).view(1, 3, 4, 4)  # closer to the front by 0.2 gaps
    formed = prior.ref_x[0].view(1, 3, 4, 4)  # the front itself: closer by 1 gap
    for x0, winner in ((undecided, 1), (formed, 0)):
        x_t = prior.schedule.add_noise(x0, torch.zeros_like(x0), t)
        assert prior.posterior(x_t, t, cond)[0].argmax() == winner
    # With the mass alone (no energy) the undecided view snaps to its nearest reference, the front.
    x_t = prior.schedule.add_noise(undecided, torch.zeros_like(undecided), t)
    a2 = prior.alphas_cumprod[t].float()[:, None]
    mass_only = mixture_posterior(x_t.reshape(1, -1), a2, prior.ref_x, prior.ref_sqnorm, cond, 0.0)
    assert mass_only[0].argmax() == 0


def test_the_energy_follows_embedded_rows_through_cfg_batches():
    prior = toy_prior(bandwidth=0.3)
    cond, uncond = prior.embed(["a toy, back view"]), prior.embed([""])
    x0 = (0.6 * prior.ref_x[0] + 0.4 * prior.ref_x[1]).view(1, 3, 4, 4)
    t = torch.tensor([300])
    x_t = prior.schedule.add_noise(x0, torch.randn(x0.shape, generator=torch.Generator().manual_seed(3)), t)
    alone_c, alone_u = prior.eps(x_t, t, cond), prior.eps(x_t, t, uncond)
    both = prior.eps(torch.cat([x_t, x_t]), torch.cat([t, t]), torch.cat([uncond, cond]))
    # batched vs single matmuls round differently: float32 eps values of order 1
    assert torch.allclose(both[0], alone_u[0], atol=1e-5) and torch.allclose(both[1], alone_c[0], atol=1e-5)
    assert not torch.allclose(alone_c, alone_u, atol=1e-2)  # the energy (and mass) changed the cond branch
    guided = guided_eps(prior, x_t, t, cond, uncond, 7.5)
    # CFG arithmetic on the two eps above: a few float32 roundings of values of order 1
    assert torch.allclose(guided, alone_u + 7.5 * (alone_c - alone_u), atol=1e-5)
    # A row equal to no embedded prompt (e.g. a Perp-Neg mixture of two) carries no energy.
    mixed = 0.5 * cond + 0.5 * prior.embed(["a toy, front view"])
    assert prior._split(mixed)[1].abs().sum() == 0
