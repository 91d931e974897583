"""Calling a function: the one path from "call this with these kwargs" to a queue entry.

- `maker`: checks a call against the function's signature and limits and makes its task;
- `caller`: the asyncio `Caller` the HTTP server and subscriptions share (one reply stream
  and reader per process, cached active scripts and live workers);
- `queue_client`: the synchronous `QueueClient` (CLI, tests, benches) straight through Redis;
- `errors`: `CallError`, why a call was refused or got no result, which each front end
  translates to its own words (HTTP status, CLI exit code, a subscription's failed message).

It knows nothing of HTTP: the server imports it, never the other way round.
"""
