"""moto's server with DynamoDB requests served one at a time.

moto 5.2's stock server handles every request on its own thread with no lock.
Under concurrency its TransactWriteItems stops being atomic once a table holds
a few hundred items (seen: 6 activations on a 5-seat counter, and 500s from
"dictionary changed size during iteration"). A real DynamoDB item is
linearisable, so we serialise every `X-Amz-Target: DynamoDB_*` request behind
one lock and leave everything else (SQS long polls, Secrets Manager) parallel.

DynamoDB Streams requests (`DynamoDBStreams_*`) take the same lock, so a
GetRecords never reads a table in the middle of a transaction.

`moto_patch.py` (applied before the server starts) replaces stock moto's
TransactWriteItems, which deep-copied every named table, stream records
included, once per transaction item: each transaction cost O(everything
written so far) and a test run grew the process to 15 GB. The patched one
checks every condition first (a refusal writes nothing and leaves no stream
record), snapshots only the items it touches, and restores only those if a
write fails. It also bounds each table's stream records and the shard
iterators kept. Tested by `scripts/test_moto_patch.py`.

Full garbage collections are kept short (`keep_full_collections_short`):
what survives one is frozen, so the next scans only what is newer. Without
it, under `make dev`'s load, a full collection stopped every thread for up
to 1.8 s, growing with the data.

It also answers `GET /_local/ses/sent`: every e-mail moto's SES accepted
(SES and SES v2 share the backend), as JSON `[{"source", "destinations",
"subject", "body"}]`, so the portal's tests read sign-in links back.
moto's own `/moto-api/data.json` has them too, but serialises every
DynamoDB item with them (seconds once a test run has filled the tables).
SES calls themselves pass through like every non-DynamoDB request.

Usage: python moto_locked.py HOST PORT
"""
import json
import os
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import moto_patch  # noqa: E402

moto_patch.apply()

from werkzeug.serving import run_simple
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)

_dynamodb_lock = threading.Lock()


def locked(app):
    def wrapper(environ, start_response):
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        if not target.startswith(("DynamoDB_", "DynamoDBStreams_")):
            return app(environ, start_response)
        with _dynamodb_lock:
            # Materialise the whole body inside the lock: moto does its work
            # while the response iterable is produced.
            chunks = list(app(environ, start_response))
        return chunks

    return wrapper


def memory_report(app):
    """`MOTO_MEMORY_REPORT=1`, a diagnostic for load runs and the patch's
    tests: `/_local/memory/objects` answers (JSON) how many objects of each
    type are alive, how many items the tables hold, how many stream
    records they keep and how many unreachable objects a full collection
    found once the frozen ones were thawed; `/_local/memory/start` starts tracing allocations
    (slowing the emulator down) and `/_local/memory` then lists the 30 sites
    holding the most of what was allocated since (`?traceback`: by call
    chain); `/_local/memory/malloc` prints the allocators' own figures;
    `/_local/memory/counts` (cheap: no collection) answers per table the
    items and stream records kept, unread ones among them, and per SQS queue
    the messages held."""
    import collections
    import gc
    import tracemalloc

    def answer(start_response, body: bytes, kind: str):
        start_response("200 OK", [("Content-Type", kind), ("Content-Length", str(len(body)))])
        return [body]

    def objects() -> dict:
        from moto.dynamodb.models import dynamodb_backends

        with _dynamodb_lock:
            # Frozen objects (see `keep_full_collections_short`) are not in
            # `gc.get_objects()`: thaw them to count everything (they are
            # frozen again after this collection).
            frozen = gc.get_freeze_count()
            gc.unfreeze()
            # What a full collection finds unreachable once everything is
            # thawed: garbage cycles that were frozen, which nothing else frees.
            collected = gc.collect()
            alive = collections.Counter(
                f"{type(o).__module__}.{type(o).__qualname__}" for o in gc.get_objects())
            items, records = 0, collections.Counter()
            for account in list(dynamodb_backends.values()):
                for backend in list(account.values()):
                    for table in backend.tables.values():
                        for v in table.items.values():
                            items += len(v) if isinstance(v, dict) else 1
                        if table.stream_shard:
                            records.update(type(r).__qualname__ for r in table.stream_shard.items)
        return {"items_in_tables": items, "stream_records": sum(records.values()),
                "stream_records_by_type": dict(records), "frozen": frozen,
                "collected": collected,
                "alive": dict(alive.most_common(40))}

    def counts() -> dict:
        """Cheap enough to ask every few seconds under load (no collection,
        no walk over objects): per table, the items and the stream records
        kept (of them, how many no reader has read yet); per SQS queue, the
        messages held and the receipt handles of deleted ones remembered."""
        from moto.dynamodb.models import dynamodb_backends
        from moto.sqs.models import sqs_backends

        tables, queues = {}, {}
        with _dynamodb_lock:
            for account in list(dynamodb_backends.values()):
                for backend in list(account.values()):
                    for table in backend.tables.values():
                        items = sum(len(v) if isinstance(v, dict) else 1 for v in table.items.values())
                        shard = table.stream_shard
                        kept = len(shard.items) if shard else 0
                        trimmed = getattr(shard, "trimmed", 0)
                        read = max(0, getattr(shard, "read_upto", 0) - trimmed) if shard else 0
                        tables[table.name] = {"items": items, "stream_records": kept,
                                              "stream_unread": max(0, kept - read)}
        for account in list(sqs_backends.values()):
            for backend in list(account.values()):
                for queue in list(backend.queues.values()):
                    queues[queue.name] = {"messages": len(queue._messages),
                                          "deleted_handles": len(queue.deleted_messages)}
        return {"tables": tables, "queues": queues}

    def malloc_stats() -> bytes:
        """What Python's allocator (`sys._debugmallocstats`) and glibc's
        (`malloc_stats`, per arena) hold: both print to the C stderr, read
        back here."""
        import ctypes
        import tempfile

        with tempfile.TemporaryFile() as f, _dynamodb_lock:
            sys.stderr.flush()
            saved = os.dup(2)
            os.dup2(f.fileno(), 2)
            try:
                sys._debugmallocstats()
                try:
                    ctypes.CDLL("libc.so.6").malloc_stats()
                except (OSError, AttributeError):
                    print("no glibc: its arenas are not reported", file=sys.stderr, flush=True)
            finally:
                os.dup2(saved, 2)
                os.close(saved)
            f.seek(0)
            return f.read()

    def wrapper(environ, start_response):
        path = environ.get("PATH_INFO")
        if path == "/_local/memory/malloc":
            return answer(start_response, malloc_stats(), "text/plain")
        if path == "/_local/memory/counts":
            return answer(start_response, json.dumps(counts()).encode(), "application/json")
        if path == "/_local/memory/objects":
            return answer(start_response, json.dumps(objects()).encode(), "application/json")
        if path == "/_local/memory/start":
            tracemalloc.start(6)
            start_response("204 No Content", [])
            return []
        if path != "/_local/memory":
            return app(environ, start_response)
        with _dynamodb_lock:
            snap = tracemalloc.take_snapshot()
        by = environ.get("QUERY_STRING") == "traceback"
        stats = snap.statistics("traceback" if by else "lineno")[:30]
        lines = [f"{s.size / 2**20:8.1f} MB {s.count:9d}  " + (
            "\n      ".join(s.traceback.format()) if by else str(s.traceback[0]))
            for s in stats]
        return answer(start_response, "\n".join(lines).encode(), "text/plain")

    return wrapper


def sent_mail(app):
    def wrapper(environ, start_response):
        if environ.get("PATH_INFO") != "/_local/ses/sent":
            return app(environ, start_response)
        from moto.ses.models import ses_backends

        sent = []
        for account in list(ses_backends.keys()):
            for region in list(ses_backends[account].keys()):
                for m in list(ses_backends[account][region].sent_messages):
                    sent.append({
                        "source": getattr(m, "source", None),
                        "destinations": getattr(m, "destinations", None),
                        "subject": getattr(m, "subject", None),
                        "body": getattr(m, "body", None),
                    })
        body = json.dumps(sent).encode()
        start_response("200 OK", [("Content-Type", "application/json"),
                                  ("Content-Length", str(len(body)))])
        return [body]

    return wrapper


_frozen_after_full_collection = threading.Event()


def keep_full_collections_short() -> None:
    """Keep full garbage collections short. Every thread stops while one runs,
    the one serving DynamoDB under the lock included, and a full collection
    walks every object the tables hold. Measured under `make dev`'s load
    (`scripts/load.py`), with moto's items, stream records and their copies
    churning: a full collection every 10-15 s, taking 100 ms at the start and
    over 400 ms after 4 minutes (600,000 objects), growing with the data:
    the slow rounds of usage records. So after each full collection
    everything that survived it is frozen (`gc.freeze()`: never scanned
    again; freed as usual when its last reference goes), and the next full
    collection scans only what was made since. What freezing gives up:
    garbage *cycles* among frozen objects are never collected; moto's items
    and stream records hold none, and the load script's and the test
    suite's peak RSS say so (docs/benchmarks.md).

    A full collection still taking more than 100 ms is said on stderr.
    `MOTO_GC_FREEZE=0` turns the freezing off (to compare)."""
    import gc
    import time

    freeze = os.environ.get("MOTO_GC_FREEZE", "1") != "0"
    started = [0.0]

    def callback(phase, info):
        if info.get("generation") != 2:
            return
        if phase == "start":
            started[0] = time.perf_counter()
            return
        ms = (time.perf_counter() - started[0]) * 1000
        if ms >= 100:
            print(f"emulator: a full garbage collection took {ms:.0f} ms "
                  f"({len(gc.get_objects())} objects scanned, {gc.get_freeze_count()} frozen)",
                  file=sys.stderr, flush=True)
        if freeze:
            # Not from inside the collector's callback: the next request does it.
            _frozen_after_full_collection.set()

    gc.callbacks.append(callback)


def freeze_after_collections(app):
    import gc

    def wrapper(environ, start_response):
        if _frozen_after_full_collection.is_set():
            _frozen_after_full_collection.clear()
            gc.freeze()
        return app(environ, start_response)

    return wrapper


class QuietRequestHandler(MotoRequestHandler):
    """No access-log line per request (a twentieth of the emulator's time
    under load, and a log file growing by the request); errors still log."""

    def log_request(self, code="-", size="-"):
        pass


def main():
    host, port = sys.argv[1], int(sys.argv[2])
    keep_full_collections_short()
    app = DomainDispatcherApplication(create_backend_app)
    served = freeze_after_collections(sent_mail(locked(app)))
    if os.environ.get("MOTO_MEMORY_REPORT") == "1":
        served = memory_report(served)
    run_simple(host, port, served, threaded=True, request_handler=QuietRequestHandler)


if __name__ == "__main__":
    main()
