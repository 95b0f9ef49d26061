"""Options of mesh export and orbit videos (torch-free): the `mesh` and `video` sections of a
run's config, which `generate` uses at the end of a run and `export-mesh` / `render-video` take
as their options (`--resolution` there is `--mesh-resolution` / `--video-resolution` in generate).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from t3d.config.options import MESH, VIDEO, option
from t3d.config.parsing import parse_words
from t3d.errors import T3dError

MESH_FORMATS = ("glb", "obj", "ply")
VIDEO_PANELS = ("rgb", "normal", "depth")
BAKE_SOURCES = ("render", "surface")


def parse_level(text: str) -> Optional[float]:
    """--threshold: 'auto' (None) or a positive density level."""
    if str(text).strip().lower() == "auto":
        return None
    try:
        return float(text)
    except ValueError:
        raise T3dError(f"--threshold expects a positive number or 'auto', got '{text}'") from None


@dataclass
class MeshExportConfig:
    format: str = option("glb", "Mesh file format: glb, obj (+ .mtl + .png) or ply (vertex colours).",
                         flag="--mesh-format", command=("--format", "-f"), panel=MESH)
    resolution: int = option(128, "Marching-cubes grid points per axis over the field's bound.",
                             flag="--mesh-resolution", command="--resolution", panel=MESH, low=16, high=1024)
    threshold: Optional[float] = option(None, "Density level of the surface, or auto: the level whose silhouette "
                                        "matches the rendered views.", command="--threshold", panel=MESH,
                                        parse=parse_level, kind=str, metavar="LEVEL|auto", shown="auto", above=0)
    min_component_share: float = option(0.02, "Drop connected parts with fewer than this share of all faces.",
                                        command="--min-component-share", panel=MESH, low=0, high=1)
    keep_largest: bool = option(False, "Keep only the largest connected part.",
                                command="--keep-largest/--keep-all", panel=MESH)
    faces: int = option(20000, "Decimate to at most this many faces (0 = keep every face; textures need at most "
                        "60000).", flag="--mesh-faces", command="--faces", panel=MESH, low=0, high=10**8)
    texture: bool = option(True, "Bake a UV texture for glb/obj (--no-texture: vertex colours).",
                           flag="--texture/--no-texture", command="--texture/--no-texture", panel=MESH)
    texture_size: int = option(1024, "Texture width and height in pixels.", flag="--texture-size",
                               command="--texture-size", panel=MESH, low=64, high=8192)
    # render: project the field's renders onto the mesh (it then matches the video); surface: the
    # field's colour at the surface point (darker: a render averages a thick layer)
    bake_source: str = option("render", "Texture colours: render (project the field's renders) | surface (the "
                              "field's colour at the surface).", command="--bake-source", panel=MESH)
    bake_views: int = option(8, "Render bake: views per ring (3 rings plus top and bottom).",
                             command="--bake-views", panel=MESH, low=1, high=360)
    bake_resolution: int = option(128, "Render bake: pixels per side of the renders projected onto the mesh.",
                                  command="--bake-resolution", panel=MESH, low=16, high=4096)
    smooth: float = option(1.0, "Gaussian blur of the density grid before marching cubes, in voxels (0 = off).",
                           command="--smooth", panel=MESH, low=0, high=8)
    # metallic is 0: the field's colour is unlit albedo, which a metal would tint
    roughness: float = option(0.9, "glTF PBR roughness of the material (metallic is 0).", command="--roughness",
                              panel=MESH, low=0, high=1)
    check: bool = option(True, "Render the mesh from the evaluation orbit and compare it with the field "
                         "(mesh_check.json, mesh_check.png).", command="--check/--no-check", panel=MESH)
    check_views: int = option(8, "Views of the evaluation orbit for the mesh check.", command="--check-views",
                              panel=MESH, low=1, high=360)
    check_resolution: int = option(128, "Pixels per side of the mesh-check renders.", command="--check-resolution",
                                   panel=MESH, low=16, high=2048)
    check_elevation: float = option(15.0, "Camera elevation of the mesh-check orbit in degrees.",
                                    command="--check-elevation", panel=MESH, low=-90, high=90)
    check_min_iou: float = option(0.9, "The mesh check warns below this mean silhouette IoU.",
                                  command="--check-min-iou", panel=MESH, low=0, high=1)

    def validate(self) -> "MeshExportConfig":
        if self.format not in MESH_FORMATS:
            raise T3dError(f"unknown mesh format '{self.format}'; choose glb, obj or ply")
        if self.bake_source not in BAKE_SOURCES:
            raise T3dError(f"unknown bake source '{self.bake_source}'; choose render or surface")
        if 0 < self.faces < 100:
            raise T3dError(f"--faces must be 0 (keep every face) or at least 100, got {self.faces}")
        return self


@dataclass
class VideoConfig:
    resolution: int = option(256, "Pixels per side of each panel, independent of the training resolution.",
                             flag="--video-resolution", command="--resolution", panel=VIDEO, low=16, high=4096)
    frames: int = option(120, "Frames in one 360-degree orbit.", flag="--video-frames", command="--frames",
                         panel=VIDEO, low=1, high=10000)
    fps: int = option(30, "Frames per second of the mp4 and the gif.", command="--fps", panel=VIDEO, low=1, high=240)
    elevation: float = option(15.0, "Camera elevation of the orbit in degrees.", flag="--video-elevation",
                              command="--elevation", panel=VIDEO, low=-90, high=90)
    panels: tuple[str, ...] = option(VIDEO_PANELS, "Side-by-side panels: rgb, normal, depth.",
                                     flag="--video-panels", command="--panels", panel=VIDEO, parse=parse_words,
                                     kind=str, metavar="PANELS")
    gif: bool = option(False, "Also write a GIF beside the mp4 (same name, .gif).", flag="--gif/--no-gif",
                       command="--gif/--no-gif", panel=VIDEO)
    gif_resolution: int = option(128, "Pixels per side of each GIF panel (GIFs grow fast with size).",
                                 command="--gif-resolution", panel=VIDEO, low=16, high=1024)
    chunk_rays: int = option(2**15, "rays per renderer call (memory bound on large frames)", low=256, high=2**24)

    def validate(self) -> "VideoConfig":
        if not self.panels or set(self.panels) - set(VIDEO_PANELS):
            raise T3dError(f"video panels must be chosen from {', '.join(VIDEO_PANELS)}, got "
                           f"{','.join(self.panels) or 'none'}")
        return self
