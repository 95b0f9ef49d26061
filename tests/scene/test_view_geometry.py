"""Warping between views by depth (scene/view_geometry.py), against the procedural head."""

import torch

from t3d.priors.procedural import OBJECTS, _sphere_trace, render_object
from t3d.scene.cameras import Cameras
from t3d.scene.view_geometry import warp_from
from tests.helpers.scenes import cameras


def traced(cams: Cameras, size: int):
    """The procedural head: shaded RGB at pixel centres, hit distance and coverage."""
    rgb, alpha = render_object("head", cams, size, supersample=1)
    o, d = cams.rays(size)
    t, hit = _sphere_trace(OBJECTS["head"], o.reshape(-1, 3).double(), d.reshape(-1, 3).double())
    shape = (len(cams), 1, size, size)
    return rgb, alpha, torch.where(hit, t, torch.zeros_like(t)).float().view(shape)


def test_warp_with_true_depth_reproduces_the_other_view():
    size = 64
    cams = cameras(0.0, 20.0)
    rgb, alpha, dist = traced(cams, size)
    warped, visible = warp_from(rgb[[0]], dist[[0]], cams[[0]], dist[[1]], cams[[1]], source_opacity=alpha[[0]])
    mask = (visible & (alpha[[1]] > 0.5)).expand(-1, 3, -1, -1)
    assert mask[:, 0].float().sum() > 0.8 * float((alpha[1] > 0.5).sum())  # most of the head is seen by both
    err = (warped - rgb[[1]]).abs()[mask].mean()
    unwarped = (rgb[[0]] - rgb[[1]]).abs()[mask].mean()
    # What is left is bilinear resampling of a texture with pixel-sized detail (it shrinks with size).
    assert float(err) < 0.03, float(err)
    assert float(unwarped) > 4 * float(err)
