"""The one exception the SQL engine raises, so callers can report bad rules precisely.

Everything wrong with a query is detected when it is compiled; evaluation never raises.
"""

from __future__ import annotations


class SqlSyntaxError(ValueError):
    """A query that cannot be compiled, with the place where the problem was found.

    ``position`` is a 0-based character offset into the source; ``line`` and ``column`` are
    1-based, for humans.  ``str(err)`` gives the message, the place and a caret line.
    """

    def __init__(self, message: str, position: int, source: str = "") -> None:
        self.message = message
        self.position = max(0, min(position, len(source))) if source else max(0, position)
        self.source = source
        before = source[: self.position]
        self.line = before.count("\n") + 1
        self.column = self.position - (before.rfind("\n") + 1) + 1
        super().__init__(self._render())

    def _render(self) -> str:
        text = f"{self.message} (line {self.line}, column {self.column})"
        if not self.source:
            return text
        line_text = self.source.split("\n")[self.line - 1].rstrip("\r")
        if len(line_text) > 200:  # keep the excerpt readable for very long one-line queries
            start = max(0, self.column - 100)
            line_text, col = line_text[start : start + 200], self.column - start
        else:
            col = self.column
        line_text = line_text.replace("\t", " ")
        return f"{text}\n  {line_text}\n  {' ' * (col - 1)}^"
