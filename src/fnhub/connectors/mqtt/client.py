"""Connecting to MQTT: what the source and the publishers share."""

from __future__ import annotations

import logging

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from fnhub.connectors.mqtt.settings import (
    MqttSettings,
)
from fnhub.connectors.settings import tls_options

log = logging.getLogger("fnhub.connectors.mqtt")


def reason_text(rc: ReasonCode | int) -> str:
    if isinstance(rc, ReasonCode):
        return f"{rc.getName()} ({rc.value})"
    return paho.error_string(rc)


def make_client(
    s: MqttSettings,
    client_id: str,
    *,
    manual_ack: bool = False,
    persistent: bool = False,
    receive_maximum: int | None = None,
    auto_reconnect: bool = False,
    client_class: type[paho.Client] = paho.Client,
) -> paho.Client:
    """A configured (not yet connected) paho client; `connect_async` stores where to connect."""
    v5 = s.protocol == "5"
    client = client_class(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=paho.MQTTv5 if v5 else paho.MQTTv311,
        clean_session=None if v5 else (s.clean_start or not persistent),
        manual_ack=manual_ack,
        reconnect_on_failure=auto_reconnect,
    )
    client.connect_timeout = s.connect_timeout
    if s.username is not None:
        client.username_pw_set(s.username, s.password)
    tls = tls_options(s.tls)
    if tls is not None:
        client.tls_set_context(tls.context())
        if tls.insecure:
            client.tls_insecure_set(True)
    props = None
    if v5:
        props = Properties(PacketTypes.CONNECT)
        if persistent and s.session_expiry:
            props.SessionExpiryInterval = s.session_expiry
        if receive_maximum:
            props.ReceiveMaximum = min(receive_maximum, 65535)
    client.connect_async(
        s.host,
        s.port,
        keepalive=s.keepalive,
        clean_start=(s.clean_start or not persistent) if v5 else paho.MQTT_CLEAN_START_FIRST_ONLY,
        properties=props,
    )
    return client
