"""`t3d render-video`: a 360° orbit video of a run's newest verified (or a given) checkpoint."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from rich.console import Console

from t3d.config import set_value, validate
from t3d.run.folder import load_run_config, run_dir_of
from t3d.run.lock import lock_if_inside


def run_render_video(run: Path, out: Optional[Path], device: str, values: list, console: Console) -> Path:
    """`values`: (video option, value, flag) given on the command line; the run's own settings
    fill the rest. Everything is checked before the scene loads."""
    from t3d.export.video import render_run_video
    from t3d.run.load import load_scene

    run_dir = run_dir_of(Path(run))
    cfg = load_run_config(run_dir)
    for name, value, label in values:
        set_value(cfg, f"video.{name}", value, label)
    validate(cfg.video)
    target = Path(out) if out else run_dir / "video.mp4"
    with lock_if_inside(run_dir, target, "t3d render-video"):
        scene, run_dir, step = load_scene(run, device, note=lambda line: console.print(line, markup=False))
        path = render_run_video(scene, target, cfg.video)
    console.print(f"video of step {step}: {path}")
    return path
