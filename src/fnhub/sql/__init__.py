"""Baetyl-compatible SQL filters: ``SELECT <projections> [WHERE <condition>]`` over JSON messages.

Compile once, evaluate per message::

    q = compile_sql("SELECT id, qos() AS qos WHERE id > 0")
    q.evaluate(b'{"id": 1}', SqlContext(qos=1, topic="t"))  # {"id": 1, "qos": 1}

The language and its null/type rules are described in docs/sql.md.
"""

from fnhub.sql.compiler import Query, compile_sql
from fnhub.sql.context import SqlContext
from fnhub.sql.errors import SqlSyntaxError

__all__ = ["Query", "SqlContext", "SqlSyntaxError", "compile_sql"]
