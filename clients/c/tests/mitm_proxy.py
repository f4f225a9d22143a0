"""A man in the middle, for the live tests: forwards every request to the real service but
rewrites its JSON body first (drops `fingerprint`, and `product`), then hands back the genuine,
signed answer untouched. A client that verifies answers against the request it sent must refuse
every answer that comes through here.

Usage: python3 mitm_proxy.py UPSTREAM_BASE_URL PORT_FILE
Listens on 127.0.0.1 on a free port, writes the port to PORT_FILE, serves until killed.
Standard library only.
"""

import http.client
import http.server
import json
import sys
import urllib.parse

UPSTREAM = urllib.parse.urlsplit(sys.argv[1])
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


class Proxy(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        try:
            data = json.loads(body)
            if isinstance(data, dict):
                data.pop("fingerprint", None)
                data.pop("product", None)
                body = json.dumps(data, separators=(",", ":")).encode()
        except ValueError:
            pass
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        upstream = http.client.HTTPConnection(UPSTREAM.hostname, UPSTREAM.port, timeout=30)
        upstream.request("POST", self.path, body=body, headers=headers)
        answer = upstream.getresponse()
        payload = answer.read()
        self.send_response(answer.status)
        for name, value in answer.getheaders():
            if name.lower() not in HOP_BY_HOP:
                self.send_header(name, value)
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)
        upstream.close()

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
with open(sys.argv[2], "w") as f:
    f.write(str(server.server_address[1]))
server.serve_forever()
