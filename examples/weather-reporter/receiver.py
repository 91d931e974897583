"""A tiny news receiver: subscribes to one location's topic and prints verified reports.

python receiver.py colombo --port 9100 --hub http://127.0.0.1:8090/websub/hub
"""

import argparse
import hmac
import secrets
import threading
import time
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SECRET = secrets.token_hex(16)


class Receiver(BaseHTTPRequestHandler):
    def do_GET(self):  # intent verification: echo the challenge
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
        if query.get("hub.mode") == ["denied"]:
            print("denied:", query.get("hub.reason"))
        body = query.get("hub.challenge", [""])[0].encode()
        self.send_response(200 if body else 404)
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):  # a report
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        method, _, given = self.headers.get("x-hub-signature", "").partition("=")
        ok = method in ("sha1", "sha256", "sha384", "sha512") and hmac.compare_digest(
            hmac.new(SECRET.encode(), body, method).hexdigest(), given
        )
        print("report" if ok else "UNSIGNED (ignored)", body.decode())
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("location")
    parser.add_argument("--port", type=int, default=9100)
    parser.add_argument("--hub", default="http://127.0.0.1:8090/websub/hub")
    parser.add_argument("--topic-base", default="http://127.0.0.1:8090/weather")
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    data = urllib.parse.urlencode(
        {
            "hub.mode": "subscribe",
            "hub.topic": f"{args.topic_base}/{args.location}",
            "hub.callback": f"http://127.0.0.1:{args.port}/news",
            "hub.secret": SECRET,
            "hub.lease_seconds": 86400,
        }
    ).encode()
    with urllib.request.urlopen(args.hub, data) as r:
        print("hub answered", r.status)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
