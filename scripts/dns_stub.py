#!/usr/bin/env python3
"""A loopback DNS server for tests of the customer domain proof.

Usage: dns_stub.py PORT RECORDS_JSON

Serves, over UDP and TCP on 127.0.0.1:PORT, the TXT records in RECORDS_JSON
(`{"_licensing-verify.acme.example": ["licensing-verify=..."]}`), re-read on
every query so a test changes the zone by rewriting the file. A name without
records answers NXDOMAIN. Prints "ready" once both servers listen.
"""

import json
import sys
import time

from dnslib import QTYPE, RCODE, RR, TXT
from dnslib.server import BaseResolver, DNSLogger, DNSServer


class FileResolver(BaseResolver):
    def __init__(self, path):
        self.path = path

    def resolve(self, request, handler):
        reply = request.reply()
        name = str(request.q.qname).rstrip(".").lower()
        try:
            with open(self.path) as f:
                zone = json.load(f)
        except (OSError, ValueError):
            zone = {}
        values = zone.get(name)
        if not values:
            reply.header.rcode = RCODE.NXDOMAIN
            return reply
        if request.q.qtype in (QTYPE.TXT, QTYPE.ANY):
            for v in values:
                reply.add_answer(RR(request.q.qname, QTYPE.TXT, ttl=0, rdata=TXT(v)))
        return reply


def main():
    port, path = int(sys.argv[1]), sys.argv[2]
    resolver = FileResolver(path)
    # Silent: the test reads only the "ready" line and may close the pipe.
    quiet = DNSLogger(log="-request,-reply,-truncated,-error,-recv,-send,-data", prefix=False)
    servers = [
        DNSServer(resolver, port=port, address="127.0.0.1", tcp=False, logger=quiet),
        DNSServer(resolver, port=port, address="127.0.0.1", tcp=True, logger=quiet),
    ]
    for s in servers:
        s.start_thread()
    print("ready", flush=True)
    try:
        while all(s.isAlive() for s in servers):
            time.sleep(0.5)
    finally:
        for s in servers:
            s.stop()


if __name__ == "__main__":
    main()
