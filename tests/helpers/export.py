"""Closed-form fields and a duck-typed scene for the export tests (no training, no engine)."""

from __future__ import annotations

from types import SimpleNamespace

import torch

from t3d.scene.render import render

RADIUS = 0.5
SHARPNESS = 40.0  # density falls from 50 to 0 over ~0.2 around the sphere's surface
PEAK = 50.0


def sphere_density(p: torch.Tensor, centre=(0.0, 0.0, 0.0), radius: float = RADIUS) -> torch.Tensor:
    """PEAK * sigmoid(SHARPNESS (radius - |p - centre|)): the level PEAK / 2 sits exactly at `radius`."""
    return PEAK * torch.sigmoid((radius - (p - torch.tensor(centre)).norm(dim=-1)) * SHARPNESS)


def direction_color(p: torch.Tensor) -> torch.Tensor:
    """rgb = 0.5 + 0.4 * p / |p|: smooth on any sphere around the origin, |gradient| <= 0.4 * sqrt(3) / |p|."""
    return 0.5 + 0.4 * torch.nn.functional.normalize(p, dim=-1)


class AnalyticField:
    """density / colour given by functions, with the field interface the renderer and export use."""

    def __init__(self, density=sphere_density, color=direction_color, bound: float = 1.0):
        self._density, self._color = density, color
        self.cfg = SimpleNamespace(bound=bound)

    def density(self, points: torch.Tensor) -> torch.Tensor:
        return self._density(points)

    def color(self, points: torch.Tensor) -> torch.Tensor:
        return self._color(points)

    def __call__(self, points: torch.Tensor):
        return self._density(points), self._color(points)


class AnalyticScene:
    """What t3d.export needs of a scene: field, render, cfg.field.bound, distance, fovy, device."""

    def __init__(self, field: AnalyticField, samples_per_ray: int = 96, distance: float = 2.0, fovy: float = 45.0):
        self.field = field
        self.samples_per_ray = samples_per_ray
        self.cfg = SimpleNamespace(field=SimpleNamespace(bound=field.cfg.bound),
                                   render=SimpleNamespace(background=(1.0, 1.0, 1.0)))
        self.distance, self.fovy, self.device = distance, fovy, torch.device("cpu")

    def render(self, cameras, resolution: int, generator=None, with_normals=False, chunk_rays=None):
        return render(self.field, cameras, resolution, self.samples_per_ray, (1.0, 1.0, 1.0), None,
                      generator, with_normals, chunk_rays)


def sphere_scene(**kwargs) -> AnalyticScene:
    return AnalyticScene(AnalyticField(**kwargs))
