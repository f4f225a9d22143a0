"""Tests of moto_patch.py through the real wire protocol: `moto_locked.py` is
started on a free loopback port and driven with boto3, as the service's SDK
drives it. Run: .local/venv/bin/python -m unittest scripts/test_moto_patch.py
(`make test` does).
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import unittest
import urllib.request

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

HERE = os.path.dirname(os.path.abspath(__file__))


def _free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Emulator:
    """moto_locked.py in a child process, with the patch's limits set small."""

    def __init__(self, **env: str):
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [sys.executable, os.path.join(HERE, "moto_locked.py"), "127.0.0.1", str(self.port)],
            env={**os.environ, **env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(self.url + "/moto-api/", timeout=1)
                break
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    self.stop()
                    raise RuntimeError("moto_locked.py did not start")
                time.sleep(0.1)

    def client(self, service: str):
        return boto3.client(
            service,
            endpoint_url=self.url,
            region_name="us-east-1",
            aws_access_key_id="test",
            aws_secret_access_key="test",
            config=Config(retries={"max_attempts": 1}),
        )

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


def S(v: str) -> dict:
    return {"S": v}


def N(v: int) -> dict:
    return {"N": str(v)}


class _Emulated(unittest.TestCase):
    """A table with a stream on the patched emulator; no tests of its own."""

    emu: Emulator

    @classmethod
    def setUpClass(cls) -> None:
        cls.emu = Emulator(MOTO_STREAM_MAX_RECORDS="50", MOTO_STREAM_MAX_UNREAD="50", MOTO_PATCH_SELFCHECK="1")
        cls.db = cls.emu.client("dynamodb")
        cls.streams = cls.emu.client("dynamodbstreams")

    @classmethod
    def tearDownClass(cls) -> None:
        cls.emu.stop()

    def setUp(self) -> None:
        self.table = f"t{time.monotonic_ns()}"
        d = self.db.create_table(
            TableName=self.table,
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[
                {"AttributeName": "PK", "AttributeType": "S"},
                {"AttributeName": "SK", "AttributeType": "S"},
            ],
            KeySchema=[
                {"AttributeName": "PK", "KeyType": "HASH"},
                {"AttributeName": "SK", "KeyType": "RANGE"},
            ],
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
        )
        self.stream_arn = d["TableDescription"]["LatestStreamArn"]
        shard = self.streams.describe_stream(StreamArn=self.stream_arn)["StreamDescription"]["Shards"][0]
        self.shard_id = shard["ShardId"]

    def tearDown(self) -> None:
        self.db.delete_table(TableName=self.table)

    # helpers

    def get(self, pk: str, sk: str) -> dict | None:
        return self.db.get_item(TableName=self.table, Key={"PK": S(pk), "SK": S(sk)}, ConsistentRead=True).get("Item")

    def put(self, pk: str, sk: str, **attrs: dict) -> dict:
        return {"Put": {"TableName": self.table, "Item": {"PK": S(pk), "SK": S(sk), **attrs}}}

    def iterator(self, kind: str = "LATEST") -> str:
        return self.streams.get_shard_iterator(
            StreamArn=self.stream_arn, ShardId=self.shard_id, ShardIteratorType=kind
        )["ShardIterator"]

    def records(self, it: str) -> tuple[list[dict], str]:
        r = self.streams.get_records(ShardIterator=it, Limit=1000)
        return r["Records"], r["NextShardIterator"]

    def seat_update(self, seats_used_below: int) -> dict:
        return {
            "Update": {
                "TableName": self.table,
                "Key": {"PK": S("L#1"), "SK": S("L#1")},
                "UpdateExpression": "ADD used :one",
                "ConditionExpression": "used < :max",
                "ExpressionAttributeValues": {":one": N(1), ":max": N(seats_used_below)},
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }
        }


class PatchedTransactions(_Emulated):
    def test_a_transaction_commits_every_write_and_streams_each_once(self) -> None:
        self.db.put_item(TableName=self.table, Item={"PK": S("L#1"), "SK": S("L#1"), "used": N(0)})
        self.db.put_item(TableName=self.table, Item={"PK": S("T"), "SK": S("T"), "status": S("active")})
        it = self.iterator()
        self.db.transact_write_items(TransactItems=[
            self.seat_update(2),
            self.put("L#1", "A#m1", fp=S("m1")),
            {"ConditionCheck": {
                "TableName": self.table, "Key": {"PK": S("T"), "SK": S("T")},
                "ConditionExpression": "attribute_exists(PK)"}},
        ])
        self.assertEqual(self.get("L#1", "L#1")["used"], N(1))
        self.assertEqual(self.get("L#1", "A#m1")["fp"], S("m1"))
        recs, _ = self.records(it)
        self.assertEqual(sorted(r["dynamodb"]["Keys"]["SK"]["S"] for r in recs), ["A#m1", "L#1"])
        by_sk = {r["dynamodb"]["Keys"]["SK"]["S"]: r for r in recs}
        self.assertEqual(by_sk["L#1"]["eventName"], "MODIFY")
        self.assertEqual(by_sk["L#1"]["dynamodb"]["OldImage"]["used"], N(0))
        self.assertEqual(by_sk["L#1"]["dynamodb"]["NewImage"]["used"], N(1))
        self.assertEqual(by_sk["A#m1"]["eventName"], "INSERT")

    def test_a_refused_transaction_writes_nothing_and_streams_nothing(self) -> None:
        self.db.put_item(TableName=self.table, Item={"PK": S("L#1"), "SK": S("L#1"), "used": N(1)})
        it = self.iterator()
        with self.assertRaises(ClientError) as e:
            # The Put comes first: stock moto applied it before the refusal.
            self.db.transact_write_items(TransactItems=[
                self.put("L#1", "A#m2", fp=S("m2")),
                self.seat_update(1),
            ])
        err = e.exception.response
        self.assertEqual(err["Error"]["Code"], "TransactionCanceledException")
        reasons = err["CancellationReasons"]
        self.assertEqual([r["Code"] for r in reasons], ["None", "ConditionalCheckFailed"])
        self.assertEqual(reasons[1]["Item"]["used"], N(1))  # ALL_OLD
        self.assertIsNone(self.get("L#1", "A#m2"))
        self.assertEqual(self.get("L#1", "L#1")["used"], N(1))
        recs, _ = self.records(it)
        self.assertEqual(recs, [])

    def test_a_write_failing_midway_restores_the_items_written_before_it(self) -> None:
        self.db.put_item(TableName=self.table, Item={"PK": S("L#1"), "SK": S("old"), "v": N(1)})
        self.db.put_item(TableName=self.table, Item={"PK": S("L#1"), "SK": S("str"), "n": S("text")})
        it = self.iterator()
        with self.assertRaises(ClientError):
            self.db.transact_write_items(TransactItems=[
                self.put("L#1", "new", v=N(1)),
                self.put("L#1", "old", v=N(2)),
                {"Delete": {"TableName": self.table, "Key": {"PK": S("L#1"), "SK": S("gone?")}}},
                # Passes its (absent) condition, then fails while applying:
                # arithmetic on a string.
                {"Update": {"TableName": self.table, "Key": {"PK": S("L#1"), "SK": S("str")},
                            "UpdateExpression": "SET n = n + :one",
                            "ExpressionAttributeValues": {":one": N(1)}}},
            ])
        self.assertIsNone(self.get("L#1", "new"))
        self.assertEqual(self.get("L#1", "old")["v"], N(1))
        self.assertEqual(self.get("L#1", "str")["n"], S("text"))
        recs, _ = self.records(it)
        self.assertEqual(recs, [])

    def test_conditions_read_what_earlier_transactions_wrote(self) -> None:
        self.db.put_item(TableName=self.table, Item={"PK": S("L#1"), "SK": S("L#1"), "used": N(0)})
        outcomes = []
        for _ in range(4):
            try:
                self.db.transact_write_items(TransactItems=[self.seat_update(3)])
                outcomes.append("ok")
            except ClientError as e:
                outcomes.append(e.response["CancellationReasons"][0]["Code"])
        self.assertEqual(outcomes, ["ok", "ok", "ok", "ConditionalCheckFailed"])
        self.assertEqual(self.get("L#1", "L#1")["used"], N(3))

    def test_one_item_twice_in_a_transaction_is_a_validation_error(self) -> None:
        with self.assertRaises(ClientError) as e:
            self.db.transact_write_items(TransactItems=[
                self.put("L#1", "x", v=N(1)),
                self.put("L#1", "x", v=N(2)),
            ])
        self.assertEqual(e.exception.response["Error"]["Code"], "ValidationException")
        self.assertIsNone(self.get("L#1", "x"))

    def test_a_retried_transaction_with_its_token_commits_once(self) -> None:
        self.db.put_item(TableName=self.table, Item={"PK": S("L#1"), "SK": S("L#1"), "used": N(0)})
        token = f"tok-{time.monotonic_ns()}"
        for _ in range(3):  # the SDK's retries after a lost answer
            self.db.transact_write_items(TransactItems=[self.seat_update(10)], ClientRequestToken=token)
        self.assertEqual(self.get("L#1", "L#1")["used"], N(1))
        with self.assertRaises(ClientError) as e:
            self.db.transact_write_items(TransactItems=[self.seat_update(9)], ClientRequestToken=token)
        self.assertEqual(e.exception.response["Error"]["Code"], "IdempotentParameterMismatchException")
        # A refused transaction's token is not spent: the retry is evaluated again.
        refused = f"tok-{time.monotonic_ns()}"
        with self.assertRaises(ClientError):
            self.db.transact_write_items(TransactItems=[self.seat_update(1)], ClientRequestToken=refused)
        self.db.put_item(TableName=self.table, Item={"PK": S("L#1"), "SK": S("L#1"), "used": N(0)})
        self.db.transact_write_items(TransactItems=[self.seat_update(1)], ClientRequestToken=refused)
        self.assertEqual(self.get("L#1", "L#1")["used"], N(1))

    def test_one_update_expression_serves_many_items_and_values(self) -> None:
        # Parsed once and kept: each use still reads its own names and values.
        expr = "SET #a = if_not_exists(#a, :start) + :d, #b = :b ADD #n :one"
        for i in range(3):
            for key in ("x", "y"):
                self.db.transact_write_items(TransactItems=[{"Update": {
                    "TableName": self.table, "Key": {"PK": S(key), "SK": S("s")},
                    "UpdateExpression": expr,
                    "ExpressionAttributeNames": {"#a": "room" if key == "x" else "other",
                                                 "#b": "b", "#n": "n"},
                    "ExpressionAttributeValues": {":start": N(10), ":d": N(-i), ":b": S(f"{key}{i}"),
                                                  ":one": N(1)}}}])
        x, y = self.get("x", "s"), self.get("y", "s")
        self.assertEqual((x["room"], x["b"], x["n"]), (N(7), S("x2"), N(3)))
        self.assertEqual((y["other"], y["b"], y["n"]), (N(7), S("y2"), N(3)))
        self.assertNotIn("room", y)
        # An expression that does not parse is refused every time.
        for _ in range(2):
            with self.assertRaises(ClientError) as e:
                self.db.update_item(TableName=self.table, Key={"PK": S("x"), "SK": S("s")},
                                    UpdateExpression="SET #a = = :v",
                                    ExpressionAttributeNames={"#a": "a"},
                                    ExpressionAttributeValues={":v": N(1)})
            self.assertEqual(e.exception.response["Error"]["Code"], "ValidationException")

    def update(self, sk: str, expr: str, names: dict | None = None, values: dict | None = None,
               condition: str | None = None) -> None:
        op: dict = {"TableName": self.table, "Key": {"PK": S("u"), "SK": S(sk)}, "UpdateExpression": expr}
        if names:
            op["ExpressionAttributeNames"] = names
        if values:
            op["ExpressionAttributeValues"] = values
        if condition:
            op["ConditionExpression"] = condition
        self.db.transact_write_items(TransactItems=[{"Update": op}])

    def assertRefused(self, code: str, message: str, write) -> None:
        with self.assertRaises(ClientError) as e:
            write()
        self.assertEqual(e.exception.response["Error"]["Code"], code)
        self.assertIn(message, e.exception.response["Error"]["Message"])

    def test_checks_of_an_update_expression_that_passed_once_still_refuse_what_they_must(self) -> None:
        # Passing with one set of names is remembered for those names only.
        expr = "SET #a = :v, #b = :w"
        self.update("k", expr, {"#a": "a", "#b": "b"}, {":v": N(1), ":w": N(2)})
        self.update("k", expr, {"#a": "a", "#b": "b"}, {":v": N(3), ":w": N(4)})
        item = self.get("u", "k")
        self.assertEqual((item["a"], item["b"]), (N(3), N(4)))
        for _ in range(2):
            # The same expression, the same path twice through its names.
            self.assertRefused("ValidationException", "Two document paths overlap",
                               lambda: self.update("k", expr, {"#a": "a", "#b": "a"}, {":v": N(1), ":w": N(2)}))
            # The same expression, naming the table's sort key.
            self.assertRefused("ValidationException", "part of the key",
                               lambda: self.update("k", expr, {"#a": "a", "#b": "SK"}, {":v": N(1), ":w": N(2)}))
        # Two SET clauses: refused on every use, never remembered as passing.
        for _ in range(2):
            self.assertRefused("ValidationException", "The \"SET\" section can only be used once",
                               lambda: self.update("k", "SET a = :v SET b = :v", None, {":v": N(1)}))
        # What the refused updates leave behind: nothing.
        self.assertEqual(self.get("u", "k"), {"PK": S("u"), "SK": S("k"), "a": N(3), "b": N(4)})

    def test_checks_that_read_the_item_or_values_run_on_every_update(self) -> None:
        expr = "SET #c = #c + :d"
        self.update("c", "SET #c = :z", {"#c": "c"}, {":z": N(5)})
        for d in (1, 2):
            self.update("c", expr, {"#c": "c"}, {":d": N(d)})
        self.assertEqual(self.get("u", "c")["c"], N(8))
        # The same expression on an item without the attribute, and with a
        # value of the wrong type: both still refused.
        self.assertRefused("ValidationException", "attribute that does not exist",
                           lambda: self.update("missing", expr, {"#c": "c"}, {":d": N(1)}))
        self.assertRefused("ValidationException", "operand type",
                           lambda: self.update("c", expr, {"#c": "c"}, {":d": S("x")}))
        self.assertEqual(self.get("u", "c")["c"], N(8))
        self.assertIsNone(self.get("u", "missing"))

    def test_a_condition_parsed_once_is_judged_with_each_requests_values(self) -> None:
        cond = "attribute_not_exists(#n) OR #n < :max"
        names = {"#n": "n"}
        # Values the condition does not read (:d, :stamp) differ every time;
        # the one it reads (:max) decides.
        for i in range(3):
            self.update("c", "ADD #n :d SET stamp = :stamp", names,
                        {":d": N(1), ":max": N(3), ":stamp": N(i)}, cond)
        self.assertEqual(self.get("u", "c")["n"], N(3))
        self.assertRefused("TransactionCanceledException", "ConditionalCheckFailed",
                           lambda: self.update("c", "ADD #n :d SET stamp = :stamp", names,
                                               {":d": N(1), ":max": N(3), ":stamp": N(9)}, cond))
        self.update("c", "ADD #n :d SET stamp = :stamp", names, {":d": N(1), ":max": N(4), ":stamp": N(9)}, cond)
        self.assertEqual(self.get("u", "c")["n"], N(4))
        # The same expression with other names is another condition.
        self.update("c", "ADD #n :d SET stamp = :stamp", {"#n": "m"},
                    {":d": N(1), ":max": N(0), ":stamp": N(9)}, cond)
        self.assertEqual(self.get("u", "c")["m"], N(1))
        # A placeholder it reads, missing: refused every time, as stock moto
        # refuses it (a KeyError inside moto, so HTTP 500), and nothing kept.
        for _ in range(2):
            with self.assertRaises(ClientError) as e:
                self.update("c", "ADD #n :d", names, {":d": N(1)}, cond)
            self.assertEqual(e.exception.response["ResponseMetadata"]["HTTPStatusCode"], 500)
        self.assertEqual(self.get("u", "c")["n"], N(4))

    def test_the_stream_keeps_the_newest_records_and_counts_on(self) -> None:
        # MOTO_STREAM_MAX_RECORDS=50 and MOTO_STREAM_MAX_UNREAD=50 for this emulator.
        for i in range(120):
            self.db.transact_write_items(TransactItems=[self.put("P", f"i{i:03}", v=N(i))])
        recs, nxt = self.records(self.iterator("TRIM_HORIZON"))
        self.assertEqual(len(recs), 50)
        self.assertEqual([r["dynamodb"]["Keys"]["SK"]["S"] for r in recs], [f"i{i:03}" for i in range(70, 120)])
        seqs = [int(r["dynamodb"]["SequenceNumber"]) for r in recs]
        self.assertEqual(seqs, list(range(seqs[0], seqs[0] + 50)))
        # The same reader goes on from where it was, past the trim.
        for i in range(120, 130):
            self.db.transact_write_items(TransactItems=[self.put("P", f"i{i:03}", v=N(i))])
        more, _ = self.records(nxt)
        self.assertEqual([r["dynamodb"]["Keys"]["SK"]["S"] for r in more], [f"i{i:03}" for i in range(120, 130)])
        self.assertEqual(int(more[0]["dynamodb"]["SequenceNumber"]), seqs[-1] + 1)
        # A LATEST reader sees only what comes after it.
        latest = self.iterator("LATEST")
        self.db.put_item(TableName=self.table, Item={"PK": S("P"), "SK": S("last")})
        last, _ = self.records(latest)
        self.assertEqual([r["dynamodb"]["Keys"]["SK"]["S"] for r in last], ["last"])


class UnreadRecordsAreKept(unittest.TestCase):
    """A poller that falls behind loses nothing: only records a reader has
    read are trimmed to MOTO_STREAM_MAX_RECORDS."""

    def test_a_reader_behind_the_cap_still_reads_every_record(self) -> None:
        emu = Emulator(MOTO_STREAM_MAX_RECORDS="20", MOTO_STREAM_MAX_UNREAD="1000")
        try:
            db, streams = emu.client("dynamodb"), emu.client("dynamodbstreams")
            arn = db.create_table(
                TableName="t", BillingMode="PAY_PER_REQUEST",
                AttributeDefinitions=[{"AttributeName": "PK", "AttributeType": "S"},
                                      {"AttributeName": "SK", "AttributeType": "S"}],
                KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"},
                           {"AttributeName": "SK", "KeyType": "RANGE"}],
                StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
            )["TableDescription"]["LatestStreamArn"]
            shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
            it = streams.get_shard_iterator(StreamArn=arn, ShardId=shard,
                                            ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
            for i in range(100):
                db.put_item(TableName="t", Item={"PK": S("P"), "SK": S(f"i{i:03}")})
            seen = []
            while len(seen) < 100:
                r = streams.get_records(ShardIterator=it, Limit=30)
                seen += [x["dynamodb"]["Keys"]["SK"]["S"] for x in r["Records"]]
                it = r["NextShardIterator"]
                if not r["Records"]:
                    break
            self.assertEqual(seen, [f"i{i:03}" for i in range(100)])
            # Once read, they are trimmed to the newest 20 at the next write.
            db.put_item(TableName="t", Item={"PK": S("P"), "SK": S("last")})
            fresh = streams.get_shard_iterator(StreamArn=arn, ShardId=shard,
                                               ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
            kept = streams.get_records(ShardIterator=fresh, Limit=1000)["Records"]
            self.assertEqual([x["dynamodb"]["Keys"]["SK"]["S"] for x in kept],
                             [f"i{i:03}" for i in range(81, 100)] + ["last"])
        finally:
            emu.stop()


class QueriesReadTheirPartition(_Emulated):
    """A base-table Query answers from its partition, in order, in pages,
    both ways (GSI queries are exercised by the integration tests' search)."""

    def test_a_query_pages_its_partition_in_order_both_ways(self) -> None:
        for i in range(30):
            self.db.put_item(TableName=self.table, Item={"PK": S("L#1"), "SK": S(f"A#{i:02}"), "v": N(i)})
            self.db.put_item(TableName=self.table, Item={"PK": S(f"L#{i + 2}"), "SK": S("x"), "v": N(i)})
        for forward in (True, False):
            got, start = [], None
            while True:
                kw = {"ExclusiveStartKey": start} if start else {}
                r = self.db.query(
                    TableName=self.table, KeyConditionExpression="PK = :p AND begins_with(SK, :a)",
                    ExpressionAttributeValues={":p": S("L#1"), ":a": S("A#")}, Limit=7,
                    ScanIndexForward=forward, **kw)
                got += [it["SK"]["S"] for it in r["Items"]]
                start = r.get("LastEvaluatedKey")
                if not start:
                    break
            want = [f"A#{i:02}" for i in range(30)]
            self.assertEqual(got, want if forward else want[::-1])
        empty = self.db.query(TableName=self.table, KeyConditionExpression="PK = :p",
                              ExpressionAttributeValues={":p": S("nobody")})
        self.assertEqual(empty["Items"], [])
        # A query of a missing partition created nothing.
        self.assertEqual(self.db.scan(TableName=self.table, Select="COUNT")["Count"], 60)


class NothingKeptAfterItIsGone(unittest.TestCase):
    """Overwritten item versions, trimmed stream records and deleted SQS
    messages are freed: stock moto keeps every model object it ever made in
    `instances_tracked`, which was most of the emulator's growth under load.
    Counted by the emulator's `/_local/memory/objects` report."""

    def test_overwrites_trims_and_deleted_messages_leave_nothing_alive(self) -> None:
        emu = Emulator(MOTO_STREAM_MAX_RECORDS="50", MOTO_STREAM_MAX_UNREAD="50", MOTO_MEMORY_REPORT="1")
        try:
            db, sqs = emu.client("dynamodb"), emu.client("sqs")
            db.create_table(
                TableName="t", BillingMode="PAY_PER_REQUEST",
                AttributeDefinitions=[{"AttributeName": "PK", "AttributeType": "S"},
                                      {"AttributeName": "SK", "AttributeType": "S"}],
                KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"},
                           {"AttributeName": "SK", "KeyType": "RANGE"}],
                StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
            )
            for i in range(400):
                db.put_item(TableName="t", Item={"PK": S("P"), "SK": S(f"k{i % 10}"), "v": N(i)})
                db.transact_write_items(TransactItems=[{"Update": {
                    "TableName": "t", "Key": {"PK": S("P"), "SK": S("counter")},
                    "UpdateExpression": "ADD n :one", "ExpressionAttributeValues": {":one": N(1)}}}])
            q = sqs.create_queue(QueueName="q")["QueueUrl"]
            for i in range(200):
                sqs.send_message(QueueUrl=q, MessageBody=f"m{i}")
                for m in sqs.receive_message(QueueUrl=q, MaxNumberOfMessages=10).get("Messages", []):
                    sqs.delete_message(QueueUrl=q, ReceiptHandle=m["ReceiptHandle"])
            with urllib.request.urlopen(emu.url + "/_local/memory/objects", timeout=30) as r:
                report = json.load(r)
        finally:
            emu.stop()
        alive = report["alive"]
        self.assertEqual(report["items_in_tables"], 11)
        self.assertEqual(report["stream_records"], 50)
        # 11 items in the table (and a few transient); 800 writes were made.
        self.assertLess(alive.get("moto.dynamodb.models.dynamo_type.Item", 0), 40)
        # The records kept are JSON (item 14): no stock record, nested dicts and all.
        self.assertEqual(report["stream_records_by_type"], {"CompactStreamRecord": 50})
        self.assertEqual(alive.get("moto.dynamodb.models.table.StreamRecord", 0), 0)
        self.assertLess(alive.get("moto.sqs.models.Message", 0), 20)


class FullCollectionsStayShort(unittest.TestCase):
    """What survives a full garbage collection is frozen, so the next one
    scans only what was made since (moto_locked.py,
    `keep_full_collections_short`), and what is frozen is still freed when
    it goes."""

    def frozen_after_writes(self, **env: str) -> tuple[int, dict]:
        emu = Emulator(MOTO_MEMORY_REPORT="1", **env)
        try:
            db = emu.client("dynamodb")
            db.create_table(
                TableName="t", BillingMode="PAY_PER_REQUEST",
                AttributeDefinitions=[{"AttributeName": "PK", "AttributeType": "S"}],
                KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"}],
            )
            for i in range(300):
                db.put_item(TableName="t", Item={"PK": S(f"k{i}"), "v": N(i)})
            # The report runs a full collection; the next request freezes.
            urllib.request.urlopen(emu.url + "/_local/memory/objects", timeout=30).read()
            for i in range(300):
                db.put_item(TableName="t", Item={"PK": S(f"k{i}"), "v": N(i + 1)})
            with urllib.request.urlopen(emu.url + "/_local/memory/objects", timeout=30) as r:
                report = json.load(r)
        finally:
            emu.stop()
        return report["frozen"], report

    def test_survivors_of_a_full_collection_are_frozen_and_still_freed(self) -> None:
        frozen, report = self.frozen_after_writes()
        self.assertGreater(frozen, 10_000)
        # 300 items were overwritten after the freeze: the old versions went.
        self.assertEqual(report["items_in_tables"], 300)
        self.assertLess(report["alive"].get("moto.dynamodb.models.dynamo_type.Item", 0), 330)

    def test_freezing_can_be_turned_off(self) -> None:
        frozen, _ = self.frozen_after_writes(MOTO_GC_FREEZE="0")
        self.assertEqual(frozen, 0)


class BackendsFoundWithoutListingTheDirectory(unittest.TestCase):
    """Item 12: moto's module list is read once, and is the stock list."""

    def test_the_list_is_read_once_and_is_moto_s_own(self) -> None:
        import moto.backends
        stock = list(moto.backends.list_of_moto_modules())  # before apply(): the directory
        sys.path.insert(0, HERE)
        import moto_patch
        moto_patch.apply()
        self.assertEqual(list(moto.backends.list_of_moto_modules()), stock)
        self.assertTrue({"dynamodb", "dynamodbstreams", "sqs", "secretsmanager", "ses"} <= set(stock))
        real_listdir, calls = os.listdir, []
        os.listdir = lambda *a: calls.append(a) or real_listdir(*a)  # type: ignore[assignment]
        try:
            for _ in range(3):
                self.assertIn("dynamodb", moto.backends.list_of_moto_modules())
        finally:
            os.listdir = real_listdir  # type: ignore[assignment]
        self.assertEqual(calls, [])

    def test_every_service_the_stack_uses_is_still_routed(self) -> None:
        emu = Emulator()
        try:
            emu.client("dynamodb").list_tables()
            emu.client("sqs").list_queues()
            emu.client("secretsmanager").list_secrets()
            emu.client("ses").list_identities()
            emu.client("dynamodbstreams").list_streams()
        finally:
            emu.stop()


class ItemsBuiltOnce(_Emulated):
    """Item 13: an item's size is checked once, with moto's limit and error,
    and its attribute names are shared with every other item's."""

    def test_the_size_limit_still_refuses_and_still_admits(self) -> None:
        db = self.db
        big = "x" * 390_000
        db.put_item(TableName=self.table, Item={"PK": S("P"), "SK": S("big"), "a": S(big), "n": N(1)})
        got = db.get_item(TableName=self.table, Key={"PK": S("P"), "SK": S("big")})["Item"]
        self.assertEqual(got, {"PK": S("P"), "SK": S("big"), "a": S(big), "n": N(1)})
        for item in (
            {"PK": S("P"), "SK": S("too big"), "a": S("x" * 406_000)},
            # Many attributes, none large: the sum is what counts.
            {"PK": S("P"), "SK": S("too big"), **{f"a{i}": S("y" * 41_000) for i in range(10)}},
        ):
            with self.assertRaises(ClientError) as refused:
                db.put_item(TableName=self.table, Item=item)
            self.assertEqual(refused.exception.response["Error"]["Code"], "ValidationException")
            self.assertIn("Item size has exceeded", refused.exception.response["Error"]["Message"])
        self.assertNotIn("Item", db.get_item(TableName=self.table, Key={"PK": S("P"), "SK": S("too big")}))
        # An update that grows an item past the limit is refused too.
        with self.assertRaises(ClientError) as refused:
            db.update_item(TableName=self.table, Key={"PK": S("P"), "SK": S("big")},
                           UpdateExpression="SET b = :b", ExpressionAttributeValues={":b": S("z" * 20_000)})
        self.assertIn("exceeded the maximum allowed size", refused.exception.response["Error"]["Message"])


class ItemNamesShared(unittest.TestCase):
    """Item 13, in process: items built from separate decodes share their
    attribute names, their values have no `__dict__`, and they stay what
    moto would have built."""

    def test_items_share_their_attribute_names(self) -> None:
        sys.path.insert(0, HERE)
        import moto_patch
        moto_patch.apply()
        import moto.dynamodb.models
        import moto.dynamodb.parsing.ast_nodes
        import moto.dynamodb.parsing.validators
        from moto.dynamodb.models.dynamo_type import DynamoType, Item, LimitedSizeDict

        # One class everywhere, its values in slots.
        for module in (moto.dynamodb.models, moto.dynamodb.parsing.ast_nodes, moto.dynamodb.parsing.validators):
            self.assertIs(module.DynamoType, DynamoType)
        self.assertFalse(hasattr(DynamoType(S("x")), "__dict__"))

        def decoded(i: int) -> dict:  # a new decode per item, as a request makes
            return json.loads(json.dumps({"PK": S(f"p{i}"), "SK": S("s"), "kind": S("license"),
                                          "m": {"M": {"inner": N(i)}}}))

        a, b = (Item(DynamoType(decoded(i)["PK"]), DynamoType(decoded(i)["SK"]), decoded(i)) for i in (1, 2))
        self.assertIsInstance(a.attrs, LimitedSizeDict)
        self.assertEqual(a.to_json()["Attributes"]["m"], {"M": {"inner": N(1)}})
        self.assertEqual(b.attrs["kind"], DynamoType(S("license")))
        for x, y in zip(a.attrs, b.attrs):
            self.assertIs(x, y)
        a.attrs["added" + str(len(a.attrs))] = DynamoType(N(3))  # as an update adds one
        b.attrs["added" + str(len(b.attrs))] = DynamoType(N(4))
        self.assertIs(list(a.attrs)[-1], list(b.attrs)[-1])


class SqsClock(unittest.TestCase):
    """SQS's cheaper clock keeps delays and visibility timeouts."""

    def test_delayed_and_in_flight_messages_come_back_on_time(self) -> None:
        emu = Emulator()
        try:
            sqs = emu.client("sqs")
            q = sqs.create_queue(QueueName="q")["QueueUrl"]
            sqs.send_message(QueueUrl=q, MessageBody="later", DelaySeconds=1)
            self.assertNotIn("Messages", sqs.receive_message(QueueUrl=q))
            time.sleep(1.2)
            got = sqs.receive_message(QueueUrl=q, VisibilityTimeout=1)["Messages"]
            self.assertEqual([m["Body"] for m in got], ["later"])
            self.assertNotIn("Messages", sqs.receive_message(QueueUrl=q))
            time.sleep(1.2)
            again = sqs.receive_message(QueueUrl=q, AttributeNames=["ApproximateReceiveCount"])["Messages"]
            self.assertEqual(again[0]["Attributes"]["ApproximateReceiveCount"], "2")
        finally:
            emu.stop()


class NoWholeTableCopies(unittest.TestCase):
    """In process: a transaction on a table of 2,000 items never deep-copies
    the table (stock moto copied it once per transaction item)."""

    def test_transactions_copy_only_the_items_they_touch(self) -> None:
        sys.path.insert(0, HERE)
        import moto_patch
        from moto import mock_aws
        from moto.dynamodb.models.dynamo_type import Item
        from moto.dynamodb.models.table import Table

        moto_patch.apply()
        copied_tables = []
        copied_items = []
        table_deepcopy = getattr(Table, "__deepcopy__", None)
        item_deepcopy = Item.__deepcopy__

        def count_table(self, memo):
            copied_tables.append(self.name)
            raise AssertionError("a whole table was copied")

        def count_item(self, memo):
            copied_items.append(1)
            return item_deepcopy(self, memo)

        Table.__deepcopy__ = count_table
        Item.__deepcopy__ = count_item
        try:
            with mock_aws():
                db = boto3.client("dynamodb", region_name="us-east-1")
                db.create_table(
                    TableName="big", BillingMode="PAY_PER_REQUEST",
                    AttributeDefinitions=[{"AttributeName": "PK", "AttributeType": "S"},
                                          {"AttributeName": "SK", "AttributeType": "S"}],
                    KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"},
                               {"AttributeName": "SK", "KeyType": "RANGE"}],
                    StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
                )
                for i in range(2000):
                    db.put_item(TableName="big", Item={"PK": S(f"T#{i % 7}"), "SK": S(f"{i}"), "v": N(i)})
                copied_items.clear()
                db.transact_write_items(TransactItems=[
                    {"Put": {"TableName": "big", "Item": {"PK": S("T#1"), "SK": S("new"), "v": N(1)}}},
                    {"Update": {"TableName": "big", "Key": {"PK": S("T#2"), "SK": S("2")},
                                "UpdateExpression": "ADD v :one", "ExpressionAttributeValues": {":one": N(1)}}},
                ])
                self.assertEqual(copied_tables, [])
                # The snapshot of the updated item, and update_item's own copy of it.
                self.assertLessEqual(len(copied_items), 4)
                got = db.get_item(TableName="big", Key={"PK": S("T#2"), "SK": S("2")})["Item"]
                self.assertEqual(got["v"], N(3))
        finally:
            if table_deepcopy is None:
                del Table.__deepcopy__
            else:
                Table.__deepcopy__ = table_deepcopy
            Item.__deepcopy__ = item_deepcopy


if __name__ == "__main__":
    unittest.main()
