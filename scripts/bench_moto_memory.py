"""What an item the service wrote costs the emulator in memory, with item 13
of moto_patch.py and without it, measured in-process.

Reads every item of the service's table from a running emulator (start
`make dev`, run `scripts/load.py` for a minute or two), then, in fresh
processes (alternated), puts those items three times over (keys suffixed)
into moto's DynamoDB backend with the patch, each item decoded from its own
JSON as a request is, and prints the growth of the resident set per item.
No server, no stream: the items alone.

    .local/venv/bin/python scripts/bench_moto_memory.py http://127.0.0.1:PORT [runs]

With `--streams` (after the URL) the table has a stream (new and old
images, nothing trimmed) and each item is put twice, an INSERT and a MODIFY
record, and what is compared is item 14 (stream records kept as JSON)
undone and the whole patch: the growth per stream record, items included.

Results: docs/benchmarks.md ("Items made compact (item 13 of the patch)",
"Stream records kept as JSON (item 14)").
"""
from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def dump(endpoint: str, path: str) -> int:
    import boto3

    db = boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1",
                      aws_access_key_id="local", aws_secret_access_key="local")
    tables = db.list_tables()["TableNames"]
    best: tuple[int, str] = max((db.describe_table(TableName=t)["Table"].get("ItemCount", 0), t) for t in tables)
    described = db.describe_table(TableName=best[1])["Table"]
    items: list[dict] = []
    kwargs: dict = {}
    while True:
        page = db.scan(TableName=best[1], **kwargs)
        items += page["Items"]
        if "LastEvaluatedKey" not in page:
            break
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    with open(path, "w") as f:
        json.dump({"key_schema": described["KeySchema"],
                   "attributes": described["AttributeDefinitions"], "items": items}, f)
    return len(items)


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        return int(f.read().split("VmRSS:")[1].split()[0]) / 1024


def one_run(path: str, streams: bool) -> str:
    if streams:
        # Nothing trimmed: every record made stays, as a poller's backlog does.
        os.environ["MOTO_STREAM_MAX_RECORDS"] = os.environ["MOTO_STREAM_MAX_UNREAD"] = str(10**9)
    sys.path.insert(0, HERE)
    import moto_patch

    moto_patch.apply()  # item 13 off when MOTO_COMPACT_ITEMS=0
    from moto.dynamodb import models

    with open(path) as f:
        data = json.load(f)
    encoded = [json.dumps(i) for i in data["items"]]
    del data["items"]
    backend = models.DynamoDBBackend("us-east-1", "123456789012")
    backend.create_table(
        "t", schema=data["key_schema"], throughput=None, attr=data["attributes"],
        global_indexes=[], indexes=[], billing_mode="PAY_PER_REQUEST",
        streams={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"} if streams else None,
        sse_specification=None, tags=[], deletion_protection_enabled=False, warm_throughput=None)
    keys = [k["AttributeName"] for k in data["key_schema"]]
    gc.collect()
    before, started, n = rss_mb(), time.perf_counter(), 0
    for copy in range(3):
        for text in encoded:
            for _ in range(2 if streams else 1):
                item = json.loads(text)  # a decode per item, as a request per item makes
                for k in keys:
                    if "S" in item[k]:
                        item[k]["S"] += f"#{copy}"
                backend.put_item("t", item)
                n += 1
    took = time.perf_counter() - started
    gc.collect()
    grown = (rss_mb() - before) * 2**20
    if streams:
        records = len(backend.get_table("t").stream_shard.items)
        assert records == n, (records, n)
        return json.dumps({"items": n // 2, "records": records, "bytes_per_record": grown / records,
                           "us_per_put": took / n * 1e6})
    return json.dumps({"items": n, "bytes_per_item": grown / n, "us_per_put": took / n * 1e6})


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--one":
        print(one_run(sys.argv[2], streams=sys.argv[3:] == ["--streams"]))
        return
    args = [a for a in sys.argv[1:] if a != "--streams"]
    streams = len(args) < len(sys.argv) - 1
    if not args:
        sys.exit(__doc__)
    runs = int(args[1]) if len(args) > 1 else 2
    flag, item = ("MOTO_COMPACT_STREAM_RECORDS", "item 14") if streams else ("MOTO_COMPACT_ITEMS", "item 13")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "items.json")
        print(f"{dump(args[0], path)} items read from {args[0]}; each put 3 times"
              + (" x 2 (INSERT, MODIFY) into a table with a stream" if streams else ""))
        for _ in range(runs):
            for mode, label in (("without", f"{item} undone"), ("with", "the whole patch")):
                env = {**os.environ, flag: "0" if mode == "without" else "1"}
                out = json.loads(subprocess.run(
                    [sys.executable, __file__, "--one", path] + (["--streams"] if streams else []),
                    check=True, capture_output=True, text=True, env=env).stdout)
                if streams:
                    print(f"  {label}: {out['records']} records, {out['bytes_per_record']:,.0f} bytes "
                          f"of resident memory per record (its item included), "
                          f"{out['us_per_put']:,.0f} us per put")
                else:
                    print(f"  {label}: {out['items']} items, {out['bytes_per_item']:,.0f} bytes of "
                          f"resident memory per item, {out['us_per_put']:,.0f} us per put")


if __name__ == "__main__":
    main()
