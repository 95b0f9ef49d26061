"""`t3d evaluate`: reload a run, render its orbit once, compute every metric that can be computed,
and leave the results in the run folder (metrics.json, eval/orbit.png, eval/azimuth.png, ...).

Metrics that need a model (CLIP, an image classifier, the USD pose classifier) run only when
the user names the model; otherwise the run's metrics carry a note saying what was skipped.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from t3d.errors import T3dError

EVAL_DIR = "eval"
METRICS_FILE = "metrics.json"


@dataclass
class EvalOptions:
    views: int = 36
    elevation: Optional[float] = None  # None: the analytic references' elevation nearest 15 degrees
    resolution: int = 0  # 0: the analytic prior's image size, else 128
    device: str = "auto"
    clip_model: Optional[str] = None  # HF id or folder: CLIP distance, per-azimuth similarity, cEnt
    classifier_model: Optional[str] = None  # HF id or folder: IQ / IV / IG
    pose_classifier: Optional[str] = None  # USD pose classifier checkpoint: pEnt
    fid_samples: int = 0  # prior samples drawn for FID (0 = no FID)
    write: bool = True  # write metrics.json and images into the run folder


@dataclass
class Orbit:
    """The rendered orbit shared by every metric."""

    rgb: torch.Tensor  # (V, 3, R, R) in [0, 1]
    azimuth: torch.Tensor  # (V,) degrees
    elevation: float


@dataclass
class RunEvaluation:
    run_dir: Path
    metrics: dict
    orbit: Orbit
    notes: list[str] = field(default_factory=list)


def sheet_tiles(rgb: torch.Tensor, min_size: int = 64) -> list[np.ndarray]:
    """Views as uint8 tiles, upscaled by an integer factor (nearest) so small renders stay readable."""
    factor = max(1, -(-min_size // rgb.shape[-1]))
    tiles = rgb.clamp(0, 1).mul(255).round().byte().permute(0, 2, 3, 1).cpu().numpy()
    return [np.kron(t, np.ones((factor, factor, 1), np.uint8)) for t in tiles]


@torch.no_grad()
def render_orbit(scene, views: int, elevation: float, resolution: int) -> Orbit:
    from t3d.scene.cameras import orbit_cameras

    cams = orbit_cameras(views, elevation, scene.distance, scene.fovy)
    out = scene.render(cams, resolution, chunk_rays=2**15)
    return Orbit(out.rgb.float().cpu().clamp(0, 1), cams.azimuth, elevation)


def check_options(opts: EvalOptions) -> None:
    if opts.views < 4:
        raise T3dError(f"--views must be at least 4, got {opts.views}")
    if opts.resolution < 0 or 0 < opts.resolution < 8:
        raise T3dError(f"--resolution must be at least 8, got {opts.resolution}")
    if opts.elevation is not None and not -90.0 <= opts.elevation <= 90.0:
        raise T3dError(f"--elevation must be in [-90, 90] degrees, got {opts.elevation}")
    if opts.fid_samples < 0:
        raise T3dError(f"--fid-samples must be 0 or more, got {opts.fid_samples}")


def evaluate_run(target, opts: EvalOptions, note=None) -> RunEvaluation:
    from t3d.evaluate.janus import classify_views, pick_elevation, score_predictions
    from t3d.priors.factory import build_prior, is_analytic
    from t3d.run.load import load_scene

    check_options(opts)
    scene, run_dir, step = load_scene(target, opts.device, note)
    cfg = scene.cfg
    notes: list[str] = []
    # Ground truth needs posed references: only a prior that has them is loaded (a Stable
    # Diffusion model is not loaded just to find it has none).
    prior = build_prior(cfg, scene.device) if is_analytic(cfg.model) else None
    if prior is not None:
        prior.check_prompt(cfg.prompt)
    refs = prior.posed_references(cfg.prompt) if prior is not None else None
    elevation = pick_elevation(refs, opts.elevation) if refs is not None else (
        15.0 if opts.elevation is None else opts.elevation)
    resolution = opts.resolution or (refs.images.shape[-1] if refs is not None else 128)
    orbit = render_orbit(scene, opts.views, elevation, resolution)

    metrics: dict = {"run": str(run_dir), "step": step, "prompt": cfg.prompt, "method": cfg.method,
                     "model": cfg.model, "seed": cfg.seed, "views": opts.views, "elevation": elevation,
                     "resolution": resolution}
    if refs is not None:
        predicted = classify_views(orbit.rgb, refs, elevation)
        metrics["janus"] = score_predictions(orbit.azimuth, predicted, elevation, refs.front_halfwidth,
                                             part=(refs.part, refs.part_azimuth)).as_dict()
        metrics["analytic"] = {"bandwidth": cfg.analytic.bandwidth, "front_mass": cfg.analytic.front_mass,
                               "adherence": cfg.analytic.adherence}
    else:
        metrics["janus"] = None
        notes.append("ground-truth Janus metrics skipped: they need the analytic prior's posed references")

    from t3d.evaluate.model_metrics import model_metrics

    metrics.update(model_metrics(orbit, cfg, opts, prior, notes))
    metrics["notes"] = notes
    result = RunEvaluation(run_dir, metrics, orbit, notes)
    if opts.write:
        write_outputs(result)
    return result


def write_outputs(result: RunEvaluation) -> None:
    from t3d.evaluate.plots import azimuth_plot
    from t3d.io import atomic_write_text
    from t3d.video import contact_sheet, save_png

    out = result.run_dir / EVAL_DIR
    m = result.metrics
    save_png(contact_sheet(sheet_tiles(result.orbit.rgb), columns=12), out / "orbit.png")
    if m.get("janus"):
        j = m["janus"]
        title = f"{m['method']} seed {m['seed']}: pose acc {j['pose_accuracy']:.2f}, faces {j['faces']}"
        save_png(azimuth_plot(j["true_azimuth"], j["predicted_azimuth"], title), out / "azimuth.png")
    for name, image in m.pop("_plots", {}).items():
        save_png(image, out / f"{name}.png")
    atomic_write_text(result.run_dir / METRICS_FILE, json.dumps(m, indent=2) + "\n")


def compare_sheet(results: list[RunEvaluation], columns: int = 12) -> np.ndarray:
    """One row per run (a label strip, then `columns` evenly spaced orbit views)."""
    from PIL import Image, ImageDraw

    from t3d.video import contact_sheet, side_by_side

    rows = []
    for r in results:
        v = r.orbit.rgb.shape[0]
        idx = torch.linspace(0, v, min(columns, v) + 1)[:-1].long()
        strip = contact_sheet(sheet_tiles(r.orbit.rgb[idx]), columns=len(idx))
        label = Image.new("RGB", (150, strip.shape[0]), (255, 255, 255))
        m, j = r.metrics, r.metrics.get("janus")
        text = f"{r.run_dir.name}\n{m['method']} seed {m['seed']}"
        if j:
            text += f"\nacc {j['pose_accuracy']:.2f} faces {j['faces']}\nfront {j['front_views']}/{j['views']}"
        ImageDraw.Draw(label).multiline_text((4, 4), text, fill=(0, 0, 0))
        rows.append(side_by_side(np.asarray(label), strip))
    return contact_sheet(rows, columns=1, pad=0)
