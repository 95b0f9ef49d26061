"""Volume rendering against closed form: a ball of constant density."""

import math

import torch

from t3d.scene.cameras import Cameras, orbit_cameras
from t3d.scene.occupancy import OccupancyGrid
from t3d.scene.render import render
from tests.helpers.scenes import ConstantBall
from tests.helpers.tolerances import sum_rounding


def closed_form_opacity(cams: Cameras, resolution: int, sigma: float, radius: float) -> torch.Tensor:
    origins, dirs = cams.rays(resolution)
    # Distance from the ball's centre to each ray's line, then the chord length through the ball.
    b = torch.linalg.cross(origins, dirs, dim=-1).norm(dim=-1)
    chord = 2 * torch.sqrt((radius**2 - b**2).clamp_min(0))
    return 1 - torch.exp(-sigma * chord)


def test_constant_ball_opacity_matches_closed_form():
    field = ConstantBall(density=3.0, radius=0.6)
    cams = orbit_cameras(3, elevation=20.0, distance=2.0, fovy=50.0)
    out = render(field, cams, 32, samples_per_ray=512, background=(0, 0, 0))
    expected = closed_form_opacity(cams, 32, 3.0, 0.6)
    err = (out.opacity[:, 0] - expected).abs()
    # Quadrature error, not rounding: 512 samples per ray; rays that graze the rim cross the ball
    # in less than a sample spacing, which bounds the largest error, not the mean.
    assert err.mean() < 2e-3 and err.max() < 0.05
    centre = 1 - math.exp(-3.0 * 1.2)  # the central chord; the 4 centre pixels' are slightly shorter
    assert abs(out.opacity[0, 0, 15:17, 15:17].mean().item() - centre) < 0.01
    # Colour is red times opacity on a black background.
    # Both sum the same 512 weights (times 1.0 for red), maybe grouped differently.
    assert torch.allclose(out.rgb[:, 0], out.opacity[:, 0], rtol=0, atol=sum_rounding(1.0, 512))
    assert (out.rgb[:, 1:] == 0).all()  # weights times exact zeros, on a black background


def test_background_fills_empty_rays():
    field = ConstantBall(density=3.0, radius=0.3)
    out = render(field, orbit_cameras(1, distance=2.0, fovy=50.0), 16, 64, background=(0.0, 1.0, 0.0))
    corner = out.rgb[0, :, 0, 0]
    assert torch.equal(corner, torch.tensor([0.0, 1.0, 0.0]))  # no density on the ray: exactly the background


def test_occupancy_pruning_keeps_the_image():
    field = ConstantBall(density=3.0, radius=0.6)
    grid = OccupancyGrid(resolution=16, step_size=2.0 / 128)
    grid.update(field.density, torch.Generator().manual_seed(0))
    assert 0.05 < grid.occupied_fraction() < 0.5  # the ball is occupied, the corners are not
    cams = orbit_cameras(2, distance=2.0, fovy=50.0)
    full = render(field, cams, 24, 128)
    pruned = render(field, cams, 24, 128, occupancy=grid)
    # Bit-exact: the grid (dilated by a cell) covers every sample inside the ball, and the samples it
    # skips have density exactly 0 in the full render too: the same density array, the same image.
    assert torch.equal(full.rgb, pruned.rgb)


def test_camera_at_azimuth_zero_sees_the_front_plus_x():
    cam = orbit_cameras(1, elevation=0.0, distance=2.0)
    origins, dirs = cam.rays(9)
    # fp32 trigonometry and a 3x3 rotation of values <= 2.
    assert torch.allclose(origins[0, 4, 4], torch.tensor([2.0, 0.0, 0.0]), rtol=0, atol=sum_rounding(2.0, 3))
    assert torch.allclose(dirs[0, 4, 4], torch.tensor([-1.0, 0.0, 0.0]), rtol=0, atol=sum_rounding(2.0, 3))
    # Image up is world +z, and projecting a point returns the pixel its ray came from.
    assert dirs[0, 0, 4, 2] > 0
    pix, depth = cam.project(origins[:, 2:3, 6] + 1.5 * dirs[:, 2:3, 6], 9)
    # A ray out and a projection back: rotations, a division by depth and the focal length (~11 px),
    # a few roundings of pixel coordinates up to ~16.
    assert torch.allclose(pix[0, 0], torch.tensor([6.5, 2.5]), rtol=0, atol=sum_rounding(16.0, 9))
