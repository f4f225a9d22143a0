"""What an item the service wrote costs the emulator in memory, with item 13
of moto_patch.py and without it, measured in-process.

Reads every item of the service's table from a running emulator (start
`make dev`, run `scripts/load.py` for a minute or two), then, in fresh
processes (alternated), puts those items three times over (keys suffixed)
into moto's DynamoDB backend with the patch, each item decoded from its own
JSON as a request is, and prints the growth of the resident set per item.
No server, no stream: the items alone.

    .local/venv/bin/python scripts/bench_moto_memory.py http://127.0.0.1:PORT [runs]

Results: docs/benchmarks.md ("Items made compact (item 13 of the patch)").
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


def one_run(path: str) -> str:
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
        global_indexes=[], indexes=[], streams=None, billing_mode="PAY_PER_REQUEST",
        sse_specification=None, tags=[], deletion_protection_enabled=False, warm_throughput=None)
    keys = [k["AttributeName"] for k in data["key_schema"]]
    gc.collect()
    before, started, n = rss_mb(), time.perf_counter(), 0
    for copy in range(3):
        for text in encoded:
            item = json.loads(text)  # a decode per item, as a request per item makes
            for k in keys:
                if "S" in item[k]:
                    item[k]["S"] += f"#{copy}"
            backend.put_item("t", item)
            n += 1
    took = time.perf_counter() - started
    gc.collect()
    return json.dumps({"items": n, "bytes_per_item": (rss_mb() - before) * 2**20 / n,
                       "us_per_put": took / n * 1e6})


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--one":
        print(one_run(sys.argv[2]))
        return
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "items.json")
        print(f"{dump(sys.argv[1], path)} items read from {sys.argv[1]}; each put 3 times")
        for _ in range(runs):
            for mode, label in (("without", "item 13 undone"), ("with", "the whole patch")):
                env = {**os.environ, "MOTO_COMPACT_ITEMS": "0" if mode == "without" else "1"}
                out = json.loads(subprocess.run(
                    [sys.executable, __file__, "--one", path],
                    check=True, capture_output=True, text=True, env=env).stdout)
                print(f"  {label}: {out['items']} items, {out['bytes_per_item']:,.0f} bytes of "
                      f"resident memory per item, {out['us_per_put']:,.0f} us per put")


if __name__ == "__main__":
    main()
