"""The `t3d` command line. Each subcommand parses flags, builds a config and calls the library.

User errors (bad flags, missing files, unavailable models) print one line and exit 2.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from t3d.errors import T3dError

try:  # typer >= 0.2x vendors its own click; older typer re-raises the click package's exceptions
    from typer import Abort, Exit
    from typer._click.exceptions import ClickException, UsageError
except ImportError:  # pragma: no cover - depends on the installed typer
    from click.exceptions import Abort, ClickException, Exit, UsageError

app = typer.Typer(
    add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
    help="Text-to-3D by score distillation. Offline by default with the built-in analytic prior "
         "(--model analytic); Stable Diffusion with --model ID_OR_FOLDER.")
console = Console(stderr=True, highlight=False, soft_wrap=True)


def parse_range(text: str | None, name: str, count: int = 2) -> Optional[tuple[float, ...]]:
    """'a:b' -> (a, b); a single number c -> (c, c)."""
    if text is None:
        return None
    parts = text.split(":")
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        raise T3dError(f"{name} expects numbers like 'A:B' or 'A', got '{text}'") from None
    if len(values) == 1:
        values = values * count
    if len(values) != count:
        raise T3dError(f"{name} expects {count} numbers separated by ':', got '{text}'")
    return values


def parse_milestone(text: str | None, name: str, integer: bool = False) -> Optional[tuple]:
    """'FRACTION:VALUE' -> (fraction, value); VALUE must be whole when `integer`."""
    if text is None:
        return None
    values = parse_range(text, name) if text.count(":") == 1 else None
    if values is None or (integer and values[1] != int(values[1])):
        raise T3dError(f"{name} expects FRACTION:{'PIXELS' if integer else 'VALUE'} like 0.2:{128 if integer else 0.5}, got '{text}'")
    return (values[0], int(values[1])) if integer else values
def parse_score_clip(text: str | None):
    """--score-clip: 'START:END', 'C', 'auto' (the prior's D-SDS default) or 'off'."""
    if text is not None and text.strip().lower() in ("auto", "off"):
        return text.strip().lower()
    return parse_range(text, "--score-clip")


def parse_words(text: str | None) -> Optional[tuple[str, ...]]:
    """'smiling, dog' -> ('smiling', 'dog')."""
    if text is None:
        return None
    return tuple(w for w in (part.strip() for part in text.replace(",", " ").split()) if w)


@app.command()
def generate(
    prompt: Optional[str] = typer.Argument(None, help="What to make, e.g. \"a smiling head\" (taken from the run when resuming)."),
    method: Optional[str] = typer.Option(None, help="Score-distillation method preset: sds | vsd | esd | dsds | sdi | gsd | usd (see README)."),
    model: Optional[str] = typer.Option(None, help="Prior: 'analytic' (built-in, offline), 'analytic:FOLDER' (your posed images), or a diffusers model id / local folder."),
    steps: Optional[int] = typer.Option(None, help="Total optimisation steps (default 800). With --resume: the new total."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Run folder to write (default runs/<prompt>-<method>)."),
    resume: Optional[Path] = typer.Option(None, help="Continue the run in this folder from its latest checkpoint."),
    overwrite: bool = typer.Option(False, help="Replace the run already in --out."),
    config: Optional[Path] = typer.Option(None, help="Start from this config.yaml (e.g. a previous run's); flags override it."),
    seed: Optional[int] = typer.Option(None, help="Random seed; same seed and device give the same result."),
    device: Optional[str] = typer.Option(None, help="auto | cpu | cuda."),
    resolution: Optional[int] = typer.Option(None, help="Training render resolution in pixels (default: the prior's)."),
    batch: Optional[int] = typer.Option(None, help="Cameras per step (default 2)."),
    encoding: Optional[str] = typer.Option(None, help="Field encoding: dense (fast on CPU) | hash (tinycudann when importable)."),
    guidance_scale: Optional[float] = typer.Option(None, help="Classifier-free guidance scale s in eps_u + s (eps_c - eps_u)."),
    t_range: Optional[str] = typer.Option(None, help="Timestep range as fractions of T, 'MIN:MAX' (default 0.02:0.98)."),
    t_schedule: Optional[str] = typer.Option(None, help="uniform (random t) | anneal (t_max -> t_min linearly) | bnf (RecDreamer's back-and-forth)."),
    bnf_intervals: Optional[int] = typer.Option(None, help="Back-and-forth schedule: number of intervals n_i (default 2)."),
    rectifier: Optional[bool] = typer.Option(None, "--rectifier/--no-rectifier", help="USD's pose rectifier on top of any method (usd preset: on)."),
    rectifier_mode: Optional[str] = typer.Option(None, help="USD rectifier gradient: exact (through prior, decoder, classifier) | stopgrad (prior eps held constant; cheaper)."),
    pose_classes: Optional[int] = typer.Option(None, help="USD: number K of azimuth pose classes (default 4: front, back, left, right)."),
    pose_features: Optional[str] = typer.Option(None, help="USD: pose-classifier features, a Dinov2WithRegisters Hub id or folder (default: pixels for the analytic prior, facebook/dinov2-with-registers-small otherwise)."),
    pose_classifier: Optional[str] = typer.Option(None, help="USD: templates (the paper's training-free classifier, default) | posterior (analytic prior only: its exact p(pose | x_t), a ground-truth reference) | posterior-x0 (analytic only: exact clean p(pose | x0) at the Tweedie estimate)."),
    pose_templates: Optional[str] = typer.Option(None, help="USD: folder of template images with poses.json (file, azimuth, elevation); default: the prior's own references or samples."),
    aux_views: Optional[str] = typer.Option(None, help="Comma-separated views appended as ', from X view' to the prompt (usd preset: side,back); '' for none."),
    esd_lambda: Optional[float] = typer.Option(None, help="ESD: weight of the camera-free score eps_phi(x_t, no camera) in the baseline, 0..1 (esd preset 0.5; 0 = VSD)."),
    uncond_prob: Optional[float] = typer.Option(None, help="VSD/ESD: probability of training the score model without the camera (default 0.5, as in the ESD paper)."),
    lora_rank: Optional[int] = typer.Option(None, help="VSD/ESD with Stable Diffusion: LoRA rank of the score model (default 4)."),
    score_model: Optional[str] = typer.Option(None, "--score-model", help="VSD/ESD/USD eps_phi: auto (LoRA on SD; on the analytic prior the closed-form score of recent renders), network or kernel."),
    t_max_milestone: Optional[str] = typer.Option(None, help="'FRACTION:T_MAX': t_max drops to T_MAX after that fraction of the run (ProlificDreamer: 0.2:0.5)."),
    resolution_milestone: Optional[str] = typer.Option(None, help="'FRACTION:PIXELS': render at PIXELS after that fraction of the run (ProlificDreamer: 0.2:512)."),
    score_clip: Optional[str] = typer.Option(None, help="D-SDS clipping of w(t)(eps_prior - baseline), elementwise: 'START:END' (linear over the run), 'C' (static), 'auto' (2:8 for SD latents, 5:20 for the analytic prior) or 'off'."),
    prompt_debias: Optional[str] = typer.Option(None, help="D-SDS prompt debiasing with a masked LM: auto (only if the MLM loads offline; else a note) | on (error if unavailable) | off."),
    mlm: Optional[str] = typer.Option(None, help="Masked LM for prompt debiasing: a Hugging Face id or a local folder (default bert-base-uncased)."),
    keep_words: Optional[str] = typer.Option(None, help="Comma-separated prompt words debiasing must never drop (P(u) = 1)."),
    perp_neg: Optional[bool] = typer.Option(None, "--perp-neg/--no-perp-neg", help="Perp-Neg: interpolate view prompts by azimuth and subtract the other views' perpendicular components."),
    inversion_scale: Optional[float] = typer.Option(None, help="CFG scale of the DDIM inversion (default: minus --guidance-scale, SDI's -7.5)."),
    inversion_steps: Optional[float] = typer.Option(None, help="DDIM inversion steps per unit t: int(N * t) steps, t a fraction of T (default 10)."),
    inversion_tau: Optional[float] = typer.Option(None, help="Invert to t + tau, tau ~ U(0, TAU) as a fraction of T (default 1/30)."),
    inversion_extra_noise: Optional[float] = typer.Option(None, help="Std of fresh noise added to the inverted noise (default 0.3)."),
    convexity: Optional[float] = typer.Option(None, help="Weight of SDI's convexity regulariser on rendered normals; 0 = off (sdi: 0.1)."),
    convexity_until: Optional[float] = typer.Option(None, help="Fraction of the run the convexity regulariser is active for (default 0.4)."),
    noise: Optional[str] = typer.Option(None, help="Noise in x_t: gaussian (fresh i.i.d., SDS) | inversion (SDI: DDIM inversion of the render) | consistent (GSD: 3D-consistent noise from the rendered surface, held for some steps)."),
    grad_consistency: Optional[float] = typer.Option(None, help="GSD gradient-consistency loss weight (gsd preset: 5.0; 0 = off); > 0 also renders a ±5° neighbour of each view."),
    view_prompts: Optional[bool] = typer.Option(None, "--view-prompts/--no-view-prompts", help="Append ', front view' etc. by camera azimuth."),
    front_mass: Optional[float] = typer.Option(None, help="Analytic prior: share of mass on front views (default 0.75)."),
    adherence: Optional[float] = typer.Option(None, help="Analytic prior: how much a view prompt conditions on its views, 0..1 (default 0.5)."),
    bandwidth: Optional[float] = typer.Option(None, help="Analytic prior: kernel width per pixel value (default 0.25)."),
    shading: Optional[str] = typer.Option(None, help="Training renders: albedo (as is) | diffuse (random light near the camera, DreamFusion)."),
    textureless_prob: Optional[float] = typer.Option(None, help="With --shading diffuse: chance a view is shaded white (geometry only); default 0."),
    sd_dtype: Optional[str] = typer.Option(None, help="Stable Diffusion weights' precision: auto (fp16 on CUDA) | fp16 | bf16 | fp32."),
    latent_mode: Optional[str] = typer.Option(None, help="Stable Diffusion: vae (render -> VAE encode) | rgb (low-res render mapped to latents, fast coarse stage)."),
    low_vram: Optional[bool] = typer.Option(None, "--low-vram/--no-low-vram", help="Stable Diffusion on 8-12 GB cards: sliced attention + VAE gradient checkpointing (slower)."),
    checkpoint_every: Optional[int] = typer.Option(None, help="Steps between checkpoints (default 200)."),
    preview_every: Optional[int] = typer.Option(None, help="Steps between preview images; 0 = none (default 200)."),
    video_frames: Optional[int] = typer.Option(None, help="Frames of the final 360° video (default 120)."),
    mesh_format: Optional[str] = typer.Option(None, help="glb | obj | ply (default glb)."),
    video: bool = typer.Option(True, "--video/--no-video", help="Render the 360° video at the end."),
    mesh: bool = typer.Option(True, "--mesh/--no-mesh", help="Export the mesh at the end."),
    set_: list[str] = typer.Option([], "--set", help="Any config key, e.g. --set field.grid_resolution=64 (repeatable)."),
):
    """Optimise a 3D field for PROMPT and write a run folder: config, checkpoints, previews, video, mesh."""
    from t3d.commands import GenerateRequest, run_generate

    request = GenerateRequest(
        prompt=prompt, method=method, model=model, steps=steps, out=out, resume=resume, overwrite=overwrite,
        config=config, overrides={
            "seed": seed, "device": device, "render.resolution": resolution, "camera.batch": batch,
            "field.encoding": encoding, "guidance.guidance_scale": guidance_scale,
            "render.shading": shading, "render.textureless_prob": textureless_prob,
            "sd.dtype": sd_dtype, "sd.latent_mode": latent_mode,
            "sd.attention_slicing": low_vram, "sd.vae_checkpointing": low_vram,
            "guidance.t_schedule": t_schedule, "guidance.bnf_intervals": bnf_intervals,
            "guidance.rectifier.enabled": rectifier, "guidance.rectifier.mode": rectifier_mode,
            "guidance.rectifier.pose_classes": pose_classes, "guidance.rectifier.pose_features": pose_features,
            "guidance.rectifier.pose_templates": pose_templates, "guidance.rectifier.classifier": pose_classifier,
            "guidance.aux_views": parse_words(aux_views),
            "guidance.view_prompts": view_prompts,
            "guidance.esd_lambda": esd_lambda, "guidance.score_model.uncond_prob": uncond_prob,
            "guidance.score_model.lora_rank": lora_rank, "guidance.score_model.kind": score_model,
            "guidance.t_max_milestone": parse_milestone(t_max_milestone, "--t-max-milestone"),
            "render.resolution_milestone": parse_milestone(resolution_milestone, "--resolution-milestone", True),
            "guidance.prompt_debias": prompt_debias, "guidance.mlm": mlm,
            "guidance.keep_words": parse_words(keep_words), "guidance.perp_neg": perp_neg,
            "guidance.noise": noise, "guidance.inversion.scale": inversion_scale,
            "guidance.inversion.steps_per_t": inversion_steps, "guidance.inversion.tau": inversion_tau,
            "guidance.inversion.extra_noise": inversion_extra_noise, "guidance.convexity": convexity,
            "guidance.convexity_until": convexity_until,
            "guidance.grad_consistency": grad_consistency,
            "analytic.front_mass": front_mass, "analytic.adherence": adherence, "analytic.bandwidth": bandwidth,
            "output.checkpoint_every": checkpoint_every, "output.preview_every": preview_every,
            "output.video_frames": video_frames, "output.mesh_format": mesh_format,
        }, t_range=parse_range(t_range, "--t-range"), score_clip=parse_score_clip(score_clip),
        sets=set_, video=video, mesh=mesh)
    run_generate(request, console)


@app.command("render-video")
def render_video_cmd(
    run: Path = typer.Argument(..., help="Run folder (uses its latest checkpoint) or a checkpoint file."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Video path (default RUN/video.mp4)."),
    frames: Optional[int] = typer.Option(None, help="Number of frames around the orbit (default: the run's, 120)."),
    resolution: Optional[int] = typer.Option(None, help="Frame size in pixels (default 128)."),
    elevation: Optional[float] = typer.Option(None, help="Orbit elevation in degrees (default 15)."),
    panels: Optional[str] = typer.Option(None, help="Comma-separated panels side by side: rgb,depth,normal."),
    device: str = typer.Option("auto", help="auto | cpu | cuda."),
):
    """Render a 360° orbit video of a run."""
    from t3d.commands import run_render_video

    run_render_video(run, out, frames, resolution, elevation, panels, device, console)


@app.command("export-mesh")
def export_mesh_cmd(
    run: Path = typer.Argument(..., help="Run folder (uses its latest checkpoint) or a checkpoint file."),
    format: Optional[str] = typer.Option(None, "--format", "-f", help="glb | obj | ply (default: from --out's suffix, else glb)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Mesh path (default RUN/mesh.<format>)."),
    resolution: Optional[int] = typer.Option(None, help="Marching-cubes grid resolution (default 128)."),
    threshold: Optional[str] = typer.Option(None, help="Density level of the surface, or 'auto': the level whose silhouettes match the rendered views (default: the run's, auto)."),
    device: str = typer.Option("auto", help="auto | cpu | cuda."),
):
    """Extract a vertex-coloured mesh by marching cubes and export it (GLB, OBJ or PLY)."""
    from t3d.commands import run_export_mesh

    run_export_mesh(run, format, out, resolution, threshold, device, console)


@app.command("debias-prompt")
def debias_prompt_cmd(
    prompt: str = typer.Argument(..., help="The prompt to debias, e.g. \"a smiling dog\"."),
    mlm: Optional[str] = typer.Option(None, help="Masked LM: a Hugging Face id or a local folder (default bert-base-uncased)."),
    keep_words: Optional[str] = typer.Option(None, help="Comma-separated words never to drop (P(u) = 1)."),
    view_words: Optional[str] = typer.Option(None, help="Comma-separated view words front,side,back,overhead-equivalent (default: the dsds preset's front,side,back,top)."),
    threshold: float = typer.Option(0.95, help="Drop a word from a view when its PMI ratio is below this."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON with P(view | prompt), and per word and view the probabilities and PMI ratios."),
):
    """Show D-SDS prompt debiasing: the prompt each view gets after contradicting words are dropped."""
    from t3d.commands import run_debias_prompt

    run_debias_prompt(prompt, mlm, parse_words(keep_words), parse_words(view_words), threshold, json_out)


@app.command("evaluate")
def evaluate_cmd(
    runs: list[Path] = typer.Argument(..., help="Run folders (their latest checkpoint) or checkpoint files."),
    views: int = typer.Option(36, help="Views around the orbit."),
    elevation: Optional[float] = typer.Option(None, help="Orbit elevation in degrees (default: the analytic references' elevation nearest 15, else 15)."),
    resolution: int = typer.Option(0, help="Render size in pixels (default: the analytic prior's image size, else 128)."),
    clip_model: Optional[str] = typer.Option(None, help="CLIP model (HF id or folder): CLIP distance, per-azimuth similarity, cEnt."),
    classifier_model: Optional[str] = typer.Option(None, help="Image classifier (HF id or folder): IQ, IV, IG, and the features for FID."),
    pose_classifier: Optional[Path] = typer.Option(None, help="USD pose classifier checkpoint: pEnt."),
    fid_samples: int = typer.Option(0, help="Prior samples for FID of renders vs prior (0 = no FID; needs --classifier-model)."),
    compare: Optional[Path] = typer.Option(None, help="Side-by-side sheet of the runs' orbits (default: compare.png beside the runs, when several)."),
    json_out: bool = typer.Option(False, "--json", help="Print the metrics as JSON on stdout instead of a table."),
    write: bool = typer.Option(True, "--write/--no-write", help="Write metrics.json and eval/*.png into each run folder."),
    device: str = typer.Option("auto", help="auto | cpu | cuda."),
):
    """Score runs: ground-truth Janus metrics on the analytic prior, model-based metrics when named."""
    from t3d.commands import run_evaluate
    from t3d.evaluate.runner import EvalOptions

    opts = EvalOptions(views=views, elevation=elevation, resolution=resolution, device=device,
                       clip_model=clip_model, classifier_model=classifier_model,
                       pose_classifier=str(pose_classifier) if pose_classifier else None,
                       fid_samples=fid_samples, write=write)
    run_evaluate(runs, opts, compare, json_out, console)


def fail(message: str, code: int = 2) -> int:
    """One plain line on stderr (never wrapped or styled, so scripts can grep it); returns `code`."""
    print(f"t3d: error: {' '.join(message.split())}", file=sys.stderr, flush=True)
    return code


def main(argv: list[str] | None = None) -> int:
    """Entry point: turns every user error into one line on stderr and exit code 2."""
    command = typer.main.get_command(app)
    try:
        command.main(args=argv, prog_name="t3d", standalone_mode=False)
    except Exit as exc:
        return exc.exit_code
    except UsageError as exc:
        message = exc.format_message().strip()
        if not message:  # `t3d` alone: the help was printed, there is nothing else to say
            return 2
        return fail(message, 2)
    except ClickException as exc:
        return fail(exc.format_message(), exc.exit_code)
    except T3dError as exc:
        return fail(str(exc), exc.exit_code)
    except (KeyboardInterrupt, Abort):
        print("t3d: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
