"""What the HTTP processes' fork server imports once (`fnhub.server.processes`): the app and
what serving needs, with the collector paused, then frozen (`fnhub.heap`), so every process it
forks starts with them frozen and shares their pages."""

from __future__ import annotations

from fnhub import heap

heap.pause_for_startup(safety_net=False)

import fnhub.features  # noqa: E402
import fnhub.server.app  # noqa: E402
import fnhub.server.run  # noqa: E402, F401

heap.freeze_startup_objects()
