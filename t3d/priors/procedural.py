"""The built-in objects of the analytic prior, and the ground-truth renderer that draws them.

Each object is a union of signed-distance primitives with an albedo each, in t3d's world frame
(+z up, front facing +x, inside a ball of radius ~0.8 so it fits the field's [-1, 1]^3 and the
references' framing). Every object has an unambiguous front and a part that Janus artifacts
duplicate: the head's face (back is hair), the mug's logo and single handle, the bird's beak
and breast (back is a tail).

Rendering is sphere tracing with 2x supersampling. Light is fixed in the world, not attached to
the camera, so the reference set is 3D-consistent: a view-independent radiance field can
reproduce every reference exactly, and any disagreement between views is the prior's doing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Union

import torch
import torch.nn.functional as F

from t3d.scene.cameras import Cameras

# Bump whenever an object or the renderer changes: it is part of the reference cache key.
VERSION = 2

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


SKIN = (0.93, 0.74, 0.60)
HAIR = (0.30, 0.18, 0.10)


def _head() -> ProceduralObject:
    centre = (0.0, 0.0, 0.12)
    # Hair covers the skull except the face: the ellipsoid kept where x < 0.08 or z > 0.42.
    hair = intersect(ellipsoid((-0.03, 0.0, 0.15), (0.55, 0.55, 0.56)),
                     lambda p: torch.minimum(p[:, 0] - 0.08, 0.42 - p[:, 2]))
    # The smile: a chain of capsules along a downward arc on the face.
    arc = [(0.46 * math.cos(math.radians(a)), 0.46 * math.sin(math.radians(a)), -0.02 - 0.09 * math.cos(math.radians(2.4 * a)))
           for a in (-30, -15, 0, 15, 30)]
    smile = [Part(capsule(arc[i], arc[i + 1], 0.035), (0.80, 0.10, 0.12)) for i in range(len(arc) - 1)]
    eye_z = 0.24
    parts = [
        Part(sphere(centre, 0.5), SKIN),
        Part(hair, HAIR),
        Part(sphere((0.44, 0.17, eye_z), 0.075), (0.05, 0.05, 0.08)),
        Part(sphere((0.44, -0.17, eye_z), 0.075), (0.05, 0.05, 0.08)),
        Part(ellipsoid((0.52, 0.0, 0.11), (0.09, 0.06, 0.08)), (0.88, 0.60, 0.48)),  # nose
        Part(ellipsoid((0.0, 0.52, 0.12), (0.07, 0.06, 0.13)), SKIN),  # ears
        Part(ellipsoid((0.0, -0.52, 0.12), (0.07, 0.06, 0.13)), SKIN),
        Part(capsule((0.0, 0.0, -0.3), (0.0, 0.0, -0.62), 0.2), SKIN),  # neck
        Part(ellipsoid((0.0, 0.0, -0.72), (0.32, 0.55, 0.12)), (0.20, 0.35, 0.70)),  # shoulders, blue shirt
        *smile,
    ]
    return ProceduralObject("head", ("head", "face", "bust", "person", "man", "woman", "boy", "girl"), tuple(parts))


def _mug_body_color(p: torch.Tensor) -> torch.Tensor:
    """White mug with a red round logo on the front (+x) and a blue rim band."""
    out = torch.tensor([0.95, 0.95, 0.93], dtype=p.dtype, device=p.device).expand(p.shape[0], 3).clone()
    logo = (p[:, 0] > 0.1) & ((p[:, 1] ** 2 + (p[:, 2] + 0.02) ** 2) < 0.2**2)
    out[logo] = torch.tensor([0.85, 0.12, 0.12], dtype=p.dtype, device=p.device)
    band = p[:, 2] > 0.33
    out[band] = torch.tensor([0.15, 0.30, 0.75], dtype=p.dtype, device=p.device)
    return out


def _mug() -> ProceduralObject:
    body = subtract(cylinder_z((0.0, 0.0, -0.02), 0.40, 0.42), cylinder_z((0.0, 0.0, 0.42), 0.34, 0.40))
    parts = [
        Part(body, _mug_body_color),
        Part(cylinder_z((0.0, 0.0, 0.2), 0.345, 0.02), (0.35, 0.20, 0.10)),  # coffee
        # The single handle, on the right as seen from the front (+y; the front camera's right).
        Part(torus_x((0.0, 0.47, 0.0), 0.2, 0.06), (0.15, 0.30, 0.75)),
    ]
    return ProceduralObject("mug", ("mug", "cup"), tuple(parts), part="handle", part_azimuth=90.0)


def _bird_body_color(p: torch.Tensor) -> torch.Tensor:
    """Blue bird with a yellow breast on the front-lower body."""
    out = torch.tensor([0.20, 0.40, 0.85], dtype=p.dtype, device=p.device).expand(p.shape[0], 3).clone()
    breast = (p[:, 0] > 0.05) & (p[:, 2] < 0.1)
    out[breast] = torch.tensor([0.98, 0.82, 0.20], dtype=p.dtype, device=p.device)
    return out


def _bird() -> ProceduralObject:
    head_c = (0.36, 0.0, 0.28)
    parts = [
        Part(ellipsoid((0.0, 0.0, -0.02), (0.46, 0.32, 0.32)), _bird_body_color),
        Part(sphere(head_c, 0.24), (0.20, 0.40, 0.85)),
        Part(ellipsoid((0.63, 0.0, 0.26), (0.16, 0.07, 0.06)), (1.0, 0.50, 0.05)),  # beak
        Part(sphere((0.53, 0.12, 0.36), 0.05), (0.03, 0.03, 0.03)),  # eyes
        Part(sphere((0.53, -0.12, 0.36), 0.05), (0.03, 0.03, 0.03)),
        Part(ellipsoid((-0.05, 0.3, 0.0), (0.30, 0.06, 0.18)), (0.10, 0.22, 0.55)),  # wings
        Part(ellipsoid((-0.05, -0.3, 0.0), (0.30, 0.06, 0.18)), (0.10, 0.22, 0.55)),
        Part(ellipsoid((-0.58, 0.0, 0.14), (0.30, 0.16, 0.04)), (0.08, 0.10, 0.25)),  # tail
        Part(capsule((0.08, 0.1, -0.3), (0.1, 0.1, -0.62), 0.035), (1.0, 0.50, 0.05)),  # legs
        Part(capsule((0.08, -0.1, -0.3), (0.1, -0.1, -0.62), 0.035), (1.0, 0.50, 0.05)),
    ]
    # Modelled beak-to-tail 1.7 long; scaled to fit the references' side-view frame.
    return ProceduralObject("bird", ("bird", "parrot", "sparrow", "robin", "songbird"), tuple(parts), scale=0.85, part="beak")


OBJECTS: dict[str, ProceduralObject] = {obj.name: obj for obj in (_head(), _mug(), _bird())}


# ---------------------------------------------------------------- rendering
def _sphere_trace(obj: ProceduralObject, origins: torch.Tensor, dirs: torch.Tensor,
                  max_steps: int = 128, radius: float = 1.0, tol: float = 1e-3):
    """Distance along each ray to the surface, and whether it was hit (rays start outside)."""
    b = (origins * dirs).sum(-1)
    c = (origins * origins).sum(-1) - radius**2
    disc = b * b - c
    inside = disc > 0
    t = (-b - disc.clamp_min(0).sqrt()).clamp_min(0.0)
    far = -b + disc.clamp_min(0).sqrt()
    hit = torch.zeros_like(inside)
    active = inside.clone()
    for _ in range(max_steps):
        idx = active.nonzero().squeeze(-1)
        if idx.numel() == 0:
            break
        dist = obj.sdf(origins[idx] + dirs[idx] * t[idx, None])
        # 0.9: the ellipsoid distance is an approximation, so steps stay a little short of it.
        t[idx] += 0.9 * dist
        done_hit = dist < tol
        hit[idx[done_hit]] = True
        active[idx[done_hit | (t[idx] > far[idx])]] = False
    return t, hit


def _normals(obj: ProceduralObject, p: torch.Tensor, h: float = 1e-3) -> torch.Tensor:
    offsets = torch.eye(3, dtype=p.dtype, device=p.device) * h
    grad = torch.stack([obj.sdf(p + offsets[i]) - obj.sdf(p - offsets[i]) for i in range(3)], dim=-1)
    return F.normalize(grad, dim=-1)


# A key light from the front-right-above, fixed in the world, plus ambient: every side is lit.
KEY_LIGHT = (0.6, 0.35, 0.72)
AMBIENT, DIFFUSE = 0.45, 0.6


@torch.no_grad()
def render_object(name: str, cameras: Cameras, resolution: int, generator: torch.Generator | None = None,
                  light_jitter: float = 0.0, supersample: int = 2, background=(1.0, 1.0, 1.0),
                  chunk_rays: int = 2**17) -> tuple[torch.Tensor, torch.Tensor]:
    """RGB (B, 3, R, R) in [0, 1] on `background`, and coverage alpha (B, 1, R, R).

    `light_jitter` in [0, 1] perturbs the light direction and the brightness (appearance jitter
    for a denser reference cloud); with 0 every image uses the canonical light.
    """
    obj = OBJECTS[name]
    res = resolution * supersample
    origins, dirs = cameras.rays(res)
    origins, dirs = origins.reshape(-1, 3).double(), dirs.reshape(-1, 3).double()
    light = torch.tensor(KEY_LIGHT, dtype=torch.float64)
    gain = 1.0
    if light_jitter > 0:
        gen = generator or torch.Generator().manual_seed(0)
        light = light + light_jitter * 0.6 * torch.randn(3, generator=gen, dtype=torch.float64)
        gain = 1.0 + light_jitter * 0.1 * float(torch.randn((), generator=gen))
    light = F.normalize(light, dim=0)
    rgb = torch.tensor(background, dtype=torch.float64).repeat(origins.shape[0], 1)
    alpha = torch.zeros(origins.shape[0], dtype=torch.float64)
    for start in range(0, origins.shape[0], chunk_rays):
        o, d = origins[start:start + chunk_rays], dirs[start:start + chunk_rays]
        t, hit = _sphere_trace(obj, o, d)
        if not hit.any():
            continue
        p = o[hit] + d[hit] * t[hit, None]
        normal = _normals(obj, p)
        lambert = (normal @ light).clamp_min(0.0)
        shade = (AMBIENT + DIFFUSE * lambert) * gain
        colour = (obj.albedo(p) * shade[:, None]).clamp(0.0, 1.0)
        rows = torch.arange(start, start + o.shape[0])[hit]
        rgb[rows] = colour
        alpha[rows] = 1.0
    batch = len(cameras)
    rgb = rgb.view(batch, res, res, 3).permute(0, 3, 1, 2).float()
    alpha = alpha.view(batch, 1, res, res).float()
    if supersample > 1:  # box-filter the supersamples: antialiased edges
        rgb, alpha = F.avg_pool2d(rgb, supersample), F.avg_pool2d(alpha, supersample)
    return rgb, alpha
