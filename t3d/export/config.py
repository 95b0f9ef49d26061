"""Options of mesh export and orbit videos: small torch-free dataclasses, one field per knob.

The comment after each field is its help text (the CLI generates flags from these). `validate()`
raises a one-line T3dError for a bad value, so a command can check everything before it loads a
model or touches the run folder.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

from t3d.errors import T3dError

MESH_FORMATS = ("glb", "obj", "ply")
VIDEO_PANELS = ("rgb", "normal", "depth")
BAKE_SOURCES = ("render", "surface")


def _finite(name: str, value) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise T3dError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise T3dError(f"{name} must be finite, got {value!r}")
    return number


def _int_in(name: str, value, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise T3dError(f"{name} must be an integer, got {value!r}")
    if not low <= value <= high:
        raise T3dError(f"{name} must be in [{low}, {high}], got {value}")


def _choice(name: str, value, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise T3dError(f"unknown {name} {value!r}; choose from {', '.join(choices)}")


@dataclass
class MeshExportConfig:
    format: str = "glb"  # mesh file format: glb, obj (+ .mtl + .png) or ply (vertex colours)
    resolution: int = 128  # marching-cubes grid points per axis over the field's bound
    threshold: Optional[float] = None  # density level of the surface; None = auto (matches the rendered silhouette)
    min_component_share: float = 0.02  # drop connected parts with fewer than this share of all faces
    keep_largest: bool = False  # keep only the largest connected part
    faces: int = 20000  # decimate to at most this many faces (0 = keep every face; textures need <= 60000)
    texture: bool = True  # bake a UV texture for glb/obj (False: vertex colours only)
    texture_size: int = 1024  # texture width and height in pixels
    bake_source: str = "render"  # render: project the field's renders onto the mesh (matches the video); surface: the field's colour at the surface point
    bake_views: int = 8  # render bake: views per ring (3 rings plus top and bottom)
    bake_resolution: int = 128  # render bake: pixels per side of the field renders projected onto the mesh
    smooth: float = 1.0  # Gaussian blur of the density grid before marching cubes, in grid voxels (0 = off)
    roughness: float = 0.9  # glTF PBR roughness of the material (metallic is 0): the field's colour is unlit albedo
    check: bool = True  # render the mesh from the evaluation orbit and compare with the field (mesh_check.json)
    check_views: int = 8  # views of the evaluation orbit for the mesh check
    check_resolution: int = 128  # pixels per side of the mesh-check renders
    check_elevation: float = 15.0  # camera elevation of the mesh-check orbit in degrees
    check_min_iou: float = 0.9  # the mesh check fails below this mean silhouette IoU

    def validate(self) -> "MeshExportConfig":
        _choice("mesh format", self.format, MESH_FORMATS)
        _int_in("mesh resolution", self.resolution, 16, 1024)
        if self.threshold is not None and not _finite("mesh threshold", self.threshold) > 0:
            raise T3dError(f"mesh threshold must be positive or auto, got {self.threshold}")
        if not 0.0 <= _finite("min component share", self.min_component_share) <= 1.0:
            raise T3dError(f"min component share must be in [0, 1], got {self.min_component_share}")
        if self.faces != 0:
            _int_in("mesh faces", self.faces, 100, 10**8)
        _int_in("texture size", self.texture_size, 64, 8192)
        _choice("bake source", self.bake_source, BAKE_SOURCES)
        _int_in("bake views", self.bake_views, 1, 360)
        _int_in("bake resolution", self.bake_resolution, 16, 4096)
        if not 0.0 <= _finite("smooth", self.smooth) <= 8.0:
            raise T3dError(f"smooth must be in [0, 8] voxels, got {self.smooth}")
        if not 0.0 <= _finite("roughness", self.roughness) <= 1.0:
            raise T3dError(f"roughness must be in [0, 1], got {self.roughness}")
        _int_in("mesh check views", self.check_views, 1, 360)
        _int_in("mesh check resolution", self.check_resolution, 16, 2048)
        if not -90.0 <= _finite("mesh check elevation", self.check_elevation) <= 90.0:
            raise T3dError(f"mesh check elevation must be in [-90, 90] degrees, got {self.check_elevation}")
        if not 0.0 <= _finite("mesh check minimum IoU", self.check_min_iou) <= 1.0:
            raise T3dError(f"mesh check minimum IoU must be in [0, 1], got {self.check_min_iou}")
        return self


@dataclass
class VideoConfig:
    resolution: int = 256  # pixels per side of each panel, independent of the training resolution
    frames: int = 120  # frames in one 360-degree orbit
    fps: int = 30  # frames per second of the mp4 and the gif
    elevation: float = 15.0  # camera elevation of the orbit in degrees
    panels: tuple[str, ...] = ("rgb", "normal", "depth")  # side-by-side panels: rgb, normal, depth
    gif: bool = False  # also write a GIF beside the mp4 (same name, .gif)
    gif_resolution: int = 128  # pixels per side of each GIF panel (GIFs grow fast with size)
    chunk_rays: int = 2**15  # rays per renderer call (memory bound on large frames)

    def validate(self) -> "VideoConfig":
        _int_in("video resolution", self.resolution, 16, 4096)
        _int_in("video frames", self.frames, 1, 10000)
        _int_in("video fps", self.fps, 1, 240)
        if not -90.0 <= _finite("video elevation", self.elevation) <= 90.0:
            raise T3dError(f"video elevation must be in [-90, 90] degrees, got {self.elevation}")
        panels = tuple(self.panels)
        if not panels:
            raise T3dError(f"video panels must not be empty; choose from {', '.join(VIDEO_PANELS)}")
        for panel in panels:
            _choice("video panel", panel, VIDEO_PANELS)
        _int_in("gif resolution", self.gif_resolution, 16, 1024)
        _int_in("chunk rays", self.chunk_rays, 256, 2**24)
        return self
