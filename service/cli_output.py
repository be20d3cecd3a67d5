"""Tables and progress for the CLIs, with rich, readable in a terminal and in a pipe alike.

* A cell is never wrapped, folded or cut: operators copy ids and ARNs out of tables. The console
  is as wide as the table needs (at least the terminal, or 80 columns in a pipe); a terminal
  soft-wraps a longer line, which copies back as one line.
* Off a terminal there are no escape codes, whatever FORCE_COLOR or TTY_COMPATIBLE say, and no
  live display: a pipe or a log file gets plain lines, without trailing spaces.
* No markup or emoji codes: an ARN holds ":secret:" and a display name may hold "[b]", both
  printed as they are.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from rich.console import Console, RenderableType
    from rich.table import Table
    from rich.text import Text

_UNBOUNDED = 1_000_000
_VERB_STYLES = {"done": "green", "skip": "dim", "FAIL": "bold red"}  # in a terminal only
# Step lines under --wait: the longest step name fits, so every line's duration lines up.
_STEP_NAME_WIDTH = 34


def console(stderr: bool = False) -> Console:
    from rich.console import Console

    stream: TextIO = sys.stderr if stderr else sys.stdout
    tty = stream.isatty()
    return Console(
        file=stream,
        force_terminal=tty,  # off a terminal: plain text even under FORCE_COLOR / TTY_COMPATIBLE
        force_interactive=tty,
        color_system="auto" if tty else None,
        highlight=False,
        markup=False,
        emoji=False,
    )


def table(*headers: str, show_header: bool = True) -> Table:
    """A borderless table whose cells keep their whole text (see the module docstring)."""
    from rich.table import Table

    made = Table(*headers, box=None, show_header=show_header, header_style="bold", pad_edge=False)
    for column in made.columns:
        column.no_wrap = True
        column.overflow = "ignore"
    return made


def _lines(out: Console, rendered: RenderableType) -> list[Text]:
    """The lines ``rendered`` takes at the width it needs, each without trailing spaces."""
    from rich.measure import Measurement
    from rich.text import Text

    needed = Measurement.get(out, out.options.update(max_width=_UNBOUNDED), rendered).maximum
    options = out.options.update(width=max(out.width, needed), max_width=max(out.width, needed))
    lines = []
    for segments in out.render_lines(rendered, options, pad=False):
        line = Text.assemble(*((s.text, s.style) for s in segments if not s.control))
        line.rstrip()
        lines.append(line)
    return lines


def print_table(rendered: RenderableType, *, stderr: bool = False, out: Console | None = None) -> None:
    """Print ``rendered`` whole: never wrapped by rich (a terminal soft-wraps a long line)."""
    target = out or console(stderr)
    for line in _lines(target, rendered):
        target.print(line, soft_wrap=True)


def step_line(verb: str, name: str, took: str = "") -> Table:
    """One step of a run as it finishes: ``done user_pool  612.7 ms``, aligned with the others."""
    from rich.table import Table
    from rich.text import Text

    line = Table.grid(padding=(0, 2), pad_edge=True)
    line.add_column(min_width=4, no_wrap=True)
    line.add_column(min_width=_STEP_NAME_WIDTH, no_wrap=True, overflow="ignore")
    line.add_column(justify="right", min_width=12, no_wrap=True)
    line.add_row(Text(verb, style=_VERB_STYLES.get(verb, "")), name, took)
    return line


class StepPrinter:
    """Step lines as they come; in a terminal, under a spinner that says what is awaited."""

    def __init__(self, *, stderr: bool) -> None:
        self.console = console(stderr)
        self._status: Any = None

    def line(self, verb: str, name: str, took: str = "") -> None:
        print_table(step_line(verb, name, took), out=self.console)  # above the spinner

    def waiting(self, what: str) -> None:
        if self._status is not None:
            self._status.update(what)

    @contextmanager
    def spinner(self, what: str) -> Iterator[None]:
        if not self.console.is_terminal:
            yield
            return
        with self.console.status(what) as status:
            self._status = status
            try:
                yield
            finally:
                self._status = None
