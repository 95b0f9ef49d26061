"""What is optimised and how it is seen: training cameras, the field, the renderer (torch-free)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from t3d.config.options import RENDERING, option
from t3d.config.parsing import parse_pixel_milestone
from t3d.config.registry import Choices
from t3d.errors import T3dError

ENCODINGS = Choices("encoding", {
    "dense": "t3d.scene.encodings:dense_grid_encoding",
    "hash": "t3d.scene.encodings:hash_grid_encoding",
})
SHADINGS = ("albedo", "diffuse")
MAX_RESOLUTION = 2048


def _ordered(pair, what: str) -> None:
    if pair is not None and pair[0] > pair[1]:
        raise T3dError(f"{what} range must be 'LOW:HIGH' with LOW <= HIGH, got {pair[0]:g}:{pair[1]:g}")


@dataclass
class CameraConfig:
    """Random training cameras (degrees, world units). None = the prior's preferred framing."""

    azimuth: tuple[float, float] = option((-180.0, 180.0), "training azimuth range", low=-360, high=360)
    elevation: tuple[float, float] = option((-10.0, 45.0), "training elevation range", low=-90, high=90)
    distance: Optional[tuple[float, float]] = option(None, "camera distance range; None = the prior's", above=0)
    fovy: Optional[tuple[float, float]] = option(None, "vertical field of view range; None = the prior's",
                                                 above=0, high=179)
    batch: int = option(2, "Cameras per step.", flag="--batch", panel=RENDERING, low=1, high=64)

    def validate(self) -> None:
        for name in ("azimuth", "elevation", "distance", "fovy"):
            _ordered(getattr(self, name), f"camera {name}")


@dataclass
class FieldConfig:
    encoding: str = option("dense", "Field encoding: dense (fast on CPU) | hash (tinycudann when importable).",
                           flag="--encoding", panel=RENDERING)
    grid_resolution: int = option(48, "dense grid cells per axis", low=2, high=512)
    grid_features: int = option(8, "dense grid features per cell", low=1)
    hash_levels: int = option(16, "hash grid levels", low=1)
    hash_features: int = option(2, "hash grid features per level", low=1)
    hash_log2_table: int = option(19, "log2 of the hash table size per level", low=4, high=30)
    hash_base_resolution: int = option(16, "coarsest hash grid resolution", low=1)
    hash_max_resolution: int = option(2048, "finest hash grid resolution", low=1)
    mlp_width: int = option(32, "width of the field's MLP", low=1)
    mlp_layers: int = option(1, "hidden layers of the field's MLP", low=0)
    bound: float = option(1.0, "half size of the scene cube", above=0)
    blob_density: float = option(10.0, "Magic3D-style density bias: blob_density * (1 - r / blob_radius)")
    blob_radius: float = option(0.5, "radius where the density bias crosses zero", above=0)
    lr_encoding: float = option(1e-2, "Adam learning rate of the encoding", above=0)
    # At 1e-3 the 1-layer colour MLP lags the grid and runs end dark and faceless (measured).
    lr_mlp: float = option(1e-2, "Adam learning rate of the MLP", above=0)

    def validate(self) -> None:
        ENCODINGS.check(self.encoding, "--encoding")


@dataclass
class RenderConfig:
    resolution: Optional[int] = option(None, "Training render resolution in pixels.", shown="the prior's (SD: 64)",
                                       flag="--resolution", panel=RENDERING, low=8, high=MAX_RESOLUTION)
    resolution_milestone: Optional[tuple[float, int]] = option(
        None, "'FRACTION:PIXELS': render at PIXELS after that fraction of the run (ProlificDreamer: 0.2:512).",
        flag="--resolution-milestone", panel=RENDERING, parse=parse_pixel_milestone, kind=str,
        metavar="FRACTION:PIXELS")
    samples_per_ray: int = option(64, "samples along each ray", low=1, high=1024)
    background: tuple[float, float, float] = option((1.0, 1.0, 1.0), "background colour", low=0, high=1)
    occupancy_resolution: int = option(32, "cells per axis of the occupancy grid", low=2, high=512)
    occupancy_every: int = option(16, "steps between occupancy-grid refreshes; 0 = never prune", low=0)
    occupancy_warmup: int = option(64, "steps before pruning starts (the blob is everywhere at first)", low=0)
    shading: str = option("albedo", "Training renders: albedo (as is) | diffuse (random light near the camera, "
                          "DreamFusion).", flag="--shading", panel=RENDERING)
    textureless_prob: float = option(0.0, "With --shading diffuse: chance a view is shaded white (geometry "
                                     "only).", flag="--textureless-prob", panel=RENDERING, low=0, high=1)

    def validate(self) -> None:
        if self.shading not in SHADINGS:
            raise T3dError(f"unknown shading '{self.shading}' (--shading); choose albedo or diffuse")
        milestone = self.resolution_milestone
        if milestone is not None and not (0.0 < milestone[0] <= 1.0 and 8 <= milestone[1] <= MAX_RESOLUTION):
            raise T3dError(f"--resolution-milestone expects FRACTION:PIXELS with 0 < FRACTION <= 1 and "
                           f"8 <= PIXELS <= {MAX_RESOLUTION}")
