"""`export-mesh` in one call: trained scene -> mesh file(s) + mesh_check.json/png in the run folder.

`scene` is anything with `.field` (`density(points)`, `color(points)`, `field(points) ->
(density, rgb)`), `.render(cameras, resolution, chunk_rays=...)`, `.cfg.field.bound`,
`.distance`, `.fovy` and `.device`; nothing here imports the engine.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from t3d.config.checks import validate
from t3d.errors import T3dError
from t3d.export.build import make_baker, textured_asset, vertex_color_asset
from t3d.export.check import (CHECK_JSON, CHECK_PNG, FieldViews, MeshCheck, check_mesh, render_field_views,
                              write_check)
from t3d.export.config import MESH_FORMATS, MeshExportConfig
from t3d.export.isolevel import LevelChoice, silhouette_matched_level
from t3d.export.load import load_asset
from t3d.export.surface import extract_surface, sample_density_grid, smooth_volume
from t3d.export.writers import write_asset
from t3d.scene.cameras import orbit_cameras


@dataclass
class ExportResult:
    paths: list[Path]  # every file written, the mesh file last
    vertices: int
    faces: int
    level: float  # density level of the surface
    level_iou: Optional[float]  # silhouette IoU the auto level reached on the density grid (None: fixed level)
    parts_found: list[int]  # faces per connected part before cleanup, largest first
    parts_kept: list[int]
    texture_size: Optional[int]
    check: Optional[MeshCheck] = None
    seconds: dict = field(default_factory=dict)  # wall time per stage

    @property
    def mesh_path(self) -> Path:
        return self.paths[-1]

    @property
    def iou_mean(self) -> Optional[float]:
        return None if self.check is None else self.check.iou_mean

    @property
    def psnr_mean(self) -> Optional[float]:
        return None if self.check is None else self.check.psnr_mean

    def summary(self, step: int | None = None) -> str:
        """One line for the console, e.g. after `export-mesh` (which names the checkpoint's step)."""
        texture = f", texture {self.texture_size}x{self.texture_size}" if self.texture_size else ", vertex colours"
        text = f"mesh{'' if step is None else f' of step {step}'}: {self.mesh_path} ({self.vertices} vertices, {self.faces} faces{texture})"
        if self.check is not None:
            verdict = "ok" if self.check.passed else f"BELOW the {self.check.min_iou:g} IoU the check asks for"
            text += (f"; mesh vs field over {len(self.check.iou)} views: silhouette IoU {self.check.iou_mean:.3f}, "
                     f"colour PSNR {self.check.psnr_mean:.1f} dB ({verdict})")
        return text


def check_cameras(scene, cfg: MeshExportConfig):
    """The evaluation orbit: `check_views` views evenly spread from the front, at the check elevation."""
    return orbit_cameras(cfg.check_views, cfg.check_elevation, scene.distance, scene.fovy)


def resolve_out_path(run_dir: Path, cfg: MeshExportConfig, out_path) -> Path:
    if out_path is None:
        return Path(run_dir) / f"mesh.{cfg.format}"
    out_path = Path(out_path)
    suffix = out_path.suffix.lstrip(".").lower()
    if suffix in MESH_FORMATS and suffix != cfg.format:
        raise T3dError(f"output {out_path} has suffix .{suffix} but the mesh format is {cfg.format}")
    return out_path if suffix == cfg.format else out_path.with_name(out_path.name + f".{cfg.format}")


def choose_level(volume, views: FieldViews, bound: float, cfg: MeshExportConfig) -> LevelChoice:
    if cfg.threshold is not None:
        return LevelChoice(float(cfg.threshold), float("nan"))
    return silhouette_matched_level(volume, bound, views.opacity > 0.5, views.cameras)


class _Stopwatch:
    """Wall time per stage, for ExportResult.seconds."""

    def __init__(self):
        self.seconds: dict = {}
        self._last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.seconds[name] = round(now - self._last, 3)
        self._last = now


def check_mesh_file(scene, mesh_path, run_dir, cfg: MeshExportConfig, views: FieldViews | None = None,
                    extra: dict | None = None) -> MeshCheck:
    """Render a written mesh file against the field (evaluation orbit); writes mesh_check.json/png."""
    validate(cfg)
    views = views or render_field_views(scene, check_cameras(scene, cfg), cfg.check_resolution)
    check, mesh_rgb = check_mesh(load_asset(mesh_path), views, cfg.check_min_iou)
    write_check(check, views, mesh_rgb, Path(run_dir), {"mesh": Path(mesh_path).name, **(extra or {})})
    return check


def export_run_mesh(scene, run_dir, cfg: MeshExportConfig, out_path=None) -> ExportResult:
    """Extract, clean, colour, write and (cfg.check) verify the scene's mesh. See MeshExportConfig.

    The mesh goes to `out_path` (default: `run_dir/mesh.<format>`); OBJ also writes `.mtl` and
    `.png` beside it; the check writes mesh_check.json and mesh_check.png into `run_dir`.
    """
    validate(cfg)
    path = resolve_out_path(Path(run_dir), cfg, out_path)
    bound = float(scene.cfg.field.bound)
    watch = _Stopwatch()
    views = render_field_views(scene, check_cameras(scene, cfg), cfg.check_resolution)
    watch.lap("check views")
    volume = sample_density_grid(scene.field.density, cfg.resolution, bound, device=scene.device)
    volume = smooth_volume(volume, cfg.smooth)
    watch.lap("grid")
    choice = choose_level(volume, views, bound, cfg)
    watch.lap("level")
    surface = extract_surface(volume, choice.level, bound, cfg.min_component_share, cfg.keep_largest, cfg.faces)
    watch.lap("surface")
    textured = cfg.texture and cfg.format in ("glb", "obj")
    bake = make_baker(scene, surface, cfg)
    watch.lap("bake views")
    asset = textured_asset(surface, bake, cfg.texture_size) if textured else vertex_color_asset(surface, bake)
    watch.lap("colour")
    paths = write_asset(asset, path, cfg.format, cfg.roughness)
    watch.lap("write")
    result = ExportResult(paths, len(asset.vertices), len(asset.faces), choice.level,
                          None if cfg.threshold is not None else choice.iou, surface.parts_found,
                          surface.parts_kept, cfg.texture_size if textured else None, seconds=watch.seconds)
    if cfg.check:
        extra = {"level": choice.level, "level_iou": result.level_iou, "vertices": result.vertices,
                 "faces": result.faces, "parts_found": surface.parts_found[:20], "parts_kept": surface.parts_kept,
                 "resolution": cfg.check_resolution, "elevation": cfg.check_elevation}
        result.check = check_mesh_file(scene, path, run_dir, cfg, views, extra)
        result.paths = [Path(run_dir) / CHECK_JSON, Path(run_dir) / CHECK_PNG] + paths
        watch.lap("check")
    return result
