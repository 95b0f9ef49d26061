"""Write a posed reference folder for `--model analytic:FOLDER`, rendered unlike the built-ins.

The default subject is a cat nobody tuned t3d for: a grey *sitting* cat with a white chest and
muzzle and its tail curled round its side (the built-in cat is a ginger standing cat), lit by one
light from the left and above with less ambient light than the built-ins, at 64 px, azimuth every
10 degrees, elevations 0/15/30, front at azimuth 0: the format of README "analytic prior"
(`poses.json` + RGBA PNGs). `--subject builtin:NAME` renders a built-in object the same way.

Usage:
  python examples/posed_folder.py --out /tmp/cat-folder
  t3d generate "a smiling cat" --model analytic:/tmp/cat-folder --method esd
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

# One light from the left (the front camera's left is -y), above and a little in front.
FOLDER_LIGHT = (0.35, -0.8, 0.6)
FOLDER_AMBIENT, FOLDER_DIFFUSE = 0.3, 0.8


def sitting_cat():
    from t3d.priors.animals import EYE, MOUTH
    from t3d.priors.shapes import Part, ProceduralObject, capsule, ellipsoid, round_cone, sphere

    grey, white, pink = (0.50, 0.52, 0.56), (0.96, 0.96, 0.95), (0.92, 0.50, 0.58)
    tail = [(-0.30, 0.0, -0.50), (-0.30, 0.30, -0.52), (0.0, 0.42, -0.52), (0.25, 0.34, -0.52)]
    parts = [
        Part(ellipsoid((-0.08, 0.0, -0.20), (0.30, 0.25, 0.34)), grey),  # upright body
        Part(ellipsoid((0.14, 0.0, -0.20), (0.14, 0.16, 0.24)), white),  # chest
        Part(sphere((0.10, 0.0, 0.27), 0.22), grey),  # head
        Part(ellipsoid((0.28, 0.0, 0.20), (0.07, 0.12, 0.07)), white),  # muzzle
        Part(sphere((0.345, 0.0, 0.24), 0.03), pink),  # nose
        Part(sphere((0.26, 0.09, 0.33), 0.042), (0.55, 0.75, 0.15)),  # green eyes
        Part(sphere((0.26, -0.09, 0.33), 0.042), (0.55, 0.75, 0.15)),
        Part(capsule((0.33, 0.05, 0.17), (0.34, 0.0, 0.145), 0.015), MOUTH),
        Part(capsule((0.34, 0.0, 0.145), (0.33, -0.05, 0.17), 0.015), MOUTH),
        Part(round_cone((0.05, 0.12, 0.42), (0.04, 0.17, 0.62), 0.08, 0.012), grey),  # ears
        Part(round_cone((0.05, -0.12, 0.42), (0.04, -0.17, 0.62), 0.08, 0.012), grey),
        Part(capsule((0.16, 0.09, -0.25), (0.20, 0.09, -0.56), 0.05), white),  # front legs
        Part(capsule((0.16, -0.09, -0.25), (0.20, -0.09, -0.56), 0.05), white),
        *[Part(round_cone(tail[i], tail[i + 1], 0.05, 0.045), grey) for i in range(len(tail) - 1)],
    ]
    return ProceduralObject("folder-cat", ("cat",), tuple(parts), scale=1.0)


def write_folder(out: Path, subject, words: list[str], resolution: int = 64, azimuth_step: float = 10.0,
                 elevations=(0.0, 15.0, 30.0)) -> int:
    import imageio.v3 as iio
    import numpy as np
    import torch

    from t3d.priors.procedural import render_object
    from t3d.scene.cameras import Cameras

    out.mkdir(parents=True, exist_ok=True)
    entries = []
    for el in elevations:
        az = torch.arange(-180.0, 180.0, azimuth_step)
        cams = Cameras(az, torch.full_like(az, el), torch.full_like(az, 2.0), torch.full_like(az, 45.0))
        rgb, alpha = render_object(subject, cams, resolution, key_light=FOLDER_LIGHT,
                                   ambient=FOLDER_AMBIENT, diffuse=FOLDER_DIFFUSE)
        # Straight alpha: colour where covered, so compositing on white gives back the render.
        cover = alpha.clamp_min(1e-6)
        colour = ((rgb - (1 - alpha)) / cover).clamp(0, 1)
        rgba = torch.cat([colour, alpha], 1).permute(0, 2, 3, 1).numpy()
        for a, image in zip(az.tolist(), rgba):
            name = f"el{el:+03.0f}_az{a:+04.0f}.png"
            iio.imwrite(out / name, (image * 255).round().astype(np.uint8))
            entries.append({"file": name, "azimuth": a, "elevation": el, "words": words})
    (out / "poses.json").write_text(json.dumps(entries, indent=1))
    return len(entries)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--subject", default="sitting-cat", help="sitting-cat | builtin:NAME")
    p.add_argument("--words", default="", help="comma-separated prompt words (default: the subject's name)")
    p.add_argument("--resolution", type=int, default=64)
    args = p.parse_args(argv)
    if args.subject == "sitting-cat":
        subject, words = sitting_cat(), ["cat"]
    elif args.subject.startswith("builtin:"):
        subject = args.subject.split(":", 1)[1]
        words = [subject]
    else:
        print(f"posed_folder: unknown subject {args.subject!r}", file=sys.stderr)
        return 2
    words = args.words.split(",") if args.words else words
    n = write_folder(args.out, subject, words, args.resolution)
    print(f"{args.out}: {n} images")
    return 0


if __name__ == "__main__":
    sys.exit(main())
