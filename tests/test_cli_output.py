"""`fitted_table`: a table fits its width by dropping the most droppable columns, then wrapping
between words; a word is never broken while the columns' longest words fit, and never cut."""

from __future__ import annotations

from rich.console import Console

from fnhub.cli_output import Column, fitted_table

HEADERS = ["topic", "registered", "subscribers", "notifications", "stored", "bytes", "dropped"]
HEADERS += ["last publish"]


def render(table: object, width: int) -> str:
    console = Console(width=width, file=None, force_terminal=False, color_system=None)
    with console.capture() as captured:
        console.print(table)
    return captured.get()


def test_columns_that_fit_by_their_longest_words_keep_every_word_whole() -> None:
    """Rich alone squeezes the widest columns here and breaks "notifications" in two."""
    console = Console(width=80)
    columns = [Column(name, drop=i) for i, name in enumerate(HEADERS)]
    text = render(fitted_table(console, columns, []), 80)
    assert all(len(line) <= 80 for line in text.splitlines()), text
    for word in " ".join(HEADERS).split():
        assert word in text.split(), (word, text)


def test_a_long_word_keeps_its_column_whole_by_dropping_others() -> None:
    console = Console(width=80)
    columns = [Column(name, drop=i) for i, name in enumerate(HEADERS)]
    topic = "https://feeds.example.org/orders/created-in-the-european-warehouses and more"
    text = render(fitted_table(console, columns, [(topic, "yes", 1, 12, 0, 0, 0, None)]), 80)
    assert "https://feeds.example.org/orders/created-in-the-european-warehouses" in text
    assert "…" not in text and all(len(line) <= 80 for line in text.splitlines()), text


def test_the_most_droppable_columns_go_first_and_none_shows_as_a_dash() -> None:
    console = Console(width=40)
    columns = [Column("id"), Column("detail", drop=1), Column("extra", drop=2), Column("state")]
    row = ("an-identifier-of-twenty", "some detail text", "x" * 20, None)
    text = render(fitted_table(console, columns, [row]), 40)
    header = text.splitlines()[0].split()
    assert header == ["id", "detail", "state"], text  # "extra" went first
    assert "None" not in text and "-" in text.splitlines()[1]
    assert all(len(line) <= 40 for line in text.splitlines()), text


def test_too_narrow_for_the_kept_columns_folds_but_never_cuts() -> None:
    console = Console(width=20)
    columns = [Column("id"), Column("state")]
    text = render(fitted_table(console, columns, [("x" * 30, "enabled")]), 20)
    assert "…" not in text and text.replace("\n", "").count("x") == 30
    assert all(len(line) <= 20 for line in text.splitlines()), text


def test_a_column_too_long_for_the_width_folds_while_the_short_ones_keep_their_words() -> None:
    """`fnhub settings` in a deep folder: the path alone is wider than the room. Only its column
    folds; left to Rich, every column shrank and "source" came out as "sour" over "ce"."""
    console = Console(width=80)
    columns = [Column("setting"), Column("value"), Column("source")]
    path = "/tmp/pytest-of-root/pytest-92/popen-gw1/test_settings_shows_sources_an0/proj/.fnhub"
    rows = [
        ("websub_subscribed_cache_seconds", "2.0", "default"),
        ("data_dir", path, "env FNHUB_DATA_DIR"),
        ("port", "18499", "fnhub.yaml"),
    ]
    text = render(fitted_table(console, columns, rows), 80)
    assert text.splitlines()[0].split() == ["setting", "value", "source"], text
    words = text.split()
    for word in ("websub_subscribed_cache_seconds", "FNHUB_DATA_DIR", "fnhub.yaml", "default"):
        assert word in words, (word, text)
    assert "…" not in text
    assert all(len(line) <= 80 for line in text.splitlines()), text


def test_output_to_a_reader_that_left_ends_quietly_without_a_signal() -> None:
    """`fnhub ... | head`: the reader closes the pipe before fnhub writes. fnhub ends with an
    exit code and nothing on stderr, not a traceback and not killed by SIGPIPE (which a server
    role must never restore: it would die on any connection its peer dropped)."""
    import os
    import subprocess
    import sys

    read_end, write_end = os.pipe()
    process = subprocess.Popen(
        [sys.executable, "-c", "from fnhub.cli import main; main()", "--help"],
        stdout=write_end,
        stderr=subprocess.PIPE,
    )
    os.close(write_end)
    os.close(read_end)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode > 0, process.returncode  # < 0 would be a signal
    assert b"Traceback" not in stderr and b"BrokenPipe" not in stderr, stderr.decode()
