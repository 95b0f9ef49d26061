"""The built-in objects of the analytic prior, and the ground-truth renderer that draws them.

Each object is a union of signed-distance primitives with an albedo each, in t3d's world frame
(+z up, front facing +x, inside a ball of radius ~0.8 so it fits the field's [-1, 1]^3 and the
references' framing). Every object has an unambiguous front and a part that Janus artifacts
duplicate: the head's face (back is hair), the mug's logo and single handle, the bird's beak
and breast (back is a tail), and the animals' faces (t3d/priors/animals.py: cat, dog, bunny).

Rendering is sphere tracing with 2x supersampling. Light is fixed in the world, not attached to
the camera, so the reference set is 3D-consistent: a view-independent radiance field can
reproduce every reference exactly, and any disagreement between views is the prior's doing.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from t3d.priors.animals import ANIMALS
from t3d.priors.shapes import (Part, ProceduralObject, _vec, capsule, cylinder_z, ellipsoid, intersect,
                               sphere, subtract, torus_x)
from t3d.scene.cameras import Cameras

# Bump whenever an object or the renderer changes: it is part of the reference cache key.
VERSION = 3

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


OBJECTS: dict[str, ProceduralObject] = {obj.name: obj for obj in (_head(), _mug(), _bird(), *ANIMALS)}


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
def render_object(name: str | ProceduralObject, cameras: Cameras, resolution: int,
                  generator: torch.Generator | None = None, light_jitter: float = 0.0, supersample: int = 2,
                  background=(1.0, 1.0, 1.0), chunk_rays: int = 2**17, key_light=KEY_LIGHT,
                  ambient: float = AMBIENT, diffuse: float = DIFFUSE) -> tuple[torch.Tensor, torch.Tensor]:
    """RGB (B, 3, R, R) in [0, 1] on `background`, and coverage alpha (B, 1, R, R).

    `name` is a built-in object's name or any ProceduralObject (e.g. to make a posed folder of an
    object the prior does not know). `light_jitter` in [0, 1] perturbs the light direction and the
    brightness (appearance jitter for a denser reference cloud); with 0 every image uses the
    canonical light `key_light` (world direction) with `ambient` + `diffuse` * Lambert shading.
    """
    obj = OBJECTS[name] if isinstance(name, str) else name
    res = resolution * supersample
    origins, dirs = cameras.rays(res)
    origins, dirs = origins.reshape(-1, 3).double(), dirs.reshape(-1, 3).double()
    light = torch.tensor(key_light, dtype=torch.float64)
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
        shade = (ambient + diffuse * lambert) * gain
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


@torch.no_grad()
def visible_label_fraction(name: str | ProceduralObject, cameras: Cameras, resolution: int, label: str) -> torch.Tensor:
    """Share of each view's pixels (B,) whose visible surface belongs to a part labelled `label`
    (e.g. "face": where the eyes, nose and mouth can be seen from)."""
    obj = OBJECTS[name] if isinstance(name, str) else name
    wanted = torch.tensor([part.label == label for part in obj.parts])
    origins, dirs = cameras.rays(resolution)
    origins, dirs = origins.reshape(-1, 3).double(), dirs.reshape(-1, 3).double()
    t, hit = _sphere_trace(obj, origins, dirs)
    shows = torch.zeros(origins.shape[0], dtype=torch.bool)
    if hit.any():
        nearest = obj.distances(origins[hit] + dirs[hit] * t[hit, None]).argmin(-1)
        shows[hit] = wanted[nearest]
    return shows.view(len(cameras), -1).float().mean(-1)
