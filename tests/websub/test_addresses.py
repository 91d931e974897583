"""The address policy, called directly (no packet is sent), and deliveries refused on the address
they would connect to, through two real servers sharing Redis and the database."""

from __future__ import annotations

import pytest

from fnhub.websub.addresses import AddressPolicy, AddressRefused

from .harness import eventually
from .test_conformance import subscribe, topic_url
from .test_delivery import fat_publish

NOT_GLOBAL = [
    "10.0.0.1",
    "10.255.255.254",
    "172.16.0.1",
    "172.31.255.1",
    "192.168.1.1",
    "127.0.0.1",
    "127.8.9.10",
    "169.254.169.254",  # cloud metadata
    "100.64.0.1",  # shared address space
    "100.100.100.200",  # a cloud metadata address inside it
    "0.0.0.0",
    "0.1.2.3",
    "224.0.0.1",  # multicast
    "239.255.255.250",
    "255.255.255.255",  # broadcast
    "240.0.0.1",
    "192.0.2.1",
    "198.18.0.1",
    "192.88.99.1",  # 6to4 relay anycast
    "::1",
    "::",
    "fe80::1",
    "fe80::1%1",
    "fc00::1",
    "fd12:3456::1",
    "fec0::1",
    "ff02::1",
    "::ffff:10.0.0.1",  # IPv4-mapped
    "::ffff:127.0.0.1",
    "::ffff:169.254.169.254",
    "2002:0a00:0001::",  # 6to4 of 10.0.0.1
    "2002:0808:0808::1",  # 6to4 at all (deprecated, not global)
    "64:ff9b::a00:1",  # NAT64 of 10.0.0.1
    "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
    "64:ff9b::6440:1",  # NAT64 of 100.64.0.1
    "64:ff9b:1::808:808",  # local-use NAT64
    "2001:0:4136:e378:8000:63bf:3fff:fdd2",  # Teredo
    "2001:db8::1",
    "::a00:1",  # IPv4-compatible
    "100::1",
]
GLOBAL = [
    "8.8.8.8",
    "1.1.1.1",
    "93.184.216.34",
    "::ffff:8.8.8.8",
    "64:ff9b::808:808",  # NAT64 of a global address
    "2606:4700:4700::1111",
    "2001:4860:4860::8888",
]


@pytest.mark.parametrize("address", NOT_GLOBAL)
def test_not_global_addresses_are_refused(address):
    policy = AddressPolicy()
    assert policy.refusal(address) is not None
    with pytest.raises(AddressRefused):
        policy.check([address])


@pytest.mark.parametrize("address", GLOBAL)
def test_global_addresses_pass(address):
    assert AddressPolicy().refusal(address) is None


def test_one_refused_answer_refuses_the_name():
    with pytest.raises(AddressRefused, match=r"10\.0\.0\.1"):
        AddressPolicy().check(["8.8.8.8", "10.0.0.1"])


def test_allowed_networks():
    policy = AddressPolicy(["127.0.0.0/8", "fd00::/8"])
    for address in ("127.0.0.1", "::ffff:127.0.0.1", "fd00::5", "8.8.8.8"):
        assert policy.refusal(address) is None, address
    for address in ("10.0.0.1", "::1", "169.254.169.254", "2002:7f00:1::", "64:ff9b::a00:1"):
        assert policy.refusal(address) is not None, address
    assert AddressPolicy(["64:ff9b::/96"]).refusal("64:ff9b::a00:1") is not None  # leads to 10/8
    with pytest.raises(ValueError, match="websub_allow_networks"):
        AddressPolicy(["not-a-network"])


async def test_deliveries_are_refused_at_connect_time(start_hub, subscribers):
    """A subscription verified by a hub that allows the loopback, delivered by one that does not:
    the delivery is refused on the address it would dial, nothing reaches the callback."""
    allowing = await start_hub()  # 127.0.0.0/8 allowed (the fixture's settings)
    topic = topic_url(subscribers)
    cb = await subscribe(allowing, subscribers, "moved", topic)
    await allowing.served.stop()
    strict = await start_hub(websub_allow_networks=[])
    sid = (await strict.subscriptions(topic=topic))[0]["id"]
    await eventually(lambda: _owner(strict, topic))
    await fat_publish(strict, topic, "must not arrive")
    dead = await eventually(
        lambda: _json(strict.api("GET", "/dead-letters", params={"subscription_id": sid}))
    )
    assert "127.0.0.1 is not a public address" in dead[0]["last_error"], dead[0]
    assert cb.attempts == 0 and cb.notices == []


async def _owner(hub, topic: str):
    subs = await hub.subscriptions(topic=topic)
    return subs and subs[0]["owner"]


async def _json(coro):
    r = await coro
    return r.json()
