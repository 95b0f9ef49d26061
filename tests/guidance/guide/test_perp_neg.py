"""Perp-Neg: weights f(r) at fixed azimuths, perpendicular negatives, one prior call per step,
and the same guide on both priors (analytic log-weights and a tiny random SD)."""

from __future__ import annotations

import math

import pytest
import torch

from t3d.cli import main
from t3d.config import validate
from t3d.errors import T3dError
from t3d.guidance.guide.perp_neg import (FRONT, SIDE, PerpNegGuide, mix_conditions, perp_neg_plan,
                                         perpendicular_component)
from t3d.priors.analytic import AnalyticPrior
from t3d.priors.config import AnalyticConfig
from t3d.priors.references import ReferenceSet
from t3d.prompts.views import ViewPrompts
from t3d.scene.cameras import Cameras
from tests.helpers.configs import distillation, run_config
from tests.helpers.tolerances import sum_rounding

PERP_NEG = {"guidance.guide.kind": "perp_neg"}


def f(a, b, c, r):
    return a * math.exp(-b * r) + c


def cameras(azimuths, elevations=None):
    n = len(azimuths)
    el = torch.tensor(elevations if elevations is not None else [0.0] * n)
    return Cameras(torch.tensor(azimuths, dtype=torch.float32), el, torch.full((n,), 2.0), torch.full((n,), 45.0))


def toy_prior(adherence=0.5):
    """Two objects ("head", "mug") with references all around, so conditionings hold -inf entries."""
    n = 12
    images = torch.rand(2 * n, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    az = torch.linspace(-180, 180, n + 1)[:-1].repeat(2)
    group = torch.arange(2).repeat_interleave(n)
    refs = ReferenceSet(images, az, torch.zeros(2 * n), group, ["head", "mug"], [("head",), ("mug",)])
    return AnalyticPrior(AnalyticConfig(bandwidth=0.1, adherence=adherence), "cpu", refs=refs)


def test_perpendicular_component_is_orthogonal_to_the_positive_direction():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(3, 4, 8, 8, generator=g), torch.randn(3, 4, 8, 8, generator=g)
    perp = perpendicular_component(x, y)
    cos = torch.nn.functional.cosine_similarity(perp.flatten(1), y.flatten(1), dim=1)
    d = x[0].numel()
    # perp . y is left over from D-term fp32 dot products of size |x||y|: cos ~ eps sqrt(D) |x| / |perp|.
    assert cos.abs().max() < sum_rounding(2 * (x.flatten(1).norm(dim=1) / perp.flatten(1).norm(dim=1)).max() + 1, d)
    # What was removed is parallel to y: x = perp + k y. Both k's are ratios of D-term dot products:
    # they differ by ~eps sqrt(D) |x| / |y|, times |y_i|, plus one rounding of x - perp.
    k = ((x - perp).flatten(1) * y.flatten(1)).sum(1) / (y.flatten(1) ** 2).sum(1)
    scale = x.abs().max() + (x.flatten(1).norm(dim=1) / y.flatten(1).norm(dim=1)).max() * y.abs().max()
    torch.testing.assert_close(x - perp, k.view(-1, 1, 1, 1) * y, rtol=0, atol=sum_rounding(scale, d))


def test_weights_match_the_formula_at_five_azimuths():
    plan = perp_neg_plan(torch.tensor([0.0, 45.0, 90.0, 135.0, 180.0, -45.0]), torch.zeros(6))
    fs, sf, sb, fsb = (4, 0.5, -2.426), (4, 0.5, -2.426), (1, 0.5, -0.606), (1, 0.5, 0.967)
    # (positive weights over front, side, back, overhead; negatives (view, f(r)))
    expected = [
        ([1.0, 0.0, 0.0, 0], [(FRONT, f(*fs, 1.0)), (SIDE, f(*sf, 0.0))]),  # 0: r = 1, pure front
        ([0.5, 0.5, 0.0, 0], [(FRONT, f(*fs, 0.5)), (SIDE, f(*sf, 0.5))]),  # 45: r = 0.5
        ([0.0, 1.0, 0.0, 0], [(SIDE, f(*sb, 1.0)), (FRONT, f(*fsb, 1.0))]),  # 90: side-back half, r = 1
        ([0.0, 0.5, 0.5, 0], [(SIDE, f(*sb, 0.5)), (FRONT, f(*fsb, 0.5))]),  # 135: r = 0.5
        ([0.0, 0.0, 1.0, 0], [(SIDE, f(*sb, 0.0)), (FRONT, f(*fsb, 0.0))]),  # 180: r = 0, pure back
        ([0.5, 0.5, 0.0, 0], [(FRONT, f(*fs, 0.5)), (SIDE, f(*sf, 0.5))]),  # -45: symmetric
    ]
    # f in fp32 against fp64: exp, a product and a sum of values <= 4, and the constants' own fp32
    # rounding, about 6 roundings of size <= 4.
    f_tol = sum_rounding(4.0, 6)
    for i, (pos, negs) in enumerate(expected):
        assert plan.pos_weights[i].tolist() == pos  # multiples of 45 degrees: r is 0, 0.5 or 1, exact
        assert plan.neg_index[i].tolist() == [v for v, _ in negs]
        assert plan.neg_weight[i].tolist() == pytest.approx([w for _, w in negs], rel=0, abs=f_tol)
    # Spot values by hand: at 0 the side negative weighs 4 - 2.426, at 180 the front one 1 + 0.967.
    assert plan.neg_weight[0, 1].item() == pytest.approx(1.574, rel=0, abs=f_tol)
    assert plan.neg_weight[4].tolist() == pytest.approx([0.394, 1.967], rel=0, abs=f_tol)
    overhead = perp_neg_plan(torch.tensor([30.0]), torch.tensor([70.0]))
    assert overhead.pos_weights[0].tolist() == [0, 0, 0, 1] and overhead.neg_weight[0].tolist() == [0, 0]


class CountingPrior:
    """Wraps a prior: counts its eps calls and rows, and evaluates each row with its own call, as
    the row-by-row reference does. A batched call runs other kernels than a single row (its rounding
    differs by CPU); row by row, guide and reference see the same prior bits, so the comparison
    covers Perp-Neg's own arithmetic only."""

    def __init__(self, prior):
        self.inner, self.calls, self.rows = prior, 0, []

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def eps(self, x_t, t, cond):
        self.calls += 1
        self.rows.append(x_t.shape[0])
        return torch.cat([self.inner.eps(x_t[i:i + 1], t[i:i + 1], cond[i:i + 1]) for i in range(x_t.shape[0])])


def _reference_eps(prior, views, x_t, t, cams, scale):
    """Perp-Neg computed row by row with separate prior calls, straight from the formula; returns
    it with the tolerance for comparing another fp32 evaluation of the formula against it."""
    conds = prior.embed(views.all_prompts())
    uncond = prior.embed([""])
    plan = perp_neg_plan(cams.azimuth, cams.elevation)
    out, coefficient_error = [], 0.0
    for i in range(x_t.shape[0]):
        xi, ti = x_t[i:i + 1], t[i:i + 1]
        pos = mix_conditions(conds, plan.pos_weights[i:i + 1])
        eps_u = prior.eps(xi, ti, uncond)
        e_pos = prior.eps(xi, ti, pos) - eps_u
        total = torch.zeros_like(e_pos)
        for j in range(2):
            w = plan.neg_weight[i, j].item()
            if w:
                e_neg = prior.eps(xi, ti, conds[plan.neg_index[i, j]][None]) - eps_u
                flat_n, flat_p = e_neg.flatten(), e_pos.flatten()
                total += w * (e_neg - (flat_n @ flat_p) / (flat_p @ flat_p) * e_pos)
                # k = n.p / p.p from D-term dot products summed in another order: k is off by up to
                # ~2 eps sqrt(D) |n| / |p| (sum_rounding's unit), which moves k p_i by that times |p_i|.
                coefficient_error += scale * w * 2 * float(flat_n.norm() / flat_p.norm() * flat_p.abs().max())
        out.append(eps_u + scale * (e_pos - total))
    eps = torch.cat(out)
    # The projections' coefficients, plus the few roundings of the remaining sums of |eps|-sized values.
    tol = sum_rounding(coefficient_error, x_t[0].numel()) + sum_rounding(eps.abs().max(), 8)
    return eps, tol


def test_analytic_guide_one_call_and_matches_the_formula():
    prior = CountingPrior(toy_prior())
    sds = distillation(prior, "a head", "sds", {**PERP_NEG, "guidance.guide.scale": 7.5})
    assert isinstance(sds.guide, PerpNegGuide)
    cams = cameras([10.0, 100.0, 170.0, 20.0], [0.0, 0.0, 0.0, 75.0])  # the last one is overhead
    image = torch.rand(4, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    sds.loss(image, cams, 0.3, torch.Generator().manual_seed(2))
    # One prior call per step: [pos x4, uncond x4, 2 negatives for each non-overhead camera].
    assert prior.calls == 1 and prior.rows == [4 + 4 + 2 * 3]
    ctx = sds.last
    expected, tol = _reference_eps(prior.inner, sds.views, ctx.x_t, ctx.t, cams, 7.5)
    torch.testing.assert_close(ctx.eps_prior, expected, rtol=0, atol=tol)


def test_analytic_interpolation_is_a_geometric_mixture_of_reference_weights():
    prior = toy_prior()
    conds = prior.embed(["a head, front view", "a head, side view"])
    assert torch.isinf(conds).any()  # the mug's references are masked out for "a head"
    r = 0.3
    mixed = mix_conditions(conds, torch.tensor([[r, 1 - r]]))[0]
    assert not torch.isnan(mixed).any()
    pi_f, pi_s = conds[0].exp(), conds[1].exp()
    geometric = pi_f**r * pi_s ** (1 - r)
    # exp of a 2-term log mix vs a product of powers: a few roundings of weights <= 1, then N-term sums.
    torch.testing.assert_close(torch.softmax(mixed, 0), geometric / geometric.sum(), rtol=0,
                               atol=sum_rounding(1.0, conds.shape[1]))
    # r = 1 gives exactly the front conditioning (a zero weight adds nothing, not 0 * -inf = nan):
    # 1 * v + 0 is v, bit for bit.
    assert torch.equal(mix_conditions(conds, torch.tensor([[1.0, 0.0]]))[0], conds[0])


def test_disjoint_analytic_bins_are_refused(tmp_path, capsys):
    with pytest.raises(T3dError, match="adherence"):
        distillation(toy_prior(adherence=1.0), "a head", "sds", PERP_NEG)
    # The prior decides whether its view conditionings can be interpolated, so a run finds out when
    # its guide is built: still one line, exit 2, before the run folder is touched.
    code = main(["generate", "a smiling head", "--perp-neg", "--adherence", "1", "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 2 and "adherence below 1" in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "r").exists()
    cfg = run_config("sds", {**PERP_NEG, "prompts.view_prompts": False})
    cfg.prompt = "a head"
    with pytest.raises(T3dError, match="view prompts"):
        validate(cfg)


@pytest.mark.slow  # minutes under load: make test-slow (CI runs it)
def test_sd_guide_one_call_and_interpolated_clip_states(tmp_path_factory):
    from t3d.priors.stable_diffusion import StableDiffusionPrior
    from t3d.priors.tiny_sd import random_sd_parts

    inner = StableDiffusionPrior.from_parts("tiny-sd", **random_sd_parts(tmp_path_factory.mktemp("perp_sd_tok")))
    prior = CountingPrior(inner)
    guide = PerpNegGuide(prior, 7.5, ViewPrompts("a dog"))
    cams = cameras([45.0, 135.0])
    pos, _ = guide.conditions(cams)
    front, side, back = inner.embed(["a dog, front view", "a dog, side view", "a dog, back view"])
    # Two halves and zeros summed, maybe in another order: one rounding of the values' size apart.
    torch.testing.assert_close(pos[0], 0.5 * front + 0.5 * side, rtol=0, atol=sum_rounding(front.abs().max(), 2))
    torch.testing.assert_close(pos[1], 0.5 * side + 0.5 * back, rtol=0, atol=sum_rounding(side.abs().max(), 2))
    g = torch.Generator().manual_seed(0)
    x_t = torch.randn(2, 4, inner.latent_size, inner.latent_size, generator=g)
    t = torch.tensor([300, 700])
    eps = guide.eps(x_t, t, cams)
    assert prior.calls == 1 and prior.rows == [2 + 2 + 4] and torch.isfinite(eps).all()
    expected, tol = _reference_eps(inner, guide.views, x_t, t, cams, 7.5)
    torch.testing.assert_close(eps, expected, rtol=0, atol=tol)
