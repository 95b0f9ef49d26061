"""A run folder: preparing it safely, resolving the config, and reloading it for later commands.

Layout: config.yaml, log.jsonl, checkpoints/step_*.safetensors, previews/*.png, video.mp4,
mesh.<fmt>. Later commands (render-video, export-mesh, evaluate) need only this folder.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from t3d import checkpoint as ckpt
from t3d.config import RunConfig, dump_config, load_config
from t3d.engine import Scene, pick_device
from t3d.errors import T3dError
from t3d.io import atomic_write_text, check_writable_dir
from t3d.priors.factory import is_analytic

CONFIG_FILE = "config.yaml"
RUN_OUTPUTS = ("config.yaml", "log.jsonl", "checkpoints", "previews", "video.mp4", "mesh.glb", "mesh.obj", "mesh.ply",
               "metrics.json", "eval")


def validate(cfg: RunConfig) -> None:
    """Reject bad values before anything is written."""
    if not cfg.prompt or not cfg.prompt.strip():
        raise T3dError("the prompt is empty; say what to make, e.g. t3d generate \"a smiling head\"")
    if cfg.steps <= 0:
        raise T3dError(f"--steps must be a positive number of steps, got {cfg.steps}")
    if cfg.camera.batch <= 0:
        raise T3dError(f"--batch must be positive, got {cfg.camera.batch}")
    if cfg.field.encoding not in ("dense", "hash"):
        raise T3dError(f"unknown encoding '{cfg.field.encoding}'; choose dense or hash")
    if cfg.guidance.t_schedule not in ("uniform", "anneal", "bnf"):
        raise T3dError(f"unknown t schedule '{cfg.guidance.t_schedule}'; choose uniform, anneal or bnf")
    if cfg.guidance.bnf_intervals < 1:
        raise T3dError(f"BNF intervals must be at least 1, got {cfg.guidance.bnf_intervals}")
    from t3d.guidance.rectifier import check_rectifier_config

    check_rectifier_config(cfg.guidance.rectifier)
    if not 0.0 <= cfg.guidance.t_min < cfg.guidance.t_max <= 1.0:
        raise T3dError("timestep range must satisfy 0 <= t_min < t_max <= 1")
    g = cfg.guidance
    if g.baseline not in ("noise", "score_model"):
        raise T3dError(f"unknown baseline '{g.baseline}'; choose noise (SDS) or score_model (VSD/ESD)")
    if not 0.0 <= g.esd_lambda <= 1.0:
        raise T3dError(f"--esd-lambda must be in [0, 1], got {g.esd_lambda}")
    if g.esd_lambda > 0 and g.baseline != "score_model":
        raise T3dError("--esd-lambda needs the score-model baseline; use --method esd (or vsd)")
    if not 0.0 <= g.score_model.uncond_prob <= 1.0:
        raise T3dError(f"--uncond-prob must be in [0, 1], got {g.score_model.uncond_prob}")
    if g.score_model.kind not in ("auto", "network", "kernel"):
        raise T3dError(f"unknown score model '{g.score_model.kind}'; choose auto, network or kernel")
    if g.score_model.memory < 1 or g.score_model.camera_width <= 0:
        raise T3dError("score model: memory must be at least 1 and camera width positive")
    if g.score_model.lora_rank <= 0 or g.score_model.lr <= 0 or not g.score_model.channels:
        raise T3dError("score model: lora rank and learning rate must be positive, channels non-empty")
    if g.t_max_milestone is not None and not (0.0 < g.t_max_milestone[0] <= 1.0 and g.t_min < g.t_max_milestone[1] <= 1.0):
        raise T3dError("--t-max-milestone expects FRACTION:T_MAX with 0 < FRACTION <= 1 and t_min < T_MAX <= 1")
    milestone = cfg.render.resolution_milestone
    if milestone is not None and not (0.0 < milestone[0] <= 1.0 and milestone[1] >= 8):
        raise T3dError("--resolution-milestone expects FRACTION:PIXELS with 0 < FRACTION <= 1 and PIXELS >= 8")
    if g.weighting not in ("sds", "sigma", "uniform"):
        raise T3dError(f"unknown weighting '{g.weighting}'; choose sds, sigma or uniform")
    if g.noise not in ("gaussian", "inversion", "consistent"):
        raise T3dError(f"unknown noise '{g.noise}'; choose gaussian, inversion or consistent")
    if g.inversion.steps_per_t <= 0 or not 0.0 <= g.inversion.tau < 1.0 or g.inversion.extra_noise < 0:
        raise T3dError("inversion needs steps per t > 0, tau in [0, 1) and extra noise >= 0")
    if g.convexity < 0 or not 0.0 <= g.convexity_until <= 1.0:
        raise T3dError("convexity weight must be >= 0 and its active fraction in [0, 1]")
    if g.grad_consistency < 0 or g.noise_upsample < 1:
        raise T3dError("--grad-consistency must be >= 0 and guidance.noise_upsample >= 1")
    if (not g.noise_hold or len(g.noise_hold) != len(g.noise_hold_from) or min(g.noise_hold) < 1
            or list(g.noise_hold_from) != sorted(g.noise_hold_from)):
        raise T3dError("guidance.noise_hold needs positive step counts, one per increasing "
                       "guidance.noise_hold_from progress value")
    if not 0.0 < abs(g.neighbour_azimuth) < 180.0:
        raise T3dError("guidance.neighbour_azimuth must be between 0 and 180 degrees (exclusive)")
    if not 0.0 <= cfg.analytic.adherence <= 1.0 or not 0.0 < cfg.analytic.front_mass < 1.0:
        raise T3dError("adherence must be in [0, 1] and front mass in (0, 1)")
    if cfg.analytic.uncond_pose not in ("uniform", "biased"):
        raise T3dError(f"unknown analytic.uncond_pose '{cfg.analytic.uncond_pose}'; choose uniform or biased")
    if cfg.render.shading not in ("albedo", "diffuse"):
        raise T3dError(f"unknown shading '{cfg.render.shading}'; choose albedo or diffuse")
    if not 0.0 <= cfg.render.textureless_prob <= 1.0:
        raise T3dError("render.textureless_prob must be in [0, 1]")
    if cfg.sd.latent_mode not in ("vae", "rgb"):
        raise T3dError(f"unknown latent mode '{cfg.sd.latent_mode}'; choose vae or rgb")
    if cfg.sd.dtype not in ("auto", "fp16", "bf16", "fp32"):
        raise T3dError(f"unknown --sd-dtype '{cfg.sd.dtype}'; choose auto, fp16, bf16 or fp32")
    validate_debiasing(cfg)
    from t3d.scene.mesh import MESH_FORMATS

    if cfg.output.mesh_format not in MESH_FORMATS:
        raise T3dError(f"unknown mesh format '{cfg.output.mesh_format}'; choose from {', '.join(MESH_FORMATS)}")
    from t3d.outputs import VIDEO_PANELS

    if not cfg.output.video_panels or set(cfg.output.video_panels) - set(VIDEO_PANELS):
        raise T3dError(f"video panels must be chosen from {', '.join(VIDEO_PANELS)}")


def validate_debiasing(cfg: RunConfig) -> None:
    """D-SDS score clipping / prompt debiasing and Perp-Neg settings."""
    g = cfg.guidance
    if isinstance(g.score_clip, str) and g.score_clip not in ("auto", "off"):
        raise T3dError(f"score clip must be 'auto', 'off', 'START:END' or 'C', got '{g.score_clip}'")
    if isinstance(g.score_clip, tuple) and (len(g.score_clip) != 2 or min(g.score_clip) <= 0):
        raise T3dError(f"--score-clip thresholds must be positive, got {':'.join(map(str, g.score_clip))}")
    from t3d.prompts.debias import DEBIAS_MODES

    if g.prompt_debias not in DEBIAS_MODES:
        raise T3dError(f"unknown --prompt-debias '{g.prompt_debias}'; choose {', '.join(DEBIAS_MODES)}")
    if not 0.0 < g.debias_threshold:
        raise T3dError(f"debias threshold must be positive, got {g.debias_threshold}")
    if g.perp_neg and not g.view_prompts:
        raise T3dError("--perp-neg interpolates view prompts; it cannot be combined with --no-view-prompts")
    if g.perp_neg and is_analytic(cfg.model) and cfg.analytic.adherence >= 1.0:
        raise T3dError("--perp-neg with the analytic prior needs --adherence below 1: at 1 the front, side "
                       "and back prompts allow disjoint references, so their interpolation is empty")


def resolve_framing(cfg: RunConfig, prior) -> None:
    """Fill the settings left to the prior: render resolution and camera framing."""
    if cfg.render.resolution <= 0:
        cfg.render.resolution = prior.image_size if is_analytic(cfg.model) else 64
    if is_analytic(cfg.model):
        # The analytic prior's references are framed at one distance and fov; matching them keeps
        # the object's size in the render equal to its size in the prior.
        cfg.camera.distance = cfg.camera.distance or (cfg.analytic.distance,) * 2
        cfg.camera.fovy = cfg.camera.fovy or (cfg.analytic.fovy,) * 2
    else:
        cfg.camera.distance = cfg.camera.distance or (1.5, 2.0)
        cfg.camera.fovy = cfg.camera.fovy or (40.0, 70.0)


def prepare_new_run_dir(out: Path, overwrite: bool) -> Path:
    """Make `out` ready for a fresh run without ever destroying something by accident."""
    if out.exists() and not out.is_dir():
        raise T3dError(f"output path {out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            what = "a run" if (out / CONFIG_FILE).exists() else "files"
            raise T3dError(f"output folder {out} already holds {what}; use --resume {out} to continue it, "
                           f"--overwrite to replace it, or another --out")
        if not (out / CONFIG_FILE).exists():
            raise T3dError(f"refusing to --overwrite {out}: it holds files but no t3d run")
        for name in RUN_OUTPUTS:  # only what a run writes; anything else the user put there stays
            target = out / name
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
    return check_writable_dir(out)


def save_config(cfg: RunConfig, run_dir: Path) -> None:
    atomic_write_text(run_dir / CONFIG_FILE, dump_config(cfg))


def load_run_config(run_dir: Path) -> RunConfig:
    path = Path(run_dir) / CONFIG_FILE
    if not Path(run_dir).is_dir():
        raise T3dError(f"run folder not found: {run_dir}")
    if not path.exists():
        raise T3dError(f"{run_dir} is not a t3d run folder (no {CONFIG_FILE})")
    return load_config(path)


def load_scene(target: str | Path, device: str = "auto") -> tuple[Scene, Path, int]:
    """A run folder or checkpoint -> the trained scene, its run folder and its step."""
    target = Path(target)
    if not target.exists():
        raise T3dError(f"no run folder or checkpoint at {target}")
    run_dir = target if target.is_dir() else (target.parent.parent if target.parent.name == ckpt.CHECKPOINT_DIR else target.parent)
    cfg = load_run_config(run_dir)
    _, path = ckpt.resolve_checkpoint(target)
    tensors, meta = ckpt.read_checkpoint(path)
    scene = Scene.build(cfg, pick_device(device))
    try:
        scene.load({k: v.to(scene.device) for k, v in tensors.items()})
    except (RuntimeError, KeyError) as exc:
        raise T3dError(f"checkpoint {path} does not match {run_dir / CONFIG_FILE} ({str(exc).splitlines()[0][:100]})") from None
    scene.field.eval()
    return scene, run_dir, int(meta.get("step", 0))

