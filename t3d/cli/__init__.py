"""Entry point of the `t3d` command (see t3d/cli/app.py for the subcommands)."""

from __future__ import annotations

import sys

from t3d.errors import T3dError

try:  # typer >= 0.2x vendors its own click; older typer re-raises the click package's exceptions
    from typer import Abort, Exit
    from typer._click.exceptions import ClickException, UsageError
except ImportError:  # pragma: no cover - depends on the installed typer
    from click.exceptions import Abort, ClickException, Exit, UsageError


def fail(message: str, code: int = 2) -> int:
    """One plain line on stderr (never wrapped or styled, so scripts can grep it); returns `code`."""
    print(f"t3d: error: {' '.join(message.split())}", file=sys.stderr, flush=True)
    return code


def main(argv: list[str] | None = None) -> int:
    """Entry point: turns every user error into one line on stderr and exit code 2."""
    import typer

    from t3d.cli.app import app

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

