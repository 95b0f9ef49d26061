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

import torch


def build(prompt: str, model: str, method: str, sets: list[str]):
    from t3d.commands import apply_sets
    from t3d.config import RunConfig, apply_method_preset
    from t3d.engine import Scene
    from t3d.priors.factory import build_prior
    from t3d.run import resolve_framing

    cfg = RunConfig(prompt=prompt, model=model, device="cpu")
    apply_method_preset(cfg, method)
    apply_sets(cfg, sets)
    prior = build_prior(cfg, torch.device("cpu"))
    resolve_framing(cfg, prior)
    return cfg, prior, Scene.build(cfg, torch.device("cpu"))


def pose_of(images: torch.Tensor, prior, group: int, elevation: float) -> torch.Tensor:
    from t3d.evaluate.janus import classify_views

    return classify_views(prior.decode(images), prior, group, elevation)


def main(argv=None) -> int:
    from t3d.prompts.views import VIEW_NAMES, ViewPrompts
    from t3d.scene.cameras import orbit_cameras

    p = argparse.ArgumentParser()
    p.add_argument("prompt")
    p.add_argument("--model", default="analytic")
    p.add_argument("--method", default="esd")
    p.add_argument("--set", dest="sets", action="append", default=[])
    p.add_argument("--draws", type=int, default=8)
    p.add_argument("--init-colour", default="", help="R,G,B in (0, 1) or refs-mean: the field's starting colour")
    args = p.parse_args(argv)
    cfg, prior, scene = build(args.prompt, args.model, args.method, args.sets)
    group = prior.group_of(args.prompt)
    if args.init_colour == "refs-mean":
        mine = prior.refs.images[prior.refs.group == group]
        covered = (mine < 0.98).any(1, keepdim=True).expand_as(mine)  # not the white background
        scene.field.start_colour(mine.permute(1, 0, 2, 3)[covered.permute(1, 0, 2, 3)].view(3, -1).mean(1))
    elif args.init_colour:
        scene.field.start_colour([float(v) for v in args.init_colour.split(",")])
    elevs = prior.refs.elevation[prior.refs.group == group].unique()
    elevation = float(elevs[(elevs - 15.0).abs().argmin()])
    cams = orbit_cameras(36, elevation, cfg.analytic.distance, cfg.analytic.fovy)
    with torch.no_grad():
        x0 = prior.encode(scene.render(cams, prior.image_size, chunk_rays=2**15).rgb)
    start = pose_of(x0, prior, group, elevation)
    g = cfg.guidance
    views = ViewPrompts(args.prompt, g.view_prompts, g.front_halfwidth, g.view_words)
    cond = prior.embed(views.for_cameras(cams))
    uncond = prior.embed([""] * len(cams))
    bins = torch.tensor([VIEW_NAMES.index(p.rsplit(", ", 1)[-1].split()[0]) if g.view_prompts else 0
                         for p in views.for_cameras(cams)])
    print(f"{args.prompt} ({args.model}, {args.method}, CFG {g.guidance_scale}); elevation {elevation:g}; "
          f"sets {args.sets}; init colour {args.init_colour or 'random MLP'}")
    print(f"step-0 render: nearest reference |azimuth| < 45 (front) in {int((start.abs() < 45).sum())}/36 views, "
          f"> 135 (back) in {int((start.abs() > 135).sum())}/36")
    gen = torch.Generator().manual_seed(0)
    for t_frac in (0.9, 0.7, 0.5, 0.3):
        t = torch.full((36,), int(t_frac * 999))
        a2 = prior.alphas_cumprod[t].view(-1, 1, 1, 1)
        counts = torch.zeros(3, 3)  # camera bin (front, side, back) x target pose (front, side, back)
        for _ in range(args.draws):
            noise = torch.randn(x0.shape, generator=gen)
            x_t = a2.sqrt() * x0 + (1 - a2).sqrt() * noise
            d_c, d_u = prior.denoise(x_t, t, cond), prior.denoise(x_t, t, uncond)
            target = d_u + g.guidance_scale * (d_c - d_u)
            pose = pose_of(target.clamp(-1, 1), prior, group, elevation).abs()
            target_bin = (pose >= 45).long() + (pose > 135).long()
            cam_bin = (cams.azimuth.abs() >= 45).long() + (cams.azimuth.abs() > 135).long()
            for cb, tb in zip(cam_bin.tolist(), target_bin.tolist()):
                counts[cb, tb] += 1
        shares = counts / counts.sum(1, keepdim=True)
        text = "; ".join(f"{name} cams -> front {s[0]:.2f} side {s[1]:.2f} back {s[2]:.2f}"
                         for name, s in zip(("front", "side", "back"), shares.tolist()))
        print(f"t={t_frac:.1f}: CFG target pose: {text}")
    del bins
    return 0


if __name__ == "__main__":
    sys.exit(main())
