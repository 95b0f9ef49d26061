"""Cameras: random training views, 360° orbits, and the rays they shoot.

Conventions used everywhere in t3d (priors, renderer, metrics):
- World is right-handed with +z up; objects sit in the cube [-1, 1]^3 and face +x.
- A camera at azimuth a, elevation e, distance d sits at
  d * (cos e cos a, cos e sin a, sin e) and looks at the origin, so azimuth 0 sees the front,
  azimuth 180 the back. Angles are in degrees in configs and metadata.
- Camera-to-world matrices use the OpenGL convention (camera looks down its -z, +y is up).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class Cameras:
    """A batch of pinhole cameras looking at the origin."""

    azimuth: torch.Tensor  # (B,) degrees, in [-180, 180)
    elevation: torch.Tensor  # (B,) degrees
    distance: torch.Tensor  # (B,)
    fovy: torch.Tensor  # (B,) degrees

    def __len__(self) -> int:
        return self.azimuth.shape[0]

    def to(self, device) -> "Cameras":
        return Cameras(*(getattr(self, f).to(device) for f in ("azimuth", "elevation", "distance", "fovy")))

    def __getitem__(self, idx) -> "Cameras":
        return Cameras(self.azimuth[idx], self.elevation[idx], self.distance[idx], self.fovy[idx])

    @staticmethod
    def cat(cams: list["Cameras"]) -> "Cameras":
        return Cameras(
            *(torch.cat([getattr(c, f) for c in cams]) for f in ("azimuth", "elevation", "distance", "fovy"))
        )

    @property
    def position(self) -> torch.Tensor:
        az, el = torch.deg2rad(self.azimuth), torch.deg2rad(self.elevation)
        return self.distance[:, None] * torch.stack(
            [torch.cos(el) * torch.cos(az), torch.cos(el) * torch.sin(az), torch.sin(el)], dim=-1
        )

    def c2w(self) -> torch.Tensor:
        """(B, 4, 4) camera-to-world matrices (OpenGL: columns right, up, backward, position)."""
        eye = self.position
        forward = torch.nn.functional.normalize(-eye, dim=-1)
        world_up = torch.tensor([0.0, 0.0, 1.0], device=eye.device, dtype=eye.dtype).expand_as(forward)
        right = torch.linalg.cross(forward, world_up, dim=-1)
        # Straight overhead the azimuth still defines "right", so the image never spins.
        az = torch.deg2rad(self.azimuth)
        fallback = torch.stack([-torch.sin(az), torch.cos(az), torch.zeros_like(az)], dim=-1)
        degenerate = right.norm(dim=-1, keepdim=True) < 1e-6
        right = torch.nn.functional.normalize(torch.where(degenerate, fallback, right), dim=-1)
        up = torch.linalg.cross(right, forward, dim=-1)
        mat = torch.zeros(len(self), 4, 4, device=eye.device, dtype=eye.dtype)
        mat[:, :3, 0], mat[:, :3, 1], mat[:, :3, 2], mat[:, :3, 3] = right, up, -forward, eye
        mat[:, 3, 3] = 1.0
        return mat

    def focal(self, height: int) -> torch.Tensor:
        """Focal length in pixels for an image `height` pixels tall."""
        return 0.5 * height / torch.tan(0.5 * torch.deg2rad(self.fovy))

    def rays(self, height: int, width: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Ray origins and unit directions, each (B, H, W, 3), through pixel centres."""
        width = width or height
        device, dtype = self.azimuth.device, self.azimuth.dtype
        c2w = self.c2w()
        j = torch.arange(width, device=device, dtype=dtype) + 0.5 - width / 2
        i = torch.arange(height, device=device, dtype=dtype) + 0.5 - height / 2
        ii, jj = torch.meshgrid(i, j, indexing="ij")
        focal = self.focal(height)[:, None, None]
        # Camera space: x right, y up (image rows go down), looking down -z.
        local = torch.stack([jj.expand(len(self), -1, -1) / focal, -ii.expand(len(self), -1, -1) / focal,
                             -torch.ones(len(self), height, width, device=device, dtype=dtype)], dim=-1)
        dirs = torch.einsum("bij,bhwj->bhwi", c2w[:, :3, :3], local)
        dirs = torch.nn.functional.normalize(dirs, dim=-1)
        origins = c2w[:, None, None, :3, 3].expand_as(dirs)
        return origins, dirs

    def project(self, points: torch.Tensor, height: int, width: int | None = None):
        """Project world points (B, N, 3) to pixel coords (B, N, 2) as (col, row) and depth (B, N)."""
        width = width or height
        c2w = self.c2w()
        rot, eye = c2w[:, :3, :3], c2w[:, :3, 3]
        local = torch.einsum("bji,bnj->bni", rot, points - eye[:, None])
        depth = -local[..., 2]
        focal = self.focal(height)[:, None]
        col = local[..., 0] / depth.clamp_min(1e-8) * focal + width / 2
        row = -local[..., 1] / depth.clamp_min(1e-8) * focal + height / 2
        return torch.stack([col, row], dim=-1), depth


def wrap_azimuth(azimuth: torch.Tensor) -> torch.Tensor:
    """Map degrees to [-180, 180)."""
    return torch.remainder(azimuth + 180.0, 360.0) - 180.0


@dataclass
class CameraRanges:
    """Ranges training cameras are drawn from (threestudio-like defaults, docs/methods.md)."""

    azimuth: tuple[float, float] = (-180.0, 180.0)
    elevation: tuple[float, float] = (-10.0, 45.0)
    distance: tuple[float, float] = (1.5, 2.0)
    fovy: tuple[float, float] = (40.0, 70.0)


def sample_cameras(ranges: CameraRanges, batch: int, generator: torch.Generator,
                   device="cpu") -> Cameras:
    """Uniform random cameras; the batch's azimuths are stratified so one batch covers the circle."""

    def uniform(lo_hi):
        lo, hi = lo_hi
        return lo + (hi - lo) * torch.rand(batch, generator=generator)

    lo, hi = ranges.azimuth
    strata = (torch.arange(batch) + torch.rand(batch, generator=generator)) / batch
    azimuth = wrap_azimuth(lo + (hi - lo) * torch.remainder(strata + torch.rand(1, generator=generator), 1.0))
    # Distance and fov move together so the object keeps a similar size on screen.
    fov = uniform(ranges.fovy)
    return Cameras(azimuth, uniform(ranges.elevation), uniform(ranges.distance), fov).to(device)


def orbit_cameras(n_views: int, elevation: float = 15.0, distance: float = 1.75, fovy: float = 55.0,
                  start_azimuth: float = 0.0, device="cpu") -> Cameras:
    """`n_views` cameras evenly spaced over 360° of azimuth, starting at `start_azimuth`."""
    az = wrap_azimuth(start_azimuth + torch.arange(n_views, dtype=torch.float32) * 360.0 / n_views)
    full = torch.ones(n_views)
    return Cameras(az, full * elevation, full * distance, full * fovy).to(device)

