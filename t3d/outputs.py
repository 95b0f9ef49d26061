"""What a run leaves behind besides checkpoints: the 360° video and the mesh."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from t3d.scene.scene import Scene
from t3d.errors import T3dError
from t3d.scene.cameras import orbit_cameras
from t3d.scene.isolevel import silhouette_matched_level
from t3d.scene.mesh import MESH_FORMATS, export_mesh, extract_mesh
from t3d.video import colorize_depth, side_by_side, write_video

VIDEO_PANELS = ("rgb", "depth", "normal")


@torch.no_grad()
def orbit_frames(scene: Scene, frames: int, resolution: int, elevation: float,
                 panels: tuple[str, ...] = ("rgb",)) -> list[np.ndarray]:
    unknown = set(panels) - set(VIDEO_PANELS)
    if unknown or not panels:
        raise T3dError(f"unknown video panel(s) {', '.join(sorted(unknown)) or '(none)'}; "
                       f"choose from {', '.join(VIDEO_PANELS)}")
    cams = orbit_cameras(frames, elevation, scene.distance, scene.fovy)
    result = []
    for i in range(frames):
        out = scene.render(cams[i:i + 1], resolution, with_normals="normal" in panels, chunk_rays=2**15)
        tiles = []
        for panel in panels:
            if panel == "rgb":
                tiles.append((out.rgb[0].permute(1, 2, 0).clamp(0, 1).cpu().numpy() * 255).astype(np.uint8))
            elif panel == "depth":
                mask = out.opacity[0, 0].cpu().numpy() > 0.5
                tiles.append(colorize_depth(out.depth[0, 0].cpu().numpy(), mask))
            else:
                normal = out.normal[0].permute(1, 2, 0).cpu()
                shown = (torch.nn.functional.normalize(normal, dim=-1) * 0.5 + 0.5) * out.opacity[0].permute(1, 2, 0).cpu()
                shown = shown + (1 - out.opacity[0].permute(1, 2, 0).cpu())
                tiles.append((shown.clamp(0, 1).numpy() * 255).astype(np.uint8))
        result.append(side_by_side(*tiles))
    return result


def render_video(scene: Scene, path: Path, frames: int | None = None, resolution: int | None = None,
                 panels: tuple[str, ...] | None = None, elevation: float | None = None) -> Path:
    out_cfg = scene.cfg.output
    images = orbit_frames(scene, frames or out_cfg.video_frames, resolution or out_cfg.video_resolution,
                          out_cfg.video_elevation if elevation is None else elevation,
                          tuple(panels or out_cfg.video_panels))
    return write_video(images, path, fps=out_cfg.video_fps)


def auto_threshold(scene: Scene, views: int = 4, resolution: int = 64):
    """A level picker for extract_mesh: the density whose silhouettes match the rendered opacity."""
    cams = orbit_cameras(views, scene.cfg.output.video_elevation, scene.distance, scene.fovy, start_azimuth=45.0)
    with torch.no_grad():
        masks = scene.render(cams, resolution, chunk_rays=2**15).opacity[:, 0].cpu() > 0.5
    return lambda volume: silhouette_matched_level(volume, scene.cfg.field.bound, masks, cams)


def export_scene_mesh(scene: Scene, path: Path, fmt: str | None = None, resolution: int | None = None,
                      threshold: float | None = None) -> Path:
    """Marching cubes at `threshold` (default: the run's config; None there = auto) and export."""
    fmt = (fmt or Path(path).suffix.lstrip(".") or scene.cfg.output.mesh_format).lower()
    if fmt not in MESH_FORMATS:
        raise T3dError(f"unknown mesh format '{fmt}'; choose from {', '.join(MESH_FORMATS)}")
    out_cfg = scene.cfg.output
    level = out_cfg.mesh_threshold if threshold is None else threshold
    mesh = extract_mesh(scene.field.density, scene.field.color, bound=scene.cfg.field.bound, device=scene.device,
                        resolution=resolution or out_cfg.mesh_resolution,
                        threshold=auto_threshold(scene) if level is None else level)
    return export_mesh(mesh, path, fmt)
