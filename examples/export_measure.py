"""Measure mesh export on a run folder: time, file sizes, mesh-vs-field IoU / PSNR, parts; plus pictures.

usage: PYTHONPATH=. python examples/export_measure.py RUN_DIR OUT_DIR [--texture-sizes 512,1024]
           [--formats glb,obj] [--set key=value ...] [--four-sides docs/images/x.png]

Each (format, texture size) is exported into OUT_DIR/<format>-<size>/ (mesh + mesh_check.json/png)
and reported as one JSON line. --four-sides writes a PNG of the field's render (top row) and the
exported textured mesh, read back from the file (bottom row), from the front, left, back and right.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from t3d.export.config import MeshExportConfig
from t3d.export.load import load_asset
from t3d.export.mesh_export import export_run_mesh
from t3d.export.mesh_render import render_mesh
from t3d.run.load import load_scene
from t3d.scene.cameras import orbit_cameras
from t3d.video import contact_sheet, save_png


def parse_sets(pairs: list[str]) -> dict:
    out = {}
    for pair in pairs:
        key, value = pair.split("=", 1)
        out[key] = json.loads(value) if value[:1] in "0123456789-[{tfn" else value
    return out


def four_sides(scene, mesh_path: Path, out_png: Path, size: int = 160) -> None:
    cams = orbit_cameras(4, 15.0, scene.distance, scene.fovy)  # front, left, back, right
    with torch.no_grad():
        field = scene.render(cams, size, chunk_rays=2**15).rgb.permute(0, 2, 3, 1).clamp(0, 1).numpy()
    mesh = render_mesh(load_asset(mesh_path), cams, size).rgb.numpy()
    save_png(contact_sheet(list(field) + list(mesh), columns=4, pad=2), out_png)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("--texture-sizes", default="512,1024")
    ap.add_argument("--formats", default="glb,obj")
    ap.add_argument("--set", action="append", default=[], help="MeshExportConfig field=value")
    ap.add_argument("--four-sides", type=Path)
    args = ap.parse_args()
    scene, _, step = load_scene(args.run_dir, "cpu")
    extra = parse_sets(args.set)
    last_glb = None
    for fmt in args.formats.split(","):
        for size in [int(s) for s in args.texture_sizes.split(",")]:
            folder = args.out_dir / f"{fmt}-{size}"
            folder.mkdir(parents=True, exist_ok=True)
            cfg = MeshExportConfig(format=fmt, texture_size=size, **extra)
            start = time.perf_counter()
            result = export_run_mesh(scene, folder, cfg)
            seconds = time.perf_counter() - start
            files = {p.name: p.stat().st_size for p in result.paths if p.suffix in (".glb", ".obj", ".mtl", ".png", ".ply")}
            print(json.dumps({"run": str(args.run_dir), "step": step, "format": fmt, "texture": size,
                              "seconds": round(seconds, 1), "stages": result.seconds, "bytes": files,
                              "vertices": result.vertices, "faces": result.faces, "level": round(result.level, 3),
                              "level_iou": result.level_iou, "iou_mean": result.iou_mean,
                              "psnr_mean": result.psnr_mean, "iou": result.check.iou if result.check else None,
                              "psnr": result.check.psnr if result.check else None,
                              "parts_found": result.parts_found[:8], "parts_kept": result.parts_kept}), flush=True)
            if fmt == "glb":
                last_glb = result.mesh_path
    if args.four_sides and last_glb is not None:
        four_sides(scene, last_glb, args.four_sides)


if __name__ == "__main__":
    main()
