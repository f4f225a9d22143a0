"""What items 10 and 11 of moto_patch.py save, measured in-process.

Runs the transaction a usage record sends for a hard-limited counter (a
conditional take from a shard, `room = if_not_exists(room, opening) - q`, and
the record's put) against moto's DynamoDB backend with the whole patch, and
again with items 10 (update validation) and 11 (condition parsing) undone,
alternating, and prints the time per transaction. No server, no lock, no
HTTP: only the backend's own work, which is what those items change.

    .local/venv/bin/python scripts/bench_moto_patch.py [transactions per run] [runs]

Results: docs/benchmarks.md ("The emulator's cost per transaction").
"""
from __future__ import annotations

import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def one_run(transactions: int, without: bool) -> float:
    sys.path.insert(0, HERE)
    import moto_patch
    from moto.dynamodb import comparisons, models, responses
    from moto.dynamodb.parsing.ast_nodes import DepthFirstTraverser
    from moto.dynamodb.parsing.validators import UpdateExpressionValidator

    stock = (DepthFirstTraverser.traverse_node_recursively, comparisons.create_condition_expression_parser)
    moto_patch.apply()
    if without:
        del UpdateExpressionValidator.__init__  # back to moto's Validator.__init__
        DepthFirstTraverser.traverse_node_recursively = stock[0]
        for module in (comparisons, models, responses):
            module.create_condition_expression_parser = stock[1]

    backend = models.DynamoDBBackend("us-east-1", "123456789012")
    backend.create_table(
        "t",
        schema=[{"AttributeName": "PK", "KeyType": "HASH"}, {"AttributeName": "SK", "KeyType": "RANGE"}],
        throughput=None,
        attr=[{"AttributeName": "PK", "AttributeType": "S"}, {"AttributeName": "SK", "AttributeType": "S"}],
        global_indexes=[], indexes=[],
        streams={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
        billing_mode="PAY_PER_REQUEST", sse_specification=None, tags=[],
        deletion_protection_enabled=False, warm_throughput=None,
    )

    def take(i: int) -> list[dict]:
        return [
            {"Update": {
                "TableName": "t",
                "Key": {"PK": {"S": "T#a#L#1"}, "SK": {"S": f"U#m#2026-12#{i % 8}"}},
                "UpdateExpression": "ADD #used :q SET #room = if_not_exists(#room, :open) - :q, "
                                    "#at = :now, #limit = :L",
                "ConditionExpression": "attribute_not_exists(#room) OR (#room >= :q AND #limit = :L)",
                "ExpressionAttributeNames": {"#used": "used", "#room": "room", "#limit": "limit", "#at": "at"},
                "ExpressionAttributeValues": {":q": {"N": "1"}, ":open": {"N": "1000000"},
                                              ":L": {"N": "1000000"}, ":now": {"N": str(i)}},
            }},
            {"Put": {
                "TableName": "t",
                "Item": {"PK": {"S": "T#a#L#1"}, "SK": {"S": f"E#{i}"}, "q": {"N": "1"}, "at": {"N": str(i)}},
                "ConditionExpression": "attribute_not_exists(PK)",
            }},
        ]

    for i in range(200):  # warm: every shard written, every cache filled
        backend.transact_write_items(take(i))
    started = time.perf_counter()
    for i in range(200, 200 + transactions):
        backend.transact_write_items(take(i))
    return (time.perf_counter() - started) / transactions


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--one":
        print(one_run(int(sys.argv[2]), sys.argv[3] == "without"))
        return
    transactions = int(sys.argv[1]) if len(sys.argv) > 1 else 1500
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    results: dict[str, list[float]] = {"without": [], "with": []}
    for _ in range(runs):
        for mode in ("without", "with"):  # alternated; each in a fresh process
            out = subprocess.run([sys.executable, __file__, "--one", str(transactions), mode],
                                 check=True, capture_output=True, text=True).stdout
            results[mode].append(float(out) * 1e6)
    print(f"{transactions} transactions per run, {runs} runs each, alternated:")
    for mode, label in (("without", "items 10 and 11 undone"), ("with", "the whole patch")):
        times = ", ".join(f"{t:,.0f}" for t in results[mode])
        print(f"  {label}: {times} us per transaction")


if __name__ == "__main__":
    main()
