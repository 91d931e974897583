"""Connector handlers (DataFlux Func script `shop__handlers`)."""

import json

import common__utils


@DFF.API("Sensor handler", queue=6)
def on_sensor(topic, message):
    data = common__utils.tag(message)
    data["topic"] = topic
    DFF.CONN("mqtt_broker").publish("shop/tagged", json.dumps(data), qos=1)
    DFF.CONN("redis_local").set("last-sensor", json.dumps(data))
    return data
