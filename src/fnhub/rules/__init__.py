"""Rules: routing broker messages to functions, and the SQL filter engine (``sql``)."""
