"""GSD's multi-view gradient consistency (guidance/terms/gradient_consistency.py): zero for
gradients that agree in 3D, gradient to density only, and the neighbour views it asks to render."""

from __future__ import annotations

from types import SimpleNamespace

import torch

from t3d.guidance.terms.gradient_consistency import GradientConsistency, NeighbourViews
from t3d.scene.config import FieldConfig
from t3d.scene.field import RadianceField
from t3d.scene.render import render
from t3d.scene.view_geometry import unproject
from tests.helpers.configs import distillation
from tests.helpers.scenes import ball_render, cameras


def test_consistency_loss_vanishes_for_gradients_that_agree_in_3d():
    size = 24
    cams = NeighbourViews(5.0)(cameras(0.0, 120.0))
    out = ball_render(cams, size)
    points = unproject(cams, out.depth / out.opacity.clamp_min(1e-6))
    # A smooth 3D vector field seen from every view: corresponding pixels share one vector.
    field = torch.stack([torch.sin(4 * points[..., 0]), torch.cos(3 * points[..., 1]), points[..., 2] + 2], 1)
    term = GradientConsistency(5.0)
    consistent = term.loss(SimpleNamespace(cameras=cams, render=out, grad=field))
    shuffled = term.loss(SimpleNamespace(cameras=cams, render=out, grad=torch.randn(field.shape)))
    assert float(consistent) < 0.05 * 5.0
    assert float(shuffled) > 0.5 * 5.0


def test_consistency_loss_sends_gradient_to_density_only():
    torch.manual_seed(0)
    field = RadianceField(FieldConfig(grid_resolution=16))
    cams = NeighbourViews(5.0)(cameras(10.0, 100.0))
    out = render(field, cams, 16, samples_per_ray=32, background=(1, 1, 1))
    grad = torch.randn(len(cams), 4, 16, 16, generator=torch.Generator().manual_seed(1))
    loss = GradientConsistency(5.0).loss(SimpleNamespace(cameras=cams, render=out, grad=grad))
    loss.backward()
    assert 0 < float(loss.detach()) < 10
    encoding_grad = sum(float(p.grad.abs().sum()) for p in field.encoding.parameters() if p.grad is not None)
    head = field.mlp[-1].weight.grad
    assert encoding_grad > 1e-6
    assert float(head[0].abs().sum()) > 1e-6  # the density output
    assert float(head[1:].abs().sum()) == 0.0  # colour never sees this loss


def test_neighbour_views_pair_each_camera_with_a_5_degree_neighbour():
    cams = cameras(178.0, -20.0, 40.0)
    both = NeighbourViews(5.0)(cams)
    assert len(both) == 6
    # Whole degrees, offset and wrapped: exact in fp32.
    assert torch.equal(both.azimuth, torch.tensor([178.0, -20.0, 40.0, -177.0, -25.0, 45.0]))
    assert torch.equal(both.elevation[3:], cams.elevation) and torch.equal(both.fovy[3:], cams.fovy)
    from t3d.priors.analytic import AnalyticPrior
    from t3d.priors.config import AnalyticConfig

    prior = AnalyticPrior(AnalyticConfig(resolution=16, azimuth_step=60, elevations=(10.0,), jitter_copies=1))
    sds = distillation(prior, "a head", "sds")
    gsd = distillation(prior, "a head", "sds", {"guidance.noise.kind": "consistent",
                                               "guidance.terms.consistency.weight": 5.0})
    assert sds.cameras_for_step(cams) is cams and len(gsd.cameras_for_step(cams)) == 6
