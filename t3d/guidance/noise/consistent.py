"""GSD's 3D-consistent integral noise (docs/methods.md#gsd; the paper's Sec. 4.2).

Noise lives on points in 3D instead of pixels, so two views that see the same surface get
correlated noise there, while each view's noise map stays exactly i.i.d. N(0, 1):
- Surface points come from the rendered depth of each step's views (the paper uses 3DGS centres;
  a NeRF has none). A point is added only where the cloud has none yet within one voxel (about
  one grid cell at the scene centre), so the cloud covers the object as views accumulate.
- Each point carries z ~ N(0, I_C) and is upsampled into N sub-points, jittered around it, with
  values z / sqrt(N) + (r - mean(r)), r ~ N(0, I_N) per channel. That is Eq. 7 scaled by sqrt(N):
  the N values are then jointly i.i.d. N(0, 1) (Eq. 7 literally gives variance 1/N and with
  Eq. 8's 1/sqrt(count) a pixel variance of 1/N, not the N(0, 1) the paper states).
- Sub-points are projected into each view; a pixel sums those within a depth tolerance of its
  rendered surface and divides by sqrt(count) (Eq. 8). Every sub-point lands in at most one
  pixel, so pixels stay independent.
- A sphere of noised points around the scene fills the pixels no surface point reached (the
  background, and surface not yet covered); a pixel neither reaches takes a fresh N(0, 1) draw.
- The cloud (positions and values) is held for K steps, then rebuilt: K = 100 early, 30, then 12
  in the author's code (`noise_hold` at progress `noise_hold_from`).
Everything is vectorised over points and pixels (index_add_ / bincount).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from t3d.guidance.piece import Piece
from t3d.scene.cameras import Cameras
from t3d.scene.view_geometry import pixel_footprint, surface_on_grid, unproject

_KEY_SPAN = 1 << 20  # voxel indices are offset into [0, 2^20) per axis to pack into one int64 key


@dataclass
class NoisedPoints:
    """Upsampled noise points: positions (M, 3) and values (M, C), M = parents * N."""

    positions: torch.Tensor
    values: torch.Tensor

    def to(self, device) -> "NoisedPoints":
        return NoisedPoints(self.positions.to(device), self.values.to(device))

    def extend(self, other: "NoisedPoints") -> "NoisedPoints":
        return NoisedPoints(torch.cat([self.positions, other.positions]), torch.cat([self.values, other.values]))


def upsample_noise(parents: torch.Tensor, channels: int, n: int, jitter: float,
                   generator: torch.Generator, device=None) -> NoisedPoints:
    """Conditional upsampling of N(0, I_C) values on `parents` (P, 3) into N sub-points each."""
    count = parents.shape[0]
    z = torch.randn(count, 1, channels, generator=generator)
    r = torch.randn(count, n, channels, generator=generator)
    values = z / math.sqrt(n) + (r - r.mean(dim=1, keepdim=True))
    offsets = torch.randn(count, n, 3, generator=generator) * jitter
    positions = parents.cpu()[:, None, :] + offsets
    # Drawn on the CPU generator (runs repeat across devices), then kept where the views are.
    return NoisedPoints(positions.reshape(-1, 3).to(device), values.reshape(-1, channels).to(device))


def integrate(points: NoisedPoints, cameras: Cameras, size: int, keep=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Sum of the sub-point values landing in each pixel, (B, C, size, size), and their count
    (B, 1, size, size). `keep(pixel_index, distance) -> bool` filters (view, point) pairs by the
    flat pixel index b*size^2 + row*size + col and the point's distance to the camera."""
    batch, channels = len(cameras), points.values.shape[1]
    device = cameras.azimuth.device
    pos = points.positions.to(device)
    pix, z_depth = cameras.project(pos.expand(batch, -1, -1), size)
    col, row = pix[..., 0].floor().long(), pix[..., 1].floor().long()
    valid = (z_depth > 0) & (col >= 0) & (col < size) & (row >= 0) & (row < size)
    view = torch.arange(batch, device=device)[:, None].expand_as(col)
    flat = view * size * size + row.clamp(0, size - 1) * size + col.clamp(0, size - 1)
    if keep is not None:
        distance = (pos[None] - cameras.position[:, None]).norm(dim=-1)
        valid &= keep(flat, distance)
    flat_valid = flat[valid]
    point_index = torch.nonzero(valid, as_tuple=True)[1]
    values = points.values.to(device)
    sums = torch.zeros(batch * size * size, channels, device=device).index_add_(0, flat_valid, values[point_index])
    counts = torch.bincount(flat_valid, minlength=batch * size * size).to(sums.dtype)
    return (sums.view(batch, size, size, channels).permute(0, 3, 1, 2),
            counts.view(batch, 1, size, size))


class ConsistentNoise(Piece):
    """`noise.sample(ctx)` for `--noise consistent`: needs ctx.render (depth and opacity).

    Its held cloud is a trainable in name only: it is checkpointed so a resumed run keeps the
    noise an uninterrupted one would use."""

    @classmethod
    def from_config(cls, cfg, context) -> "ConsistentNoise":
        noise = context.trainables["consistent_noise"] = cls(cfg.upsample, cfg.hold, cfg.hold_from)
        return noise

    def __init__(self, upsample: int = 9, hold: tuple[int, ...] = (100, 30, 12),
                 hold_from: tuple[float, ...] = (0.0, 0.3, 0.6), threshold: float = 0.5,
                 depth_tolerance: float = 2.0, background_per_pixel: float = 4.0,
                 background_radius: float = 4.0):
        self.n, self.hold, self.hold_from = upsample, tuple(hold), tuple(hold_from)
        self.threshold = threshold  # opacity above which a grid cell shows surface
        self.depth_tolerance = depth_tolerance  # in voxels: how far off the surface a point may be
        self.background_per_pixel = background_per_pixel  # expected background sub-points per pixel
        self.background_radius = background_radius  # sphere radius, in camera distances
        self.age = 0  # steps since the cloud was built
        self.voxel: float | None = None
        self.keys = torch.zeros(0, dtype=torch.long)  # occupied voxels of the surface cloud
        self.surface: NoisedPoints | None = None
        self.background: NoisedPoints | None = None

    def hold_steps(self, progress: float) -> int:
        """K at this point of the run: the last `hold` entry whose `hold_from` has been reached."""
        k = self.hold[0]
        for start, steps in zip(self.hold_from, self.hold):
            if progress >= start:
                k = steps
        return max(int(k), 1)

    def reset(self, cameras: Cameras, size: int, channels: int, generator: torch.Generator) -> None:
        device, cams = cameras.azimuth.device, cameras.to("cpu")
        self.voxel = float(pixel_footprint(cams, size).min())
        self.keys = torch.zeros(0, dtype=torch.long)
        self.surface = NoisedPoints(torch.zeros(0, 3, device=device), torch.zeros(0, channels, device=device))
        # Background sphere around the scene, dense enough for `background_per_pixel` sub-points in
        # a centre pixel of the narrowest view; the camera sits inside it, so every ray meets it once.
        radius = self.background_radius * float(cams.distance.max())
        cell = 2 * math.tan(math.radians(float(cams.fovy.min())) / 2) / size  # centre pixel, radians
        parents = math.ceil(self.background_per_pixel * 4 * math.pi / cell**2 / self.n)
        direction = torch.nn.functional.normalize(torch.randn(parents, 3, generator=generator), dim=-1)
        # Sub-points spread over the spacing between parents: jittered any tighter, each parent's
        # N sub-points would land in one pixel together and leave the pixels around it empty.
        jitter = cell * radius * math.sqrt(self.n / self.background_per_pixel)
        self.background = upsample_noise(direction * radius, channels, self.n, jitter, generator, device)
        self.age = 0

    def grow(self, cameras: Cameras, opacity: torch.Tensor, distance: torch.Tensor, channels: int,
             generator: torch.Generator) -> None:
        """Add parents at this step's surface pixels whose voxel the cloud does not cover yet."""
        points = unproject(cameras, distance).cpu()[(opacity[:, 0] > self.threshold).cpu()]
        if points.shape[0] == 0:
            return
        cell = torch.floor(points / self.voxel).long() + _KEY_SPAN // 2
        keys = (cell[:, 0] * _KEY_SPAN + cell[:, 1]) * _KEY_SPAN + cell[:, 2]
        unique, inverse = torch.unique(keys, return_inverse=True)
        first = torch.full((unique.shape[0],), points.shape[0], dtype=torch.long)
        first = first.scatter_reduce(0, inverse, torch.arange(points.shape[0]), reduce="amin")
        new = ~torch.isin(unique, self.keys)
        if not new.any():
            return
        self.keys = torch.cat([self.keys, unique[new]])
        # Sub-points spread over about one voxel (the "spherical volume" each point integrates).
        added = upsample_noise(points[first[new]], channels, self.n, 0.5 * self.voxel, generator,
                               cameras.azimuth.device)
        self.surface = self.surface.extend(added)

    @torch.no_grad()
    def sample(self, ctx) -> torch.Tensor:
        x0 = ctx.x0
        if ctx.render is None:
            raise ValueError("3D-consistent noise needs the rendered depth and opacity (ctx.render)")
        batch, channels, size = x0.shape[0], x0.shape[1], x0.shape[-1]
        if self.surface is None or self.age >= self.hold_steps(ctx.progress) or self.surface.values.shape[1] != channels:
            self.reset(ctx.cameras, size, channels, ctx.generator)
        self.age += 1
        device = ctx.cameras.azimuth.device  # a resumed cloud comes back on the CPU: move it once
        self.surface, self.background = self.surface.to(device), self.background.to(device)
        opacity, distance = surface_on_grid(ctx.render, size)
        opacity, distance = opacity.detach(), distance.detach()
        self.grow(ctx.cameras, opacity, distance, channels, ctx.generator)
        return self.project(ctx.cameras, opacity, distance, size, ctx.generator).to(x0.dtype)

    def project(self, cameras: Cameras, opacity: torch.Tensor, distance: torch.Tensor, size: int,
                generator: torch.Generator) -> torch.Tensor:
        """The noise maps (B, C, size, size) of the current cloud seen by `cameras`."""
        surface_flat, distance_flat = (opacity > self.threshold).flatten(), distance.flatten()
        slack = self.depth_tolerance * self.voxel

        def on_surface(flat, d):  # only points near the surface each pixel renders (no self-occlusion)
            return surface_flat[flat] & ((d - distance_flat[flat]).abs() < slack)

        fg_sum, fg_count = integrate(self.surface, cameras, size, on_surface)
        bg_sum, bg_count = integrate(self.background, cameras, size)
        fresh = torch.randn(fg_sum.shape, generator=generator).to(fg_sum.device)
        noise = torch.where(bg_count > 0, bg_sum / bg_count.clamp_min(1).sqrt(), fresh)
        return torch.where(fg_count > 0, fg_sum / fg_count.clamp_min(1).sqrt(), noise)

    # Held state is checkpointed, so a resumed run keeps the noise an uninterrupted one would use.
    def state_dict(self) -> dict[str, torch.Tensor]:
        if self.surface is None:
            return {}
        return {"age": torch.tensor(self.age), "voxel": torch.tensor(self.voxel), "keys": self.keys,
                "surface_positions": self.surface.positions, "surface_values": self.surface.values,
                "background_positions": self.background.positions, "background_values": self.background.values}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        if not state:
            return
        self.age, self.voxel, self.keys = int(state["age"]), float(state["voxel"]), state["keys"].long().cpu()
        self.surface = NoisedPoints(state["surface_positions"], state["surface_values"])
        self.background = NoisedPoints(state["background_positions"], state["background_values"])

    def update(self, ctx) -> dict:
        """Nothing is trained; the noise sits among the trainables only to be checkpointed."""
        return {}
