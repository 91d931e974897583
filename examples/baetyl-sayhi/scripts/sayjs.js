// The guide's Node `index.handler`, unchanged but for `fnhub.api`: Baetyl's
// handler(event, context, callback).
//
// fnhub sees the (event, context, callback) parameters and calls it the Baetyl way: `event` is the
// message parsed as JSON (a Buffer when it is not JSON, {} when empty), `context` holds
// messageQOS, messageTopic, messageTimestamp (seconds), functionName, functionInvokeID (and
// invokeid); callback(null, value) publishes value, callback(err) fails the call.
const fnhub = require('fnhub');

const hasAttr = (obj, attr) => {
    if (obj instanceof Object && !(obj instanceof Array)) {
        if (obj[attr] != undefined) {
            return true;
        }
    }
    return false;
};

const passParameters = (event, context) => {
    if (hasAttr(context, 'messageQOS')) {
        event['messageQOS'] = context['messageQOS'];
    }
    if (hasAttr(context, 'messageTopic')) {
        event['messageTopic'] = context['messageTopic'];
    }
    if (hasAttr(context, 'messageTimestamp')) {
        event['messageTimestamp'] = context['messageTimestamp'];
    }
    if (hasAttr(context, 'functionName')) {
        event['functionName'] = context['functionName'];
    }
    if (hasAttr(context, 'functionInvokeID')) {
        event['functionInvokeID'] = context['functionInvokeID'];
    }
};

exports.handler = fnhub.api(
    { title: 'say hi (Baetyl node85-sayhi)', retries: 2, retryDelay: 0.1 },
    (event, context, callback) => {
        // support Buffer & json object
        if (Buffer.isBuffer(event)) {
            const message = event.toString();
            event = {}
            event["bytes"] = message;
        }
        else if("err" in event) {
            return callback(new TypeError(event['err']))
        }

        passParameters(event, context);
        event['Say'] = 'Hello Baetyl'
        callback(null, event);
    },
);
