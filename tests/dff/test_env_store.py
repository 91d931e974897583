"""`DFF.ENV` and `DFF.STORE`: DataFlux Func's spellings of `fnhub.env` and `fnhub.store`, which
come with another change (env variables and the store); these tests run once both are here."""

from __future__ import annotations

import importlib
import importlib.util

import pytest
from tests.conftest import call_ok

HAVE_ENV_STORE = importlib.util.find_spec("fnhub.envs") is not None

SCRIPT = """
@DFF.API("env and store, as DataFlux Func writes them")
def envstore():
    DFF.STORE.set("order:1", {"qty": 2}, 60)
    DFF.STORE.mset({"order:2": "two", "other": 3})
    DFF.STORE.set("order:1", "not kept", not_exists=True)
    return {
        "port": DFF.ENV("PORT"),
        "missing": DFF.ENV("NO_SUCH_ENV"),
        "has_port": "PORT" in DFF.ENV.keys(),
        "one": DFF.STORE.get("order:1"),
        "many": DFF.STORE.mget(["order:1", "order:2"]),
        "orders": sorted(DFF.STORE.keys("order:*")),
        "pattern": DFF.STORE.get_pattern("order:*"),
        "elsewhere": DFF.STORE.get("order:1", scope="other_script"),
    }


@DFF.API("delete from the store")
def forget():
    DFF.STORE.delete("other")
    DFF.STORE.delete_pattern("order:*")
    return DFF.STORE.getall()
"""


@pytest.mark.skipif(
    not HAVE_ENV_STORE,
    reason="fnhub.env and fnhub.store are another change's (h26-dff-env-store): run after merging",
)
def test_env_and_store_through_their_dataflux_func_names(services, client, start_worker):
    from fnhub.secret_box import SecretBox, resolve_secret_key

    repo = importlib.import_module("fnhub.envs.repo")  # (not a first-party module before)
    box = SecretBox(resolve_secret_key(services.settings))
    with services.db.session() as session, session.begin():
        repo.save_env(session, box, "PORT", repo.spec_of("integer", "5432"), actor="cli")
    services.scripts.publish({"shop": SCRIPT})
    start_worker(processes=1)
    result = call_ok(client, "shop.envstore").result
    assert result == {
        "port": 5432,
        "missing": None,
        "has_port": True,
        "one": {"qty": 2},
        "many": {"order:1": {"qty": 2}, "order:2": "two"},
        "orders": ["order:1", "order:2"],
        "pattern": {"order:1": {"qty": 2}, "order:2": "two"},
        "elsewhere": None,
    }
    assert call_ok(client, "shop.forget").result == {}


@pytest.mark.skipif(HAVE_ENV_STORE, reason="fnhub.env and fnhub.store are here")
def test_without_env_and_store_their_names_say_so():
    from fnhub.dff import DFF

    with pytest.raises(NotImplementedError, match=r"DFF\.ENV needs fnhub\.env"):
        DFF.ENV("PORT")
    with pytest.raises(NotImplementedError, match=r"DFF\.STORE needs fnhub\.store"):
        DFF.STORE.get("k")
