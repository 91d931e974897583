"""The active scripts as producers and workers see them, read from the Redis mirror.

Everyone reads them through `read_active` (sync) or `read_active_async`: the `scripts` hash
turned into lookups, labelled with the scripts revision read before it, so a change published
while we read is read again at the next refresh. Given what a caller already holds, the hash
is read only when the revision moved.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import msgspec
import redis
import redis.asyncio as aredis

from fnhub.functions import FunctionInfo
from fnhub.keys import Keys
from fnhub.redis_replies import as_hash
from fnhub.scripts.languages import PYTHON


class ActiveScript(msgspec.Struct):
    version: int
    hash: str
    functions: list[FunctionInfo]
    language: str = PYTHON  # mirrors written before languages existed are Python


_decoder = msgspec.json.Decoder(ActiveScript)


@dataclass(slots=True)
class ActiveScripts:
    scripts: dict[str, ActiveScript] = field(default_factory=dict)
    functions: dict[str, FunctionInfo] = field(default_factory=dict)
    revision: int = -1

    def function(self, ref: str) -> FunctionInfo | None:
        """The function `script.func`, also under DataFlux Func's id `set__script.func`."""
        info = self.functions.get(ref)
        if info is None and "__" in ref:
            script, dot, name = ref.rpartition(".")
            if dot and "__" in script:
                info = self.functions.get(f"{script.partition('__')[2]}.{name}")
        return info


def parse_active(raw: dict[bytes, bytes], revision: int) -> ActiveScripts:
    active = ActiveScripts(revision=revision)
    for name, value in raw.items():
        script = _decoder.decode(value)
        active.scripts[name.decode()] = script
        for fn in script.functions:
            active.functions[fn.ref] = fn
    return active


def read_active(
    client: redis.Redis, keys: Keys, known: ActiveScripts | None = None
) -> ActiveScripts:
    """The active scripts; `known` itself when the revision has not moved since it was read."""
    if known is None:
        pipe = client.pipeline(transaction=False)
        pipe.get(keys.scripts_revision)
        pipe.hgetall(keys.scripts)
        revision, raw = pipe.execute()
        return parse_active(raw, int(revision or 0))
    revision = int(client.get(keys.scripts_revision) or 0)
    if revision == known.revision:
        return known
    return parse_active(as_hash(client.hgetall(keys.scripts)), revision)


async def read_active_async(
    client: aredis.Redis, keys: Keys, known: ActiveScripts | None = None
) -> ActiveScripts:
    """`read_active` on an asyncio client."""
    if known is None:
        pipe = client.pipeline(transaction=False)
        pipe.get(keys.scripts_revision)
        pipe.hgetall(keys.scripts)
        revision, raw = await pipe.execute()
        return parse_active(raw, int(revision or 0))
    revision = int(await client.get(keys.scripts_revision) or 0)
    if revision == known.revision:
        return known
    return parse_active(as_hash(await client.hgetall(keys.scripts)), revision)
