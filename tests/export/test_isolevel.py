"""The automatic surface level reproduces the silhouette the renderer shows."""

import numpy as np
import pytest
import torch

from t3d.errors import T3dError
from t3d.export.isolevel import best_level, ray_max_density, silhouette_matched_level
from t3d.scene.cameras import orbit_cameras


def brute_force_iou(values: torch.Tensor, mask: torch.Tensor, level: float) -> float:
    sil = values >= level
    return (sil & mask).sum().item() / (sil | mask).sum().item()


def test_best_level_is_the_exact_optimum_over_every_level():
    values = torch.tensor([5.0, 4.0, 3.0, 2.0, 1.0, 0.0])
    mask = torch.tensor([True, True, False, True, False, False])
    choice = best_level(values, mask)
    # Levels in (1, 2] select {5, 4, 3, 2}: IoU 3/4, the best; the pick is halfway, 1.5.
    # IoUs here are ratios of small counts and the level a midpoint: one rounding at most (<< 1e-6).
    assert choice.level == pytest.approx(1.5) and choice.iou == pytest.approx(0.75)
    candidates = np.linspace(0.01, 5.0, 500)
    assert max(brute_force_iou(values, mask, c) for c in candidates) == pytest.approx(choice.iou)


def test_pixels_with_equal_maxima_enter_the_silhouette_together():
    values = torch.tensor([3.0, 2.0, 2.0, 2.0, 1.0])
    mask = torch.tensor([True, True, False, False, False])
    choice = best_level(values, mask)
    # A cut inside the run of 2s is impossible: the best is level in (2, 3] with IoU 1/2.
    assert choice.iou == pytest.approx(0.5) and 2.0 < choice.level <= 3.0


def test_random_values_agree_with_brute_force():
    gen = torch.Generator().manual_seed(1)
    values = torch.rand(400, generator=gen) * 10
    mask = (values + torch.randn(400, generator=gen) * 2) > 5
    choice = best_level(values, mask)
    sorted_values = torch.sort(values).values
    mids = ((sorted_values[1:] + sorted_values[:-1]) / 2).tolist()
    assert max(brute_force_iou(values, mask, m) for m in mids) == pytest.approx(choice.iou)
    assert brute_force_iou(values, mask, choice.level) == pytest.approx(choice.iou)


def test_empty_render_is_one_clear_error():
    with pytest.raises(T3dError, match="the field is empty") as err:
        best_level(torch.rand(10), torch.zeros(10, dtype=torch.bool))
    assert "\n" not in str(err.value)


def test_level_matches_a_known_ball():
    # Density falls linearly from 40 at the centre to 0 at radius 0.8; the render shows a ball of
    # radius 0.5, i.e. the level 40 * (1 - 0.5 / 0.8) = 15.
    res, size = 48, 64
    axis = torch.linspace(-1, 1, res)
    points = torch.stack(torch.meshgrid(axis, axis, axis, indexing="ij"), dim=-1)
    volume = (40 * (1 - points.norm(dim=-1) / 0.8)).clamp_min(0).numpy()
    cams = orbit_cameras(3, 15.0, 2.0, 45.0)
    origins, dirs = cams.rays(size)
    # A pixel sees the ball when its ray passes within 0.5 of the centre.
    closest = torch.linalg.cross(origins, dirs, dim=-1).norm(dim=-1)
    masks = closest < 0.5
    choice = silhouette_matched_level(volume, 1.0, masks, cams)
    # The ball is ~20 px in radius here; one pixel of radius is 0.025 world units, i.e. a level
    # change of 40 * 0.025 / 0.8 = 1.25. Allow the pixel-edge ambiguity of about 1.5 px.
    assert abs(choice.level - 15.0) < 2.0, choice
    assert choice.iou > 0.95


def test_ray_max_is_zero_for_rays_that_miss_the_box():
    volume = np.ones((8, 8, 8), np.float32)
    cams = orbit_cameras(1, 0.0, 6.0, 90.0)  # wide view: the image corners miss the unit box
    ray_max = ray_max_density(volume, 1.0, cams, 16)
    # Interpolated ones: weights summing to 1 up to a rounding or two (<< approx's 1e-6).
    assert ray_max[0, 8, 8] == pytest.approx(1.0) and ray_max[0, 0, 0] == 0.0
