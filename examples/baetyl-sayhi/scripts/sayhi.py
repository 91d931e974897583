"""The guide's `index.handler`, unchanged but for `@fnhub.api`: Baetyl's handler(event, context).

fnhub sees the `(event, context)` signature and calls it the Baetyl way: `event` is the message
parsed as JSON (bytes when it is not JSON, `{}` when empty) and `context` holds messageQOS,
messageTopic, messageTimestamp (seconds), functionName, functionInvokeID (and `invokeid`).
"""

import fnhub


@fnhub.api("say hi (Baetyl python36-sayhi)", retries=2, retry_delay=0.1)
def handler(event, context):
    """function handler"""
    res = {}
    if isinstance(event, dict):
        if "err" in event:
            raise TypeError(event["err"])
        res = event
    elif isinstance(event, bytes):
        res["bytes"] = event.decode("utf-8")

    if "messageQOS" in context:
        res["messageQOS"] = context["messageQOS"]
    if "messageTopic" in context:
        res["messageTopic"] = context["messageTopic"]
    if "messageTimestamp" in context:
        res["messageTimestamp"] = context["messageTimestamp"]
    if "functionName" in context:
        res["functionName"] = context["functionName"]
    if "functionInvokeID" in context:
        res["functionInvokeID"] = context["functionInvokeID"]

    res["Say"] = "Hello Baetyl"
    return res
