"""`fnhub endpoints list|add|remove` through the real CLI, checked by the API's own model."""

from __future__ import annotations

import json

from tests.project_cli import drop_keys, fnhub, shared_redis_env
from tests.test_apply import make_project


def test_endpoints_add_list_remove(tmp_path):
    project = make_project(tmp_path / "proj", "settings: {processes: 1}\n")
    env = {**shared_redis_env(project), "SHOP_TOKEN": "shop-token-123"}
    try:
        assert fnhub("apply", cwd=project, env=env).returncode == 0
        empty = fnhub("endpoints", "list", "--json", cwd=project, env=env)
        assert empty.returncode == 0 and json.loads(empty.stdout) == []

        added = fnhub(
            "endpoints",
            "add",
            "orders",
            "shop.order",
            "--auth",
            '{"type": "token", "token": "${SHOP_TOKEN}"}',
            "--throttle",
            "minute=60,second=5",
            "--kwargs",
            '{"item": "$caller", "qty": 2}',
            "--timeout",
            "3",
            cwd=project,
            env=env,
        )
        assert added.returncode == 0, added.stderr
        assert "endpoint /e/orders created: shop.order (sync)" in added.stdout
        [row] = json.loads(fnhub("endpoints", "list", "--json", cwd=project, env=env).stdout)
        assert row["name"] == "orders" and row["url"] == "/e/orders"
        assert row["auth"] == {
            "type": "token",
            "location": "header",
            "field": "X-Token",
            "token": "********",
        }
        assert row["throttle"] == {"second": 5, "minute": 60}
        assert row["kwargs"] == {"item": "$caller", "qty": 2}
        assert (row["timeout"], row["mode"], row["provisioned"]) == (3.0, "sync", False)

        again = fnhub("endpoints", "add", "orders", "shop.echo", cwd=project, env=env)
        assert again.returncode == 1 and "add --replace to overwrite it" in again.stderr
        replaced = fnhub(
            "endpoints",
            "add",
            "orders",
            "shop.echo",
            "--mode",
            "async",
            "--disabled",
            "--replace",
            cwd=project,
            env=env,
        )
        assert replaced.returncode == 0 and "updated: shop.echo (async)" in replaced.stdout
        table = fnhub("endpoints", "list", cwd=project, env=env).stdout
        assert "/e/orders" in table and "disabled" in table and "API/CLI" in table

        for args, message in [
            (("--throttle", "minut=5"), "throttle.minut: unknown option (did you mean 'minute'?)"),
            (("--auth", '{"type": "token"}'), "endpoint 'bad': auth.token: Field required"),
            (("--mode", "fast"), "endpoint 'bad': mode: Input should be 'sync' or 'async'"),
            (("--auth", '{"type": "token", "token": "${NOPE_UNSET}"}'), "NOPE_UNSET is not set"),
        ]:
            bad = fnhub("endpoints", "add", "bad", "shop.echo", *args, cwd=project, env=env)
            assert bad.returncode == 2, (args, bad.stderr)
            assert message in " ".join(bad.stderr.split()), bad.stderr
        unknown = fnhub("endpoints", "add", "bad", "shop.nope", cwd=project, env=env)
        assert unknown.returncode == 2
        assert "endpoint 'bad': function: unknown function 'shop.nope'" in unknown.stderr
        names = [
            e["name"]
            for e in json.loads(fnhub("endpoints", "list", "--json", cwd=project, env=env).stdout)
        ]
        assert names == ["orders"]

        removed = fnhub("endpoints", "remove", "orders", cwd=project, env=env)
        assert removed.returncode == 0 and "removed endpoint /e/orders" in removed.stdout
        assert json.loads(fnhub("endpoints", "list", "--json", cwd=project, env=env).stdout) == []
        missing = fnhub("endpoints", "remove", "orders", cwd=project, env=env)
        assert missing.returncode == 1 and "no endpoint 'orders'" in missing.stderr
    finally:
        drop_keys(env)
