"""`t3d export-mesh`: the run's surface as a textured GLB / OBJ or a vertex-coloured PLY, with a
check of the written file against the field (mesh_check.json and .png in the run folder)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from rich.console import Console

from t3d.config import set_value, validate
from t3d.export.config import MESH_FORMATS
from t3d.run.folder import load_run_config, run_dir_of
from t3d.run.lock import lock_if_inside


def run_export_mesh(run: Path, out: Optional[Path], device: str, values: list, console: Console) -> Path:
    """`values`: (mesh option, value, flag) given on the command line; the run's own settings fill
    the rest (a format not given follows --out's suffix). Checked before the scene loads."""
    from t3d.export.mesh_export import export_run_mesh
    from t3d.run.load import load_scene

    run_dir = run_dir_of(Path(run))
    cfg = load_run_config(run_dir)
    suffix = Path(out).suffix.lstrip(".").lower() if out is not None else ""
    if suffix in MESH_FORMATS and not any(name == "format" for name, _, _ in values):
        values = [("format", suffix, "--out")] + list(values)
    for name, value, label in values:
        set_value(cfg, f"mesh.{name}", value, label)
    validate(cfg.mesh)
    target = Path(out) if out else run_dir / f"mesh.{cfg.mesh.format}"
    # The check writes mesh_check.json/png into the run folder, wherever the mesh goes.
    inside = run_dir / "mesh_check.json" if cfg.mesh.check else target
    with lock_if_inside(run_dir, inside, "t3d export-mesh"):
        scene, run_dir, step = load_scene(run, device, note=lambda line: console.print(line, markup=False))
        result = export_run_mesh(scene, run_dir, cfg.mesh, out_path=target)
    console.print(result.summary(step), markup=False, highlight=False)
    return result.mesh_path
