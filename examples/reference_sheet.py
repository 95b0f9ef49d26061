"""Contact sheet of built-in objects as the analytic prior sees them: one row per object and
elevation, one column per azimuth step, each view rendered at the prior's resolution and upscaled
(nearest neighbour) so single pixels stay visible.

Usage:
  python examples/reference_sheet.py --objects cat,dog,bunny --out /tmp/animals.png
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def sheet(objects: list[str], azimuth_step: float, elevations: list[float], resolution: int, upscale: int):
    import numpy as np
    import torch
    from PIL import Image, ImageDraw

    from t3d.priors import procedural
    from t3d.scene.cameras import Cameras

    azimuths = torch.arange(0.0, 360.0, azimuth_step)
    cell, label_w, label_h = resolution * upscale, 90, 14
    canvas = Image.new("RGB", (label_w + cell * len(azimuths), label_h + cell * len(objects) * len(elevations)), "white")
    draw = ImageDraw.Draw(canvas)
    for c, az in enumerate(azimuths.tolist()):
        draw.text((label_w + c * cell + 2, 1), f"{az:g}", fill=(0, 0, 0))
    row = 0
    for name in objects:
        for el in elevations:
            az = ((azimuths + 180) % 360) - 180
            cams = Cameras(az, torch.full_like(az, el), torch.full_like(az, 2.0), torch.full_like(az, 45.0))
            rgb, _ = procedural.render_object(name, cams, resolution)
            tiles = (rgb.clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).numpy()
            y = label_h + row * cell
            draw.text((2, y + cell // 2 - 6), f"{name} el {el:g}", fill=(0, 0, 0))
            for c, tile in enumerate(tiles):
                big = np.kron(tile, np.ones((upscale, upscale, 1), dtype=np.uint8))
                canvas.paste(Image.fromarray(big), (label_w + c * cell, y))
            row += 1
    return canvas


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--objects", default="cat,dog,bunny")
    p.add_argument("--azimuth-step", type=float, default=30.0)
    p.add_argument("--elevations", default="10,25")
    p.add_argument("--resolution", type=int, default=32)
    p.add_argument("--upscale", type=int, default=4)
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    img = sheet(args.objects.split(","), args.azimuth_step, [float(e) for e in args.elevations.split(",")],
                args.resolution, args.upscale)
    img.save(args.out)
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
