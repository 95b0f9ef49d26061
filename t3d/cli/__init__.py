"""Entry point of the `t3d` command (see t3d/cli/app.py for the subcommands)."""

from __future__ import annotations

import os
import sys

from t3d.errors import T3dError

from t3d.cli.clicks import Abort, ClickException, Exit, UsageError


def fail(message: str, code: int = 2) -> int:
    """One plain line on stderr (never wrapped or styled, so scripts can grep it); returns `code`."""
    print(f"t3d: error: {' '.join(message.split())}", file=sys.stderr, flush=True)
    return code


def main(argv: list[str] | None = None) -> int:
    """Entry point: every error becomes one line on stderr and a documented exit code (t3d/errors.py);
    an unexpected one (a bug) exits 70 with its traceback saved to a file (T3D_DEBUG=1 raises it)."""
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
    except Exception as exc:  # an environment problem or a bug that no command turned into a T3dError
        if os.environ.get("T3D_DEBUG", "") not in ("", "0"):
            raise
        return fail(unexpected(exc), 2 if isinstance(exc, (OSError, MemoryError)) or _out_of_memory(exc) else 70)
    return 0


def _out_of_memory(exc: BaseException) -> bool:
    return type(exc).__name__ == "OutOfMemoryError"  # torch's, without importing torch here


def unexpected(exc: BaseException) -> str:
    """One line for an exception nothing else handled; the traceback goes to a file."""
    if isinstance(exc, OSError):
        where = f": {exc.filename}" if getattr(exc, "filename", None) else ""
        return f"{exc.strerror or exc}{where}"
    if isinstance(exc, MemoryError) or _out_of_memory(exc):
        return "out of memory; lower --resolution, --batch or render.samples_per_ray (or use --device cpu)"
    first = (str(exc).strip().splitlines() or [""])[0][:200]
    saved = _save_traceback(exc)
    return (f"internal error: {type(exc).__name__}: {first}" + (f" (traceback saved to {saved}; "
            "please report it)" if saved else " (set T3D_DEBUG=1 to see the traceback)"))


def _save_traceback(exc: BaseException) -> str | None:
    import tempfile
    import traceback

    try:
        fd, path = tempfile.mkstemp(prefix="t3d-error-", suffix=".txt")
        with os.fdopen(fd, "w") as fh:
            fh.write("".join(traceback.format_exception(exc)))
        return path
    except OSError:
        return None

