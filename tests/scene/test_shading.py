"""Diffuse shading from depth-map normals: right normals, background untouched, gradients to depth."""

import torch

from t3d.scene.cameras import orbit_cameras
from t3d.scene.render import render
from t3d.scene.shading import depth_normals, shade
from tests.helpers.scenes import ConstantBall
from tests.helpers.tolerances import sum_rounding


def ball_render(resolution=32):
    cams = orbit_cameras(2, elevation=20.0, distance=2.0, fovy=45.0)
    return cams, render(ConstantBall(50.0, 0.5), cams, resolution, samples_per_ray=128)


def test_depth_normals_of_a_ball_point_away_from_its_centre():
    cams, out = ball_render()
    normal = depth_normals(out.depth, cams)
    origins, dirs = cams.rays(32)
    points = origins + dirs * out.depth.permute(0, 2, 3, 1)
    radial = torch.nn.functional.normalize(points, dim=-1).permute(0, 3, 1, 2)
    solid = (out.opacity > 0.999).float()
    # Pixels whose 8 neighbours are on the ball too (the differences at the rim mix in background).
    inner = -torch.nn.functional.max_pool2d(-solid, 3, stride=1, padding=1)[:, 0] > 0.5
    cos = (normal * radial).sum(1)[inner]
    assert inner.sum() > 200 and cos.mean() > 0.98 and cos.min() > 0.85


def test_shading_darkens_the_object_but_never_the_background():
    cams, out = ball_render()
    bg = torch.tensor([1.0, 1.0, 1.0])
    shaded = shade(out.rgb, out.opacity, out.depth, cams, bg, torch.Generator().manual_seed(0))
    # Where nothing was rendered the foreground rgb - (1 - 0) bg is exactly 0: the background, bit for bit.
    empty = out.opacity[:, 0] == 0
    assert empty.any() and torch.equal(shaded.permute(0, 2, 3, 1)[empty], out.rgb.permute(0, 2, 3, 1)[empty])
    solid = out.opacity[:, 0] > 0.999
    ratio = shaded[:, 0][solid] / out.rgb[:, 0][solid]  # the ball is pure red
    slack = sum_rounding(1.0, 4)  # the factor lies in [ambient, 1]; a few fp32 roundings of values <= 1
    assert ratio.max() <= 1.0 + slack and ratio.min() >= 0.2 - slack and ratio.std() > 0.05


def test_textureless_views_are_white_where_the_object_is():
    cams, out = ball_render()
    shaded = shade(out.rgb, out.opacity, out.depth, cams, torch.tensor([1.0, 1.0, 1.0]),
                   torch.Generator().manual_seed(0), ambient=1.0, textureless_prob=1.0)
    # opacity * 1 + (1 - opacity) * 1: one or two roundings of 1.
    assert torch.allclose(shaded, torch.ones_like(shaded), rtol=0, atol=sum_rounding(1.0, 2))


def test_shading_sends_gradient_to_depth():
    cams, out = ball_render(16)
    depth = out.depth.clone().requires_grad_(True)
    shade(out.rgb, out.opacity, depth, cams, torch.tensor([1.0, 1.0, 1.0]),
          torch.Generator().manual_seed(0)).sum().backward()
    assert depth.grad.abs().sum() > 0
