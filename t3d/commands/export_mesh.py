"""`t3d export-mesh`: marching cubes on a run's field, written as GLB, OBJ or PLY."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from rich.console import Console

from t3d.errors import T3dError
from t3d.run.folder import run_dir_of
from t3d.run.lock import lock_if_inside


def parse_threshold(text: Optional[str]) -> Optional[float]:
    """'auto' or None -> None (auto); a positive number -> that density level."""
    if text is None or text.strip().lower() == "auto":
        return None
    try:
        value = float(text)
    except ValueError:
        raise T3dError(f"--threshold expects a positive number or 'auto', got '{text}'") from None
    if not value > 0:
        raise T3dError(f"--threshold must be positive, got {text}")
    return value


def run_export_mesh(run: Path, fmt: Optional[str], out: Optional[Path], resolution, threshold, device: str,
                    console: Console) -> Path:
    from t3d.outputs import export_scene_mesh
    from t3d.run.load import load_scene
    from t3d.scene.mesh import MESH_FORMATS

    if fmt is None:
        fmt = out.suffix.lstrip(".").lower() if out is not None and out.suffix else "glb"
    fmt = fmt.lower()
    if fmt not in MESH_FORMATS:
        raise T3dError(f"unknown mesh format '{fmt}'; choose from {', '.join(MESH_FORMATS)}")
    if resolution is not None and resolution < 8:
        raise T3dError(f"--resolution must be at least 8, got {resolution}")
    level = parse_threshold(threshold)
    run_dir = run_dir_of(Path(run))
    target = Path(out) if out else run_dir / f"mesh.{fmt}"
    with lock_if_inside(run_dir, target, "t3d export-mesh"):
        scene, run_dir, step = load_scene(run, device, note=lambda line: console.print(line, markup=False))
        if threshold is not None and level is None:
            scene.cfg.output.mesh_threshold = None  # an explicit 'auto' overrides the run's fixed level
        path = export_scene_mesh(scene, target, fmt, resolution, level)
    console.print(f"mesh of step {step}: {path}")
    return path
