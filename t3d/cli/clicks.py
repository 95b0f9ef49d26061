"""The click exceptions behind typer, wherever this typer keeps them."""

try:  # typer >= 0.2x vendors its own click; older typer re-raises the click package's exceptions
    from typer import Abort, Exit
    from typer._click.exceptions import ClickException, UsageError
except ImportError:  # pragma: no cover - depends on the installed typer
    from click.exceptions import Abort, ClickException, Exit, UsageError

__all__ = ["Abort", "ClickException", "Exit", "UsageError"]
