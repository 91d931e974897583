"""The active scripts as producers and workers see them, read from the Redis mirror.

`parse_active` turns the `scripts` hash into lookups; callers fetch the hash with whichever
client they hold (sync or asyncio) and refresh when the scripts revision moves.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import msgspec

from fnhub.functions import FunctionInfo


class ActiveScript(msgspec.Struct):
    version: int
    hash: str
    functions: list[FunctionInfo]


_decoder = msgspec.json.Decoder(ActiveScript)


@dataclass(slots=True)
class ActiveScripts:
    scripts: dict[str, ActiveScript] = field(default_factory=dict)
    functions: dict[str, FunctionInfo] = field(default_factory=dict)
    revision: int = -1

    def function(self, ref: str) -> FunctionInfo | None:
        return self.functions.get(ref)


def parse_active(raw: dict[bytes, bytes], revision: int) -> ActiveScripts:
    active = ActiveScripts(revision=revision)
    for name, value in raw.items():
        script = _decoder.decode(value)
        active.scripts[name.decode()] = script
        for fn in script.functions:
            active.functions[fn.ref] = fn
    return active
