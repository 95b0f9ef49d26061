"""Signed-distance primitives and the object type the built-in prior's objects are made of.

Every primitive maps points (N, 3) to signed distances (N,): negative inside. Objects are unions of
parts, each with an albedo (a constant or a function of the point, in the object's modelled frame).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Union

import torch

Color = Union[tuple[float, float, float], Callable[[torch.Tensor], torch.Tensor]]


# ---------------------------------------------------------------- signed distance primitives
def _vec(v, like: torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(v, dtype=like.dtype, device=like.device)


def sphere(center, radius: float):
    return lambda p: (p - _vec(center, p)).norm(dim=-1) - radius


def ellipsoid(center, radii):
    """Inigo Quilez's bound-like approximation (exact for spheres, close for mild ellipsoids)."""

    def sdf(p):
        q = p - _vec(center, p)
        r = _vec(radii, p)
        k0 = (q / r).norm(dim=-1)
        k1 = (q / (r * r)).norm(dim=-1).clamp_min(1e-9)
        return k0 * (k0 - 1.0) / k1

    return sdf


def capsule(a, b, radius: float):
    def sdf(p):
        a_, b_ = _vec(a, p), _vec(b, p)
        pa, ba = p - a_, b_ - a_
        h = ((pa * ba).sum(-1) / (ba * ba).sum()).clamp(0.0, 1.0)
        return (pa - ba * h[:, None]).norm(dim=-1) - radius

    return sdf


def cylinder_z(center, radius: float, half_height: float):
    """Capped cylinder with its axis along z."""

    def sdf(p):
        q = p - _vec(center, p)
        d = torch.stack([q[:, :2].norm(dim=-1) - radius, q[:, 2].abs() - half_height], dim=-1)
        return d.amax(-1).clamp_max(0.0) + d.clamp_min(0.0).norm(dim=-1)

    return sdf


def torus_x(center, major: float, minor: float):
    """A ring in the y-z plane (its axis along x): a mug handle seen from the front is an edge."""

    def sdf(p):
        q = p - _vec(center, p)
        ring = q[:, 1:].norm(dim=-1) - major
        return torch.stack([ring, q[:, 0]], dim=-1).norm(dim=-1) - minor

    return sdf


def round_cone(a, b, radius_a: float, radius_b: float):
    """The convex hull of a ball at `a` and a ball at `b` (ears, snouts, legs, tails).

    In the plane of the axis and the point, with u along the axis from a and v the distance from
    it, the surface is the hull of two circles: a segment tangent to both joins them. Its outward
    normal n makes sin(phi) = (r_a - r_b) / L with the radial direction; a point whose coordinate
    along the segment falls before a's tangent point is nearest a's ball, after b's nearest b's
    ball, otherwise nearest the segment (distance n.q - r_a).
    """

    def sdf(p):
        a_, b_ = _vec(a, p), _vec(b, p)
        axis = b_ - a_
        length = axis.norm()
        u = (p - a_) @ (axis / length)
        v = ((p - a_) - u[:, None] * (axis / length)).norm(dim=-1)
        sin_phi = (radius_a - radius_b) / float(length)
        cos_phi = (1.0 - sin_phi**2) ** 0.5
        along = u * cos_phi - v * sin_phi  # coordinate along the tangent segment
        to_a = torch.sqrt(u**2 + v**2) - radius_a
        to_b = torch.sqrt((u - length) ** 2 + v**2) - radius_b
        to_side = u * sin_phi + v * cos_phi - radius_a
        return torch.where(along < 0, to_a, torch.where(along > length * cos_phi, to_b, to_side))

    return sdf


def intersect(*sdfs):
    return lambda p: torch.stack([f(p) for f in sdfs], dim=-1).amax(-1)


def subtract(base, cut):
    return lambda p: torch.maximum(base(p), -cut(p))


def halfspace(normal, offset: float):
    """Signed distance to the region n.p <= offset (n unit)."""
    return lambda p: p @ _vec(normal, p) - offset


# ---------------------------------------------------------------- objects
@dataclass(frozen=True)
class Part:
    sdf: Callable[[torch.Tensor], torch.Tensor]
    color: Color
    label: str = ""  # e.g. "face" for eyes, nose and mouth: lets tests ask where a feature is visible


@dataclass(frozen=True)
class ProceduralObject:
    name: str
    keywords: tuple[str, ...]
    parts: tuple[Part, ...]
    scale: float = 1.0  # uniform scale applied to the parts as modelled (distances scale with it)
    # The part a Janus artefact duplicates and the azimuth it is seen head-on from: evaluation
    # counts separate arcs of views showing it (two handles = a two-handled mug).
    part: str = "face"
    part_azimuth: float = 0.0

    def distances(self, p: torch.Tensor) -> torch.Tensor:
        return self.scale * torch.stack([part.sdf(p / self.scale) for part in self.parts], dim=-1)

    def sdf(self, p: torch.Tensor) -> torch.Tensor:
        return self.distances(p).amin(-1)

    def albedo(self, p: torch.Tensor) -> torch.Tensor:
        """Colour of the part closest to each point (points are on or near the surface)."""
        nearest = self.distances(p).argmin(-1)
        out = torch.zeros(p.shape[0], 3, dtype=p.dtype, device=p.device)
        for k, part in enumerate(self.parts):
            sel = nearest == k
            if sel.any():
                col = part.color(p[sel] / self.scale) if callable(part.color) else _vec(part.color, p).expand(int(sel.sum()), 3)
                out[sel] = col
        return out
