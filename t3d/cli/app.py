"""The `t3d` command line: each subcommand parses its options and calls a function of
t3d/commands/. User errors (bad flags, missing files, unavailable models) print one line on
stderr and exit 2 (see `main`)."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Optional

import typer

from t3d.batch.command import CONTEXT_SETTINGS as BATCH_CONTEXT
from t3d.batch.command import batch as batch_command
from t3d.cli.generate import register as register_generate
from t3d.cli.console import console
from t3d.cli.flags import command_parameters, command_values, with_signature
from t3d.export.config import MeshExportConfig, VideoConfig
from t3d.config.parsing import parse_words

app = typer.Typer(
    add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False, rich_markup_mode="rich",
    help="Text-to-3D by score distillation. Offline by default with the built-in analytic prior "
         "(--model analytic); Stable Diffusion with --model ID_OR_FOLDER.")
register_generate(app)
app.command("batch", context_settings=BATCH_CONTEXT)(batch_command)


def _run_and_device(what: str) -> list[inspect.Parameter]:
    kind = inspect.Parameter.KEYWORD_ONLY
    return [
        inspect.Parameter("run", kind, annotation=Path, default=typer.Argument(
            ..., help="Run folder (its newest checkpoint that verifies) or a checkpoint file.")),
        inspect.Parameter("out", kind, annotation=Optional[Path], default=typer.Option(
            None, "--out", "-o", help=f"{what} path (default: in the run folder).")),
        inspect.Parameter("device", kind, annotation=str, default=typer.Option("auto", help="auto | cpu | cuda.")),
    ]


def render_video_cmd(**kwargs) -> None:
    """Render a 360° orbit video of a run: colour, normal and depth panels, mp4 (and a GIF)."""
    from t3d.commands.render_video import run_render_video

    run_render_video(kwargs["run"], kwargs["out"], kwargs["device"], command_values(VideoConfig, kwargs), console)


def export_mesh_cmd(**kwargs) -> None:
    """Export a run's surface as a textured GLB / OBJ (or a vertex-coloured PLY), checked against the field."""
    from t3d.commands.export_mesh import run_export_mesh

    run_export_mesh(kwargs["run"], kwargs["out"], kwargs["device"], command_values(MeshExportConfig, kwargs),
                    console)


app.command("render-video", help=render_video_cmd.__doc__)(
    with_signature(render_video_cmd, _run_and_device("Video") + command_parameters(VideoConfig)))
app.command("export-mesh", help=export_mesh_cmd.__doc__)(
    with_signature(export_mesh_cmd, _run_and_device("Mesh") + command_parameters(MeshExportConfig)))


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
    from t3d.commands.debias_prompt import run_debias_prompt

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
    from t3d.commands.evaluate import run_evaluate
    from t3d.evaluate.runner import EvalOptions

    opts = EvalOptions(views=views, elevation=elevation, resolution=resolution, device=device,
                       clip_model=clip_model, classifier_model=classifier_model,
                       pose_classifier=str(pose_classifier) if pose_classifier else None,
                       fid_samples=fid_samples, write=write)
    run_evaluate(runs, opts, compare, json_out, console)


