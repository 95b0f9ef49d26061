"""Volume rendering against closed form: a ball of constant density."""

import math

import torch

from t3d.scene.config import FieldConfig
from t3d.scene.cameras import Cameras, orbit_cameras
from t3d.scene.occupancy import OccupancyGrid
from t3d.scene.render import render


class ConstantBall(torch.nn.Module):
    def __init__(self, density: float, radius: float):
        super().__init__()
        self.cfg = FieldConfig(bound=1.0)
        self.sigma, self.radius = density, radius

    def forward(self, points):
        inside = points.norm(dim=-1) < self.radius
        density = torch.where(inside, torch.full_like(points[:, 0], self.sigma), torch.zeros_like(points[:, 0]))
        rgb = torch.tensor([1.0, 0.0, 0.0]).expand(points.shape[0], 3)
        return density, rgb

    def density(self, points):
        return self.forward(points)[0]


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
    assert err.mean() < 2e-3 and err.max() < 0.05
    centre = 1 - math.exp(-3.0 * 1.2)
    assert abs(out.opacity[0, 0, 15:17, 15:17].mean().item() - centre) < 0.01
    # Colour is red times opacity on a black background.
    assert torch.allclose(out.rgb[:, 0], out.opacity[:, 0], atol=1e-5)
    assert out.rgb[:, 1:].abs().max() < 1e-6


def test_background_fills_empty_rays():
    field = ConstantBall(density=3.0, radius=0.3)
    out = render(field, orbit_cameras(1, distance=2.0, fovy=50.0), 16, 64, background=(0.0, 1.0, 0.0))
    corner = out.rgb[0, :, 0, 0]
    assert torch.allclose(corner, torch.tensor([0.0, 1.0, 0.0]), atol=1e-6)


def test_occupancy_pruning_keeps_the_image():
    field = ConstantBall(density=3.0, radius=0.6)
    grid = OccupancyGrid(resolution=16, step_size=2.0 / 128)
    grid.update(field.density, torch.Generator().manual_seed(0))
    assert 0.05 < grid.occupied_fraction() < 0.5  # the ball is occupied, the corners are not
    cams = orbit_cameras(2, distance=2.0, fovy=50.0)
    full = render(field, cams, 24, 128)
    pruned = render(field, cams, 24, 128, occupancy=grid)
    assert (full.rgb - pruned.rgb).abs().max() < 1e-5


def test_camera_at_azimuth_zero_sees_the_front_plus_x():
    cam = orbit_cameras(1, elevation=0.0, distance=2.0)
    origins, dirs = cam.rays(9)
    assert torch.allclose(origins[0, 4, 4], torch.tensor([2.0, 0.0, 0.0]), atol=1e-5)
    assert torch.allclose(dirs[0, 4, 4], torch.tensor([-1.0, 0.0, 0.0]), atol=1e-5)
    # Image up is world +z, and projecting a point returns the pixel its ray came from.
    assert dirs[0, 0, 4, 2] > 0
    pix, depth = cam.project(origins[:, 2:3, 6] + 1.5 * dirs[:, 2:3, 6], 9)
    assert torch.allclose(pix[0, 0], torch.tensor([6.5, 2.5]), atol=1e-4)
