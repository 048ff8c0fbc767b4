"""Terminal output helpers: Rich for people, plain JSON for scripts, errors on stderr."""

from __future__ import annotations

import errno
import json
import sys
from collections.abc import Iterator
from typing import Any

from rich.console import Console, ConsoleOptions, RenderableType
from rich.table import Table
from rich.text import Text

from bot_bottle.terminal import printable

_stdout: Console | None = None
_stderr: Console | None = None


class _Console(Console):
    """Rich's console, except that a reader who went away (``bot-bottle list | head -1``) is
    reported as ``BrokenPipeError`` for ``bot_bottle.cli.main`` to end quietly: Rich's own
    handling exits with status 1, as if the command had failed."""

    def on_broken_pipe(self) -> None:
        self.quiet = True  # nothing more is written to a reader that is gone
        raise BrokenPipeError(errno.EPIPE, "the reader of the output went away")


def console() -> Console:
    global _stdout
    if _stdout is None or _stdout.file is not sys.stdout:
        _stdout = _Console(file=sys.stdout, highlight=False, soft_wrap=True)
    return _stdout


def show(renderable: Any, *instead: Table) -> None:
    """A table or panel on stdout, laid out to the terminal's width. The consoles soft-wrap (a
    long line of text reaches a pipe whole), which would let a table overrun the width or a panel
    cut its text off at its edge. A table too wide for the terminal is shown as the first of
    ``instead`` (the same rows laid out otherwise) that fits, else as plain lines."""
    console().print(fitted(renderable, *instead) if isinstance(renderable, Table) else renderable, soft_wrap=False)


class _Fitted:
    """The first of some tables whose columns fit the width, else the first's rows as plain
    ``key: value`` lines.

    Rich folds cells to fit, but when the columns cannot all fit (a narrow terminal, long
    words) it silently cuts the right-hand columns, or ends a cell with "…": the operator would
    read part of a plan as if it were all of it. The choice is made when rendering, at the
    width the table actually gets."""

    def __init__(self, tables: tuple[Table, ...]) -> None:
        self.tables = tables

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> Iterator[RenderableType]:
        for table in self.tables:
            if _fits(console, options, table):
                yield table
                return
        for line in _plain_lines(self.tables[0]):
            yield from _hanging(line, console, options.max_width)


def fitted(table: Table, *instead: Table) -> RenderableType:
    """``table``, or where it would not fit the first of ``instead`` that does, or else plain
    lines (see ``_Fitted``)."""
    return _Fitted((table, *instead))


# Below this many characters a folding column reads as a ladder of fragments (or, at none,
# shows nothing at all): plain lines read better.
_FOLD_MIN = 8


def _fits(console: Console, options: ConsoleOptions, table: Table) -> bool:
    """Whether Rich lays ``table`` out within the width without cutting anything off.

    This asks Rich's own layout, through the few private ``Table`` methods that have no public
    equivalent: the widths Rich gives its columns (``_calculate_column_widths``), what its borders
    take (``_extra_width``), and a column's measure and padding as that layout counts them
    (``_measure_column``, ``_get_padding_width``; the public ``Measurement.get`` measures only the
    whole table). A column that folds needs ``_FOLD_MIN`` characters (or its longest word, when
    shorter); any other needs its longest word (its whole text when it does not wrap), or Rich
    would end it with "…"."""
    try:
        extra = table._extra_width
        inner = options.update_width(max(options.max_width - extra, 1))
        widths = table._calculate_column_widths(console, inner)
        if sum(widths) + extra > options.max_width:
            return False
        natural = options.update_width(10_000)
        for index, (column, width) in enumerate(zip(table.columns, widths)):
            measured = table._measure_column(console, natural, column)  # padding included
            if column.no_wrap:
                needed = measured.maximum
            elif column.overflow == "fold":
                needed = min(measured.minimum, _FOLD_MIN + table._get_padding_width(index))
            else:
                needed = measured.minimum
            if width < needed:
                return False
        return True
    except AttributeError:
        # A Rich release without these internals: plain lines lose nothing, a table might.
        return False


def _plain_lines(table: Table) -> Iterator[Text]:
    """The table as lines: each row's cells as ``header: value`` (a table without headers is a
    key/value table: its first cell is the key), rows set apart with "- "."""
    if table.title:
        yield _as_text(table.title)
    columns = table.columns
    rows = zip(*(list(column.cells) for column in columns))
    for row in rows:
        cells = [_as_text(cell, column.style) for column, cell in zip(columns, row)]
        if not table.show_header and len(cells) == 2:
            key, value = cells
            yield Text.assemble(key, ": " if key.plain else "  ", _indented(value, "  "))
            continue
        for index, (column, cell) in enumerate(zip(columns, cells)):
            lead = "- " if index == 0 else "  "
            header = _as_text(column.header)
            # A column without a header (the row's name, as in doctor's tables) is the cell alone.
            yield Text.assemble(lead, header, ": " if header.plain else "", _indented(cell, "    "))


# A plain line longer than the width goes on under its value, not at the screen's left edge,
# where it would read as a line of its own.
_HANGING = "    "


def _hanging(line: Text, console: Console, width: int) -> Iterator[Text]:
    """``line`` (one or more lines) in ``width`` columns, each line that is too long wrapped at
    its words, what it wraps onto indented."""
    for physical in line.split("\n", allow_blank=True):
        if physical.cell_len <= width or width <= 2 * len(_HANGING):
            yield physical
            continue
        for index, piece in enumerate(physical.wrap(console, width - len(_HANGING), overflow="fold")):
            piece.rstrip()
            yield Text.assemble(_HANGING, piece) if index else piece


def _as_text(renderable: Any, style: Any = "") -> Text:
    """A cell as text in its column's style. Cells are Text (manifest text, never read as markup)
    or strings the code wrote."""
    out = Text(style=style or "")
    out.append_text(renderable if isinstance(renderable, Text) else Text(str(renderable)))
    return out


def _indented(text: Text, indent: str) -> Text:
    """A multi-line cell with its later lines indented under the first."""
    lines = text.split("\n")
    out = Text()
    for index, line in enumerate(lines):
        if index:
            out.append("\n" + indent)
        out.append_text(line)
    return out


def table(title: str, **options: Any) -> Table:
    """A table titled on its left; never narrower than its title, which would otherwise wrap."""
    return Table(title=title, title_justify="left", min_width=len(title), **options)


def err_console() -> Console:
    global _stderr
    if _stderr is None or _stderr.file is not sys.stderr:
        _stderr = _Console(file=sys.stderr, highlight=False, soft_wrap=True)
    return _stderr


def error(message: str, *, hint: str | None = None) -> None:
    """One line on stderr saying what went wrong, and one saying what to do next when we know."""
    # Messages quote file names and manifest text: their control characters are shown as escapes.
    err_console().print(Text.assemble(("error: ", "bold red"), printable(message)))
    if hint:
        err_console().print(Text.assemble(("hint: ", "dim"), printable(hint)))


def warn(message: str) -> None:
    err_console().print(Text.assemble(("warning: ", "yellow"), printable(message)))


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=False) + "\n")
    sys.stdout.flush()
