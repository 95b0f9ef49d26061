"""`t3d generate`: the options of the run config (generated from their declarations, see
t3d/cli/flags.py) plus the options of the command itself."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Optional

import typer

from t3d.cli.flags import collect_values, config_parameters, value_of, with_signature
from t3d.config.options import BASICS, OUTPUT

_COMMAND_OPTIONS = [
    ("prompt", Optional[str], typer.Argument(None, help="What to make, e.g. \"a smiling head\" (taken from the "
                                             "run when resuming).", show_default=False)),
    ("out", Optional[Path], typer.Option(None, "--out", "-o", help="Run folder to write (default "
                                         "runs/<prompt>-<method>-<hash>).", rich_help_panel=BASICS)),
    ("resume", Optional[Path], typer.Option(None, "--resume", help="Continue the run in this folder from its "
                                            "latest checkpoint.", rich_help_panel=BASICS)),
    ("overwrite", bool, typer.Option(False, "--overwrite", help="Replace the run already in --out.",
                                     rich_help_panel=BASICS)),
    ("config", Optional[Path], typer.Option(None, "--config", help="Start from this config file (a run's "
                                            "config.yaml or a partial one); flags override it.",
                                            rich_help_panel=BASICS)),
    ("set_", list[str], typer.Option([], "--set", help="Any config key, e.g. --set field.grid_resolution=64 "
                                     "(repeatable).", rich_help_panel=BASICS, show_default=False,
                                     metavar="KEY=VALUE")),
    ("video", bool, typer.Option(True, "--video/--no-video", help="Render the 360° video at the end.",
                                 rich_help_panel=OUTPUT)),
    ("mesh", bool, typer.Option(True, "--mesh/--no-mesh", help="Export the mesh at the end.",
                                rich_help_panel=OUTPUT)),
]


def _parameters() -> list[inspect.Parameter]:
    kind = inspect.Parameter.KEYWORD_ONLY
    own = [inspect.Parameter(name, kind, default=default, annotation=tp) for name, tp, default in _COMMAND_OPTIONS]
    config = config_parameters()
    clash = {p.name for p in own} & {p.name for p in config}
    if clash:  # a config flag named like a command option: the declaration must pick another name
        raise TypeError(f"config flags clash with generate's own options: {sorted(clash)}")
    return own + config


def generate(**kwargs) -> None:
    """Optimise a 3D field for PROMPT and write a run folder: config, checkpoints, previews, video, mesh."""
    from t3d.cli.console import console
    from t3d.commands.generate import run_generate

    run_generate(make_request(kwargs), console)


def make_request(kwargs: dict):
    """The GenerateRequest of parsed `generate` options."""
    from t3d.commands.generate import GenerateRequest

    special = ("--method", "--model", "--steps")
    values = [v for v in collect_values(kwargs) if v[2] not in special]
    return GenerateRequest(
        prompt=kwargs["prompt"], method=value_of(kwargs, "--method"), model=value_of(kwargs, "--model"),
        steps=value_of(kwargs, "--steps"), out=kwargs["out"], resume=kwargs["resume"],
        overwrite=kwargs["overwrite"], config=kwargs["config"], values=values, sets=list(kwargs["set_"]),
        video=kwargs["video"], mesh=kwargs["mesh"])


def request_from_tokens(command, prompt: str, tokens: list[str]):
    """What `t3d generate PROMPT TOKENS...` would run (for callers that hold generate's options as
    text, like `t3d batch`, which checks every prompt line's values before anything runs)."""
    return make_request(command.make_context("generate", [prompt, *tokens]).params)


def register(app: typer.Typer) -> None:
    app.command("generate", help=generate.__doc__)(with_signature(generate, _parameters()))


def click_command():
    """The click command of `t3d generate` alone: its parameters are generate's option table."""
    app = typer.Typer(add_completion=False)
    register(app)
    app.command("_")(lambda: None)  # a second command keeps typer from collapsing the app into one
    return typer.main.get_command(app).get_command(None, "generate")
