"""Tables in the terminal: the comparison table `rosetta run` prints at the end, and `rosetta compare`'s."""

from __future__ import annotations

from rosetta.report import columns

WIDE = ("verdict", "timing", "time")


def print_table(report, console=None) -> None:
    several = report.frame["task"].nunique() > 1
    print_frame(columns.display_table(report.frame, (("task",) if several else ()) + columns.TERMINAL,
                                      report.reference_name), console)


def print_frame(table, console=None) -> None:
    from rich.console import Console
    from rich.table import Table

    shown = Table(show_lines=False)
    for column in table.columns:
        wide = column in WIDE
        shown.add_column(str(column), no_wrap=not wide, min_width=36 if column == "verdict" else None,
                         max_width=60 if wide else None, overflow="fold")
    for row in table.itertuples(index=False):
        shown.add_row(*(str(v) for v in row))
    console = console or Console()
    if not console.is_terminal:  # piped or captured: do not squeeze the table into 80 columns
        console = Console(width=200)
    console.print(shown)
