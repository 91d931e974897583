"""The seed's walkthrough (DataFlux Func "Connector Subscription" §3) in the console, end to end
on the machine's Redis: write the message handler, publish it, create the connector and the
subscription, publish a message, see it on the subscription with its result, open its task.
Then the same live view for MQTT with mosquitto_pub."""

from __future__ import annotations

import subprocess
import uuid

from playwright.sync_api import Page, expect

from .conftest import Console, Screens
from .editor import replace_code

HANDLER = """import fnhub


@fnhub.api("Message Handler")
def message_handler(topic, message):
    print("topic", topic)
    print("message", message)
    return {"seen": message}
"""


def fill_subscription_form(page: Page, name: str, connector: str, topic: str, function: str):
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Name", exact=True).fill(name)
    dialog.get_by_label("Connector", exact=True).select_option(connector)
    dialog.get_by_label("Topics").fill(topic)
    dialog.get_by_label("Function", exact=True).fill(function)
    dialog.get_by_role("button", name="Save").click()
    expect(dialog).to_have_count(0)


def test_seed_walkthrough_on_redis(page: Page, console: Console, screens: Screens):
    channel = f"{console.prefix}:orders"
    # 3.1 write the message handler, save and publish it
    page.goto(console.url + "/scripts")
    page.get_by_role("button", name="New script").click()
    page.get_by_label("Name").fill("handlers")
    page.get_by_role("button", name="Create").click()
    replace_code(page, HANDLER)
    page.get_by_role("button", name="Publish…").click()
    page.get_by_role("dialog").get_by_role("button", name="Publish").click()
    expect(page.get_by_text("Published handlers v1")).to_be_visible()
    # 3.2 the connector, and the subscription naming topic and handler
    page.goto(console.url + "/connectors")
    page.get_by_role("button", name="New connector").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Name", exact=True).fill("local-redis")
    dialog.get_by_label("Type").select_option("redis")
    dialog.get_by_label("URL", exact=True).fill("redis://127.0.0.1:6379/0")
    dialog.get_by_role("button", name="Save").click()
    expect(dialog).to_have_count(0)
    page.get_by_role("row", name="local-redis").get_by_role("button", name="Test").click()
    expect(page.get_by_role("row", name="local-redis")).to_contain_text("ok")
    page.goto(console.url + "/subscriptions")
    page.get_by_role("button", name="New subscription").click()
    fill_subscription_form(page, "orders", "local-redis", channel, "handlers.message_handler")
    row = page.get_by_role("row", name="orders")
    expect(row).to_contain_text("connected", timeout=20_000)
    # 3.3 publish a message: the latest consumption shows under the subscription
    payload = f"order {uuid.uuid4().hex[:6]}"
    subprocess.run(["redis-cli", "-p", "6379", "PUBLISH", channel, payload], check=True)
    expect(row).to_contain_text(payload, timeout=20_000)
    expect(row).to_contain_text("success")
    screens.shot(page, "subscriptions-live")
    # clicking it shows the very task that handled it
    row.get_by_role("link", name="last message").click()
    expect(page.get_by_role("heading", name="Task ")).to_be_visible()
    expect(page.get_by_label("Outcome")).to_contain_text(f"message {payload}")
    screens.shot(page, "task-detail")


def test_an_mqtt_message_appears_live(page: Page, console: Console):
    topic = f"console/{console.prefix}/sensor"
    with console.api() as api:
        assert api.put("/api/v1/scripts/handlers", json={"code": HANDLER}).status_code == 200
        mqtt = {"type": "mqtt", "settings": {"host": "127.0.0.1", "port": 1883}}
        assert api.put("/api/v1/connectors/local-mqtt", json=mqtt).status_code == 200
    page.goto(console.url + "/subscriptions")
    page.get_by_role("button", name="New subscription").click()
    # a name of this run's own: the MQTT client id derives from it, and the machine's broker
    # drops one of two clients with the same id (another run of this test elsewhere)
    name = f"sensor-{console.prefix}"
    fill_subscription_form(page, name, "local-mqtt", topic, "handlers.message_handler")
    row = page.get_by_role("row", name=name)
    expect(row).to_contain_text("connected", timeout=20_000)
    publish = ["mosquitto_pub", "-p", "1883", "-q", "1", "-t", topic, "-m", "21.5 C"]
    subprocess.run(publish, check=True)
    expect(row).to_contain_text("21.5 C", timeout=20_000)
    row.get_by_role("button", name="Pause").click()
    expect(row).to_contain_text("paused")
    row.get_by_role("button", name="Resume").click()
    expect(row).not_to_contain_text("paused")
