"""How `fnhub` commands print, alike everywhere: listings as tables that fit, or as JSON.

A table is as wide as the terminal; piped, as `COLUMNS` says, else wide enough not to cut ids.
When it does not fit, its less important columns go and the rest wrap: no cell is ever cut
("subs…"). Nothing shows as `-`, never as `None`. Every listing takes `--json`, which prints
what the API answers, on one line.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import typer
from rich.console import Console, RenderableType
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON")]

#: piped output without COLUMNS: wide enough that no table needs to wrap much
PIPED_WIDTH = 200
#: spaces between two columns
GAP = 2


def out() -> Console:
    """Stdout: a terminal's width, else COLUMNS, else wide (a pipe must not cut ids)."""
    if sys.stdout.isatty():
        return Console()
    columns = os.environ.get("COLUMNS", "")
    return Console(width=int(columns) if columns.isdigit() else PIPED_WIDTH)


def show(console: Console, renderable: RenderableType) -> None:
    """Print; piped, without the padding Rich leaves at the ends of table lines."""
    if console.is_terminal:
        console.print(renderable)
        return
    with console.capture() as captured:
        console.print(renderable)
    sys.stdout.write("".join(line.rstrip() + "\n" for line in captured.get().splitlines()))
    sys.stdout.flush()


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, default=str) + "\n")
    sys.stdout.flush()


def cell(value: Any, style: str = "") -> Text:
    """A cell: text shown as is (never as markup), `-` for nothing."""
    return Text("-" if value is None or value == "" else str(value), style=style)


@dataclass(frozen=True)
class Column:
    """A table column; on a narrow terminal the highest `drop` goes first (0: always kept)."""

    name: str
    drop: int = 0
    justify: Literal["left", "right"] = "left"


def fitted_table(
    console: Console, columns: Sequence[Column], rows: Sequence[Sequence[Any]], title: str = ""
) -> Table:
    """`rows` (one value per column) as a table within the console's width: columns dropped,
    most droppable first, until every column fits its longest word; then each gets that much,
    and the room left goes to the columns that would wrap, so no word is ever broken.

    (Rich's own squeezing shrinks the widest columns without regard to words, breaking
    headers like "notifications" in a table that would fit.)"""
    cells = [[v if isinstance(v, Text) else cell(v) for v in row] for row in rows]
    heads = [Text(c.name) for c in columns]
    spans = [
        [Measurement.get(console, console.options, t) for t in (heads[i], *(r[i] for r in cells))]
        for i in range(len(columns))
    ]
    narrowest = [max(m.minimum for m in column) for column in spans]
    widest = [max(m.maximum for m in column) for column in spans]
    kept = list(range(len(columns)))
    while True:
        room = console.width - GAP * (len(kept) - 1)
        droppable = [i for i in kept if columns[i].drop > 0]
        if sum(narrowest[i] for i in kept) <= room or not droppable:
            break
        kept.remove(max(droppable, key=lambda i: (columns[i].drop, i)))
    least = _fold_widest(room, [narrowest[i] for i in kept])
    widths = _share(room, least, [widest[i] for i in kept])
    table = Table(
        box=None,
        pad_edge=False,
        padding=(0, GAP // 2),
        header_style="bold",
        title=title or None,
        title_justify="left",
        title_style="bold",
    )
    for i, width in zip(kept, widths, strict=True):
        table.add_column(columns[i].name, justify=columns[i].justify, overflow="fold", width=width)
    for row in cells:
        table.add_row(*(row[i] for i in kept))
    return table


#: the narrowest a column whose longest word does not fit is folded to
FOLDED_MIN_WIDTH = 8


def _fold_widest(room: int, least: list[int]) -> list[int]:
    """Widths of at least each column's longest word (`least`) if they fit in `room`; if not,
    the widest columns give up characters, one at a time, and their long words fold (a path,
    a URL), while the narrow ones (names, sources) keep their words whole (left to Rich, every
    column shrank, breaking headers like "source")."""
    widths = list(least)
    while sum(widths) > room:
        widest = max(range(len(widths)), key=lambda i: widths[i])
        if widths[widest] <= FOLDED_MIN_WIDTH:
            break
        widths[widest] -= 1
    return widths


def _share(room: int, least: list[int], most: list[int]) -> list[int]:
    """Widths from `least` towards `most` within `room`: the columns needing least extra are
    served first, the rest split what remains evenly."""
    widths = list(least)
    budget = room - sum(least)
    wanting = sorted(range(len(least)), key=lambda i: most[i] - least[i])
    for n, i in enumerate(wanting):
        if budget <= 0:
            break
        give = min(most[i] - least[i], budget // (len(wanting) - n))
        widths[i] += give
        budget -= give
    return widths


def hide_flag_types() -> None:
    """Typer's help shows a `<bool>` type beside flags, as if they took a value; show none."""
    from typer.core import TyperOption

    shown = TyperOption.display_type_rich
    if getattr(shown, "fnhub_flags_hidden", False):
        return

    def display_type_rich(self: TyperOption, ctx: Any) -> str | None:
        return None if self.is_flag else shown(self, ctx)

    display_type_rich.fnhub_flags_hidden = True  # type: ignore[attr-defined]  # marks our patch
    TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]  # Typer: no hook
