"""The progress bar of long evaluations: images done, images/s and the time left (rich), on stderr.

Shown only on a terminal: when stdout or stderr is not a TTY (a pipe, a file, a test capturing the
output) the bar is disabled and nothing is written, so the command's table and JSON stay as they were.
"""
from __future__ import annotations

import sys

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeRemainingColumn
from rich.text import Text


class ImagesPerSecond(ProgressColumn):
    """The task's rate in images/s (blank until rich has measured one)."""

    def render(self, task) -> Text:
        """``123 images/s``, or nothing before the first measurement."""
        speed = task.finished_speed or task.speed
        return Text("" if speed is None else f"{speed:,.0f} images/s", style="progress.data.speed")


def on_a_terminal() -> bool:
    """True when both stdout and stderr are terminals."""
    return sys.stdout.isatty() and sys.stderr.isatty()


def image_progress(enabled: bool | None = None) -> Progress:
    """A transient progress bar on stderr with images done / total, images/s and ETA; ``enabled`` defaults
    to ``on_a_terminal()``. Use as a context manager; ``add_task(name, total=images)``, ``advance``."""
    enabled = on_a_terminal() if enabled is None else enabled
    return Progress(TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    ImagesPerSecond(), TextColumn("ETA"), TimeRemainingColumn(),
                    console=Console(stderr=True), transient=True, disable=not enabled)
