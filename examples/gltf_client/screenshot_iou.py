"""Load a GLB in three.js (GLTFLoader) in headless Chromium and compare its silhouette with the field's.

Serves view.html, the GLB and the client's node_modules from 127.0.0.1, screenshots each view
twice with shoot.mjs (playwright-core driving Debian's chromium, waiting until three.js has
drawn): the file's own material, and flat black for the silhouette. Renders the field from the
same cameras with t3d and reports the silhouette IoU per view (field: opacity > 0.5; three.js:
dark pixels of the black pass). Writes report.json and side_by_side.png (field | three.js).

usage: python screenshot_iou.py RUN_DIR GLB CLIENT_DIR OUT_DIR [--size 256] [--azimuths 0,90,180,270]
"""

from __future__ import annotations

import argparse
import functools
import http.server
import json
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import torch

from t3d.run.load import load_scene
from t3d.scene.cameras import Cameras
from t3d.video import contact_sheet, save_png, side_by_side

class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


def serve(folder: Path) -> tuple[http.server.ThreadingHTTPServer, int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(folder)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, server.server_address[1]


def screenshots(jobs: list[dict], client_dir: Path, folder: Path) -> None:
    """Run shoot.mjs on [{url, path, size}, ...] (one browser for all)."""
    jobs_file = folder / "jobs.json"
    jobs_file.write_text(json.dumps(jobs))
    shoot = Path(__file__).with_name("shoot.mjs")
    subprocess.run(["node", str(shoot), str(client_dir), str(jobs_file)], check=True, timeout=600)


def field_views(run_dir: Path, azimuths: list[float], elevation: float, size: int):
    scene, _, step = load_scene(run_dir, "cpu")
    n = len(azimuths)
    cams = Cameras(torch.tensor(azimuths), torch.full((n,), elevation), torch.full((n,), scene.distance),
                   torch.full((n,), scene.fovy))
    with torch.no_grad():
        out = scene.render(cams, size, chunk_rays=2**15)
    return scene, out.rgb.permute(0, 2, 3, 1).clamp(0, 1).numpy(), out.opacity[:, 0].numpy() > 0.5


def main() -> None:
    ap = argparse.ArgumentParser()
    for name in ("run_dir", "glb", "client_dir", "out_dir"):
        ap.add_argument(name, type=Path)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--elevation", type=float, default=15.0)
    ap.add_argument("--azimuths", default="0,90,180,270")
    args = ap.parse_args()
    azimuths = [float(a) for a in args.azimuths.split(",")]
    scene, field_rgb, field_mask = field_views(args.run_dir, azimuths, args.elevation, args.size)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="t3d-gltf-client-") as tmp:
        site = Path(tmp)
        shutil.copy(Path(__file__).with_name("view.html"), site / "view.html")
        shutil.copy(args.glb, site / "model.glb")
        (site / "node_modules").symlink_to((args.client_dir / "node_modules").resolve())
        server, port = serve(site)
        try:
            base = (f"http://127.0.0.1:{port}/view.html?model=model.glb&size={args.size}&el={args.elevation}"
                    f"&dist={scene.distance}&fovy={scene.fovy}")
            shaded = [args.out_dir / f"three_az{int(az)}.png" for az in azimuths]
            masks = [site / f"mask_az{int(az)}.png" for az in azimuths]
            jobs = [{"url": f"{base}&az={az}", "path": str(p), "size": args.size} for az, p in zip(azimuths, shaded)]
            jobs += [{"url": f"{base}&az={az}&mode=mask", "path": str(p), "size": args.size} for az, p in zip(azimuths, masks)]
            screenshots(jobs, args.client_dir, site)
        finally:
            server.shutdown()
        rows, ious = [], []
        for i in range(len(azimuths)):
            three_mask = iio.imread(masks[i])[..., :3].mean(axis=-1) < 128
            union = (three_mask | field_mask[i]).sum()
            ious.append(float((three_mask & field_mask[i]).sum() / union) if union else 1.0)
            rows.append(side_by_side(field_rgb[i], iio.imread(shaded[i])[..., :3]))
    save_png(contact_sheet(rows, columns=2, pad=4), args.out_dir / "side_by_side.png")
    report = {"glb": str(args.glb), "azimuths": azimuths, "elevation": args.elevation, "size": args.size,
              "iou": ious, "iou_mean": float(np.mean(ious))}
    (args.out_dir / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report))


if __name__ == "__main__":
    main()
