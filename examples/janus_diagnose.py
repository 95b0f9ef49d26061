"""Where does a run start, as the analytic prior sees it? For the step-0 field (the blob) of a
config, per training view bin (front / side / back camera): which pose the render's nearest
reference has, and where the prior's CFG-guided denoised image D_u + s (D_c - D_u) points at a few
noise levels (the pose of its nearest reference), averaged over noise draws.

Lab tool for docs/janus-findings.md, not part of t3d.

Usage:
  python examples/janus_diagnose.py "a smiling cat" [--model analytic:FOLDER] [--method esd] [--set KEY=VALUE ...]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))  # janus_lab.py beside this script


def build(prompt: str, model: str, method: str, sets: list[str]):
    from t3d.commands.generate import resolve_framing
    from t3d.config import build_config
    from t3d.priors.factory import build_prior
    from t3d.scene.scene import Scene

    cfg = build_config(method, sets=sets)
    cfg.prompt, cfg.model, cfg.device = prompt, model, "cpu"
    prior = build_prior(cfg, torch.device("cpu"))
    resolve_framing(cfg, prior)
    return cfg, prior, Scene.build(cfg, torch.device("cpu"))


def pose_of(images: torch.Tensor, prior, refs, elevation: float) -> torch.Tensor:
    from t3d.evaluate.janus import classify_views

    return classify_views(prior.decode(images), refs, elevation)


def target_shares(prior, x0, cams, cond, uncond, scale: float, t_frac: float, draws: int, refs,
                  elevation: float, gen: torch.Generator) -> torch.Tensor:
    """(3, 3): per camera bin (front, side, back), the share of CFG targets whose nearest reference
    is front / side / back, over `draws` noise draws at timestep t_frac * T."""
    t = torch.full((len(cams),), int(t_frac * 999))
    a2 = prior.alphas_cumprod[t].view(-1, 1, 1, 1)
    cam_bin = (cams.azimuth.abs() >= 45).long() + (cams.azimuth.abs() > 135).long()
    counts = torch.zeros(3, 3)
    for _ in range(draws):
        x_t = a2.sqrt() * x0 + (1 - a2).sqrt() * torch.randn(x0.shape, generator=gen)
        d_c, d_u = prior.denoise(x_t, t, cond), prior.denoise(x_t, t, uncond)
        pose = pose_of((d_u + scale * (d_c - d_u)).clamp(-1, 1), prior, refs, elevation).abs()
        target_bin = (pose >= 45).long() + (pose > 135).long()
        counts.index_put_((cam_bin, target_bin), torch.ones(len(cams)), accumulate=True)
    return counts / counts.sum(1, keepdim=True)


def main(argv=None) -> int:
    from t3d.prompts.views import ViewPrompts
    from t3d.scene.cameras import orbit_cameras

    p = argparse.ArgumentParser()
    p.add_argument("prompt")
    p.add_argument("--model", default="analytic")
    p.add_argument("--method", default="esd")
    p.add_argument("--set", dest="sets", action="append", default=[])
    p.add_argument("--draws", type=int, default=8)
    p.add_argument("--init-colour", default="", help="R,G,B in (0, 1): the field's starting colour")
    args = p.parse_args(argv)
    cfg, prior, scene = build(args.prompt, args.model, args.method, args.sets)
    refs = prior.posed_references(args.prompt)
    if args.init_colour:
        from janus_lab import start_colour

        start_colour(scene.field, [float(v) for v in args.init_colour.split(",")])
    elevs = refs.elevation.unique()
    elevation = float(elevs[(elevs - 15.0).abs().argmin()])
    cams = orbit_cameras(36, elevation, cfg.analytic.distance, cfg.analytic.fovy)
    with torch.no_grad():
        x0 = prior.encode(scene.render(cams, prior.image_size, chunk_rays=2**15).rgb)
    start = pose_of(x0, prior, refs, elevation)
    g, pr = cfg.guidance.guide, cfg.prompts
    views = ViewPrompts(args.prompt, pr.view_prompts, pr.front_halfwidth, tuple(pr.view_words))
    cond, uncond = prior.embed(views.for_cameras(cams)), prior.embed([""] * len(cams))
    print(f"{args.prompt} ({args.model}, {args.method}, CFG {g.scale}); elevation {elevation:g}; "
          f"sets {args.sets}; init colour {args.init_colour or 'random MLP'}")
    print(f"step-0 render: nearest reference |azimuth| < 45 (front) in {int((start.abs() < 45).sum())}/36 views, "
          f"> 135 (back) in {int((start.abs() > 135).sum())}/36")
    gen = torch.Generator().manual_seed(0)
    for t_frac in (0.9, 0.7, 0.5, 0.3):
        shares = target_shares(prior, x0, cams, cond, uncond, g.scale, t_frac, args.draws, refs,
                               elevation, gen)
        text = "; ".join(f"{name} cams -> front {s[0]:.2f} side {s[1]:.2f} back {s[2]:.2f}"
                         for name, s in zip(("front", "side", "back"), shares.tolist()))
        print(f"t={t_frac:.1f}: CFG target pose: {text}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
