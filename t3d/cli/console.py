"""The console every command writes its messages to (stderr, so stdout stays for data)."""

from rich.console import Console

console = Console(stderr=True, highlight=False, soft_wrap=True)
