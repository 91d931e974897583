"""Every feature of fnhub, in the order they are mounted, started and applied.

Adding a trigger or feature: write its package with a `Feature` (see `fnhub.feature`) and add
it here. Ordinary imports: a feature that is missing or misspelt stops fnhub at import, never
silently drops out. The server (`server.app.create_app`), `project.apply_project`, the CLI
(`cli.py`) and Alembic (`store.all_models`) all take this list.
"""

from fnhub.cron.feature import CRON
from fnhub.dff.feature import DFF_URLS
from fnhub.envs.feature import ENVS
from fnhub.feature import Feature
from fnhub.server.endpoints_feature import ENDPOINTS
from fnhub.subscriptions.feature import SUBSCRIPTIONS
from fnhub.websub.feature import WEBSUB

FEATURES: tuple[Feature, ...] = (ENDPOINTS, CRON, WEBSUB, SUBSCRIPTIONS, ENVS, DFF_URLS)
