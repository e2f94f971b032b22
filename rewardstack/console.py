"""The one console every verb prints to: stderr, so a verb's data output (files, pipes) stays clean."""

from rich.console import Console

console = Console(stderr=True)
