"""`t3d render-video`: a 360° orbit video of a run's latest (or a given) checkpoint."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from rich.console import Console

from t3d.errors import T3dError
from t3d.run.folder import run_dir_of
from t3d.run.lock import lock_if_inside


def run_render_video(run: Path, out: Optional[Path], frames, resolution, elevation, panels: Optional[str],
                     device: str, console: Console) -> Path:
    from t3d.outputs import render_video
    from t3d.run.load import load_scene

    if frames is not None and frames <= 0:
        raise T3dError(f"--frames must be positive, got {frames}")
    if resolution is not None and resolution < 8:
        raise T3dError(f"--resolution must be at least 8, got {resolution}")
    panel_list = tuple(p.strip() for p in panels.split(",")) if panels else None
    run_dir = run_dir_of(Path(run))
    target = Path(out) if out else run_dir / "video.mp4"
    with lock_if_inside(run_dir, target, "t3d render-video"):
        scene, run_dir, step = load_scene(run, device, note=lambda line: console.print(line, markup=False))
        path = render_video(scene, target, frames, resolution, panel_list, elevation)
    console.print(f"video of step {step}: {path}")
    return path
