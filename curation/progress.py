"""Logging, progress bars and the one-line stage summary; package code never prints."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, Iterator, Mapping
from typing import TypeVar

from rich.console import Console
from rich.logging import RichHandler
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


T = TypeVar("T")
console = Console(stderr=True)


def setup_logging(level: int = logging.INFO) -> None:
    logging.basicConfig(level=level, format="%(message)s", handlers=[RichHandler(console=console, show_path=False)])


def track(items: Iterable[T], description: str, total: int | None = None) -> Iterator[T]:
    """One progress bar per long loop; silent when stderr is not a terminal (DVC logs, CI)."""
    if not sys.stderr.isatty():
        yield from items
        return
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, TimeRemainingColumn(), console=console, transient=True) as bar:
        yield from bar.track(items, total=total, description=description)


def summary(stage: str, n_in: int, kept: int, dropped: Mapping[str, int], seconds: float) -> str:
    """`dedup: 41,210 in -> 37,904 kept; dropped dedup.exact 2,016, dedup.near 1,290 (3.1 s)`."""
    parts = ", ".join(f"{reason} {n:,}" for reason, n in sorted(dropped.items()) if n)
    line = f"{stage}: {n_in:,} in -> {kept:,} kept; dropped {parts or 'none'} ({seconds:.1f} s)"
    logging.getLogger(stage).info(line)
    return line
