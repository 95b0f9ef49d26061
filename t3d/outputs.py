"""Compatibility layer for the current commands: the run config's `output.*` keys -> t3d.export.

Everything here delegates to t3d.export (mesh export, orbit videos); it exists only so that
commands.py and run.py keep working until they call t3d.export with its own configs.
"""

from __future__ import annotations

from pathlib import Path

from t3d.errors import T3dError
from t3d.export.config import MESH_FORMATS, VIDEO_PANELS, MeshExportConfig, VideoConfig
from t3d.export.mesh_export import export_run_mesh
from t3d.export.video import render_run_video

__all__ = ["VIDEO_PANELS", "export_scene_mesh", "render_video"]


def render_video(scene, path: Path, frames: int | None = None, resolution: int | None = None,
                 panels: tuple[str, ...] | None = None, elevation: float | None = None) -> Path:
    out = scene.cfg.output
    cfg = VideoConfig(resolution=resolution or out.video_resolution, frames=frames or out.video_frames,
                      fps=out.video_fps, elevation=out.video_elevation if elevation is None else elevation,
                      panels=tuple(panels or out.video_panels))
    return render_run_video(scene, path, cfg)


def export_scene_mesh(scene, path: Path, fmt: str | None = None, resolution: int | None = None,
                      threshold: float | None = None) -> Path:
    """The previous behaviour (vertex colours from the field at the surface, every face, no check)."""
    out = scene.cfg.output
    fmt = (fmt or Path(path).suffix.lstrip(".") or out.mesh_format).lower()
    if fmt not in MESH_FORMATS:
        raise T3dError(f"unknown mesh format '{fmt}'; choose from {', '.join(MESH_FORMATS)}")
    level = out.mesh_threshold if threshold is None else threshold
    cfg = MeshExportConfig(format=fmt, resolution=resolution or out.mesh_resolution, threshold=level,
                           faces=0, texture=False, bake_source="surface", smooth=0.0, check=False,
                           check_resolution=64)
    return export_run_mesh(scene, Path(path).parent, cfg, out_path=path).mesh_path
