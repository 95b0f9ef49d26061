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


@app.command()
def generate(
    prompt: Optional[str] = typer.Argument(None, help="What to make, e.g. \"a smiling head\" (taken from the run when resuming)."),
    method: Optional[str] = typer.Option(None, help="Score-distillation method preset: sds."),
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
    t_schedule: Optional[str] = typer.Option(None, help="uniform (random t) | anneal (t_max -> t_min linearly)."),
    score_clip: Optional[str] = typer.Option(None, help="D-SDS score clipping 'START:END' (linear over the run) or 'C' (static)."),
    view_prompts: Optional[bool] = typer.Option(None, "--view-prompts/--no-view-prompts", help="Append ', front view' etc. by camera azimuth."),
    front_mass: Optional[float] = typer.Option(None, help="Analytic prior: share of mass on front views (default 0.75)."),
    adherence: Optional[float] = typer.Option(None, help="Analytic prior: how much a view prompt conditions on its views, 0..1 (default 0.5)."),
    bandwidth: Optional[float] = typer.Option(None, help="Analytic prior: kernel width per pixel value (default 0.25)."),
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
            "guidance.t_schedule": t_schedule, "guidance.view_prompts": view_prompts,
            "analytic.front_mass": front_mass, "analytic.adherence": adherence, "analytic.bandwidth": bandwidth,
            "output.checkpoint_every": checkpoint_every, "output.preview_every": preview_every,
            "output.video_frames": video_frames, "output.mesh_format": mesh_format,
        }, t_range=parse_range(t_range, "--t-range"), score_clip=parse_range(score_clip, "--score-clip"),
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
