"""`python -m t3d.batch PROMPTS_FILE --out DIR ...`: the batch command on its own, with the same
error handling as the `t3d` command line (one `t3d: error:` line and exit 2 for bad input)."""

from __future__ import annotations

import sys

import typer

from t3d.batch.command import CONTEXT_SETTINGS, batch


def main(argv: list[str] | None = None) -> int:
    from t3d.cli import Abort, ClickException, Exit, UsageError, fail
    from t3d.errors import T3dError

    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    app.command(context_settings=CONTEXT_SETTINGS)(batch)
    command = typer.main.get_command(app)
    try:
        command.main(args=argv, prog_name="t3d batch", standalone_mode=False)
    except Exit as exc:
        return exc.exit_code
    except UsageError as exc:
        return fail(exc.format_message().strip(), 2) if exc.format_message().strip() else 2
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
