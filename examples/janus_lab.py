"""Lab runner for docs/janus-findings.md: one training run with a pose trace and optional start
patches that have no config key yet, then the ground-truth Janus score of `t3d evaluate`.

Every `--trace-every` steps it renders 12 orbit views and prints how many look like the front
(nearest reference |azimuth| < 45), so one sees when a run falls into the front basin. The run
folder is a normal one (config.yaml, checkpoint, metrics.json, eval/orbit.png).

Usage:
  python examples/janus_lab.py "a smiling cat" --method esd --seed 0 --steps 600 --out RUN \
      [--model analytic:FOLDER] [--set KEY=VALUE ...] [--init-colour refs-mean|R,G,B] [--record FILE.jsonl]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch


def reference_mean_colour(prior, group: int) -> torch.Tensor:
    """Mean colour of the object's covered (not white) reference pixels."""
    mine = prior.refs.images[prior.refs.group == group].permute(1, 0, 2, 3).reshape(3, -1)
    covered = (mine < 0.98).any(0)
    return mine[:, covered].mean(1)


@torch.no_grad()
def start_colour(field, rgb) -> None:
    """Start every point at colour `rgb` instead of the random MLP's ~0.5 grey: zero the output
    layer's colour weights and set its bias to logit(rgb)."""
    last = field.mlp[-1]
    last.weight[1:].zero_()
    last.bias[1:] = torch.logit(torch.as_tensor(rgb, dtype=torch.float32).clamp(0.02, 0.98)).to(last.bias)


def front_views(trainer, prior, refs, elevation: float) -> int:
    from t3d.evaluate.janus import classify_views
    from t3d.scene.cameras import orbit_cameras

    cams = orbit_cameras(12, elevation, trainer.scene.distance, trainer.scene.fovy)
    with torch.no_grad():
        rgb = trainer.scene.render(cams, prior.image_size, chunk_rays=2**15).rgb
    return int((classify_views(rgb.cpu(), refs, elevation).abs() < 45).sum())


def parse_args(argv):
    p = argparse.ArgumentParser()
    p.add_argument("prompt")
    p.add_argument("--method", default="esd")
    p.add_argument("--model", default="analytic")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--set", dest="sets", action="append", default=[])
    p.add_argument("--init-colour", default="")
    p.add_argument("--no-view-energy", action="store_true",
                   help="the prior without view energy (AnalyticPrior.view_energy = 0): the pre-fix behaviour")
    p.add_argument("--blob-axes", default="", help="ax,ay,az: the start blob's relative radii along x (front), y, z")
    p.add_argument("--uncond-same-object", action="store_true",
                   help="CFG's unconditional branch = the prompt's object at uniform pose (not every object)")
    p.add_argument("--key-light", default="", help="x,y,z: re-light the built-in references (use a separate T3D_CACHE)")
    p.add_argument("--trace-every", type=int, default=50)
    p.add_argument("--record", type=Path, default=None)
    p.add_argument("--tag", default="")
    return p.parse_args(argv)


def patch_before_prior(args) -> None:
    """Changes that must be in place before the references are rendered or the prior is built."""
    if args.key_light:
        import functools

        from t3d.priors import procedural

        light = tuple(float(v) for v in args.key_light.split(","))
        procedural.render_object = functools.partial(procedural.render_object, key_light=light)
    if args.no_view_energy:
        from t3d.priors.analytic import AnalyticPrior

        AnalyticPrior.view_energy = lambda self, prompt: torch.zeros(len(self.refs), device=self.device)
    if args.blob_axes:  # on the class: the evaluation's reloaded field must have the same blob
        from t3d.scene.field import RadianceField

        axes = torch.tensor([float(v) for v in args.blob_axes.split(",")])

        def blob(self, points, _axes=axes):
            radius = (points / _axes.to(points)).norm(dim=-1)
            return self.cfg.blob_density * (1 - radius / self.cfg.blob_radius)

        RadianceField.blob = blob


def patch_uncond(prior, group: int) -> None:
    """CFG's unconditional branch becomes the prompt's object at uniform pose."""
    original = prior.log_weights

    def log_weights(prompt: str):
        if prompt.strip():
            return original(prompt)
        mine = prior.refs.group == group
        return torch.where(mine, -torch.log(mine.sum().float()), torch.tensor(float("-inf")))

    prior.log_weights = log_weights


def build_trainer(args):
    from t3d.commands.generate import GenerateRequest, new_run_config, resolve_framing
    from t3d.config import validate
    from t3d.engine import Trainer
    from t3d.priors.factory import build_prior
    from t3d.run.folder import prepare_new_run_dir, save_config

    req = GenerateRequest(prompt=args.prompt, method=args.method, model=args.model, steps=args.steps, out=args.out,
                          overwrite=True, overrides={"seed": args.seed, "device": "cpu"}, sets=args.sets)
    cfg = new_run_config(req)
    cfg.output.preview_every = 0
    cfg.output.checkpoint_every = args.steps
    validate(cfg)
    prior = build_prior(cfg, torch.device("cpu"))
    prior.check_prompt(cfg.prompt)
    resolve_framing(cfg, prior)
    group = prior.group_of(cfg.prompt)
    if args.uncond_same_object:
        patch_uncond(prior, group)
    trainer = Trainer(cfg, args.out, prior, torch.device("cpu"))
    if args.init_colour == "refs-mean":
        start_colour(trainer.scene.field, reference_mean_colour(prior, group))
    elif args.init_colour:
        start_colour(trainer.scene.field, [float(v) for v in args.init_colour.split(",")])
    prepare_new_run_dir(args.out, True)
    save_config(cfg, args.out)
    return trainer, prior, group


def main(argv=None) -> int:
    from t3d.evaluate.janus import pick_elevation
    from t3d.evaluate.runner import EvalOptions, evaluate_run

    args = parse_args(argv)
    patch_before_prior(args)
    trainer, prior, group = build_trainer(args)
    refs = prior.posed_references(args.prompt)
    elevation = pick_elevation(refs, None)
    trace = {0: front_views(trainer, prior, refs, elevation)}
    start = time.perf_counter()
    while trainer.step < trainer.cfg.steps:
        if trainer.train_step() is not None:
            trainer.step += 1
            if args.trace_every > 0 and trainer.step % args.trace_every == 0:
                trace[trainer.step] = front_views(trainer, prior, refs, elevation)
    seconds = time.perf_counter() - start
    trainer.save()
    j = evaluate_run(args.out, EvalOptions(views=36, device="cpu")).metrics["janus"]
    record = {"tag": args.tag, "prompt": args.prompt, "model": args.model, "method": args.method, "seed": args.seed,
              "steps": args.steps, "sets": args.sets, "init_colour": args.init_colour, "key_light": args.key_light,
              "uncond_same_object": args.uncond_same_object, "blob_axes": args.blob_axes,
              "view_energy": not args.no_view_energy, "run": str(args.out), "train_s": round(seconds, 1),
              "front_of_12_by_step": trace,
              **{k: j[k] for k in ("pose_accuracy", "front_views", "faces", "parts", "janus", "success")}}
    line = json.dumps(record)
    print(line)
    if args.record:
        with open(args.record, "a") as fh:
            fh.write(line + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
