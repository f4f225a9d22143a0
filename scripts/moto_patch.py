"""Patches to moto 5.2's DynamoDB (and DynamoDB Streams) backend that keep the
local stack's cost per request independent of how much was written before.

Imported by `moto_locked.py` before the server starts; tested by
`test_moto_patch.py` through the real wire protocol.

1. `TransactWriteItems` without whole-table copies. Stock moto deep-copies
   every table a transaction names (once per transaction *item*), stream
   records included, so each transaction costs O(everything written so far):
   a test run grew the emulator to 15 GB. Here a transaction
     a. validates its shape and checks every condition against the state
        before it (as DynamoDB does); a refusal writes nothing, so it leaves
        no stream record either;
     b. snapshots only the items it touches (and each stream's length), then
        applies its writes; if a write fails (a validation error inside an
        update, say), exactly those items and stream records are put back.
   `moto_locked.py` serves DynamoDB requests one at a time, so nothing else
   can observe the items between (a) and (b).
2. Stream records are bounded: each table keeps at most
   `MOTO_STREAM_MAX_RECORDS` (default 10,000) records a reader has already
   read, and none older than 24 hours (DynamoDB Streams' own retention).
   Records no reader has read yet are kept up to `MOTO_STREAM_MAX_UNREAD`
   (default 200,000): a stream poller that falls behind under load loses
   nothing (a 15-minute load run once lost 894 webhook events when unread
   records were trimmed at 10,000). Sequence numbers keep counting across
   the trim; a reader whose position was trimmed continues from the oldest
   record kept (DynamoDB would answer TrimmedDataAccessException), and the
   emulator says so on stderr.
3. `ClientRequestToken` is honoured, as DynamoDB does for 10 minutes: a
   transaction repeated with the token of one that succeeded answers
   success and writes nothing; the same token with other items is
   `IdempotentParameterMismatchException`. Stock moto ignores the token, so
   an SDK retry after a client-side timeout (the first attempt still queued
   behind the lock, then applied) committed twice: usage counted twice,
   webhooks for answers that said 503.
4. A Query reads only what it asks for: stock moto's `Table.query` builds
   a sorted list of *every* item in the table (`all_items()`) and filters it,
   so each Query cost O(N log N) in the table's size and the local stack
   slowed down as it filled. A base-table Query now reads its partition
   only; an index Query still looks at every item (moto keeps no index),
   but without sorting them all first.
5. Item operations and Streams' GetRecords answer with plain JSON: moto 5.2 serialises every
   answer by walking botocore's service model (a third of the emulator's
   time under load, in a profile). The answers of DynamoDB's item operations
   are already wire-shaped dicts, so they are written with `json.dumps`,
   leaving out what the model would leave out (`None` values). With
   `MOTO_PATCH_SELFCHECK=1` (set by the patch's tests) every such answer is
   made both ways and must be the same JSON.
6. Shard iterators are bounded: stock moto keeps every iterator it ever made
   (a poller makes one per GetRecords); the newest
   `MOTO_MAX_SHARD_ITERATORS` (default 2,000) are kept, as real iterators
   expire after 15 minutes.

7. Nothing is kept after it is gone: moto's `BaseModel.__new__` appends
   every model object it ever makes to a class-wide `instances_tracked`
   list (read only by moto's dashboard, `/moto-api/data.json`): every
   version of every DynamoDB item (each write, each stream image, each
   transaction snapshot), every stream record after it was trimmed, every
   SQS message after it was deleted. Under `make dev`'s load that list, not
   the data, was most of the emulator's growth (measured: 16,612 items
   alive for 6,860 in the tables). Here models are not tracked; the
   dashboard's model listing is empty as a result.

8. SQS reads the clock cheaply: moto's SQS asks every message whether it
   is visible and not delayed on each ReceiveMessage (and on each queue
   attribute read), and each ask built two datetimes to compute "now in
   milliseconds" (18 % of the emulator's samples in a profile under load,
   while the webhook queue had a backlog). Here SQS's `unix_time` and
   `unix_time_millis` read `time.time()` when asked for now.

9. An update expression is parsed once: moto parsed every `UpdateExpression`
   twice per transaction item (the handler's check of placeholders, then the
   update itself), a fifth of `TransactWriteItems`' time in a profile under
   load, although the service sends a few dozen distinct expressions (values
   are placeholders). Parsed trees are kept per expression text (the newest
   4,096). Nothing changes them: the handler only reads them, and the update's
   validator works on a deep copy.

10. An update is validated without re-deriving what cannot change. moto
   validates each update by copying the parsed tree (`deepcopy`) and walking
   it ten times; the walks dispatch on node classes through `isinstance`
   against abstract base classes, and three of them (`ActionCountValidator`,
   `OverlappingPathsValidator`, `UpdateHashRangeKeyValidator`) search the
   whole tree again at every node. Together that was over half of a counter
   take's time in a profile. Here
     a. the walk looks up which handler (if any) a processor has for a node
        class once per (processor class, node class) pair;
     b. the tree is copied by unpickling bytes made once per expression (the
        same objects `deepcopy` would make: these nodes have no custom copy);
     c. the three checks that read only the expression, its attribute names
        and the table's key attributes run until they have passed once for
        that combination, which is remembered with the parsed tree; a check
        that fails is never remembered, so it fails (with moto's own error)
        every time.
   The processors that read values or the item run every time, in moto's
   order.

11. A condition is parsed once per (expression, names, the values it reads):
   moto's handler parses every `ConditionExpression` of a transaction to
   check its placeholders and the backend parses it again to evaluate it (a
   seventh of a transaction's time), although a few dozen distinct
   conditions cover the service. The parsed condition (immutable once built:
   its operators only read the item) and the placeholders it used are kept
   for the newest 4,096 combinations; values the condition does not mention
   (the update's, in a shared `ExpressionAttributeValues`) are not part of
   the key. A parse that fails is not kept.

12. The server finds a request's backend without listing moto's package
   directory: moto's dispatcher asks `list_of_moto_modules()` on every
   request, which reads the directory and stats each of its ~150 entries,
   while it holds the dispatcher's one lock (8 % of the emulator's busy
   samples in a profile of usage bursts). The directory does not change
   while the server runs, so the list is read once.

13. Items are compact. Stock moto builds an item's attributes through
   `LimitedSizeDict.__setitem__`, which sums the size of every attribute
   already set on each insert (O(n²) in the attributes, on every write); here
   the attributes are set and the item's size is checked once at the end,
   with the same limit and error. Each attribute name is interned
   (`sys.intern`): decoding a request makes new strings for the names, so
   every stored item kept its own copy of `PK`, `SK`, `type`, ... And
   `DynamoType`, one object per attribute value, is given `__slots__`
   (`type`, `value`) in place of a per-object `__dict__` (88 bytes to 48): a
   class with the same methods replaces it in every moto module that named
   it, before any is made. The items a load run of the service left took
   4.2 KB of the emulator's resident memory each and now take 2.6 KB, and a
   put costs about half (`scripts/bench_moto_memory.py`).
   `MOTO_COMPACT_ITEMS=0` leaves stock moto's items (to compare).

14. Stream records are kept as the JSON GetRecords answers with: stock
   moto's `StreamRecord` holds each record's old and new images as nested
   dicts (a dict per attribute value), so the records a table keeps (up to
   `MOTO_STREAM_MAX_RECORDS` read ones, and every unread one while a poller
   is behind) cost about three times the item itself (7.2 KB of resident
   memory per record of the service's items; 2 KB as JSON), allocated and
   freed in small pieces as records come and go. Here each record is serialised once,
   when it is written (as item 5 would write it when read), and GetRecords
   joins the records' JSON. `MOTO_COMPACT_STREAM_RECORDS=0` keeps stock
   moto's records (to compare); with `MOTO_PATCH_SELFCHECK=1` every
   GetRecords answer is also made by moto's serialiser from the records as
   stock moto made them, and must be the same JSON.

moto's Lambda event source mappings over streams are not supported by the
patched shard (the project's local pollers read the stream themselves).
"""
from __future__ import annotations

import calendar
import copy
import datetime
import functools
import hashlib
import json
import os
import pickle
import sys
import threading
import time
from collections import OrderedDict
from typing import Any

from moto.dynamodb.exceptions import (
    ConditionalCheckFailed,
    MockValidationException,
    MultipleTransactionsException,
    TooManyTransactionsException,
    TransactionCanceledException,
    TransactWriteSingleOpException,
)
from moto import backends as moto_backends
from moto.core.common_models import BaseModel
from moto.core.responses import ActionResult
from moto.dynamodb.exceptions import DynamodbException
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.responses import DynamoHandler
from moto.dynamodb.models.table import StreamRecord, StreamShard, Table
from moto.dynamodb.models import dynamo_type
from moto.dynamodb.models.dynamo_type import DynamoType, Item, LimitedSizeDict, bytesize
from moto.dynamodb.exceptions import ItemSizeTooLarge
from moto.dynamodb import comparisons, responses as dynamodb_responses
from moto.dynamodb import models as dynamodb_models
from moto.dynamodb.comparisons import ConditionExpressionParser, get_filter_expression
from moto.dynamodb.parsing.ast_nodes import DepthFirstTraverser, Node
from moto.dynamodb.parsing.expressions import UpdateExpressionParser
from moto.dynamodb.parsing.validators import (
    ActionCountValidator,
    OverlappingPathsValidator,
    UpdateExpressionValidator,
    UpdateHashRangeKeyValidator,
)
from moto.dynamodbstreams.models import DynamoDBStreamsBackend, ShardIterator
from moto.dynamodbstreams.responses import DynamoDBStreamsHandler
from moto.sqs import models as sqs_models

STREAM_MAX_RECORDS = int(os.environ.get("MOTO_STREAM_MAX_RECORDS", "10000"))
STREAM_MAX_UNREAD = int(os.environ.get("MOTO_STREAM_MAX_UNREAD", "200000"))
STREAM_RETENTION = datetime.timedelta(hours=24)
COMPACT_STREAM_RECORDS = os.environ.get("MOTO_COMPACT_STREAM_RECORDS", "1") != "0"
MAX_SHARD_ITERATORS = int(os.environ.get("MOTO_MAX_SHARD_ITERATORS", "2000"))

_OPS = ("ConditionCheck", "Put", "Delete", "Update")


def _op_key(backend: DynamoDBBackend, op_type: str, op: dict[str, Any]) -> dict[str, Any]:
    if op_type != "Put":
        return op["Key"]
    table = backend.get_table(op["TableName"])
    attrs = op["Item"]
    if table.hash_key_attr not in attrs or (
        table.range_key_attr is not None and table.range_key_attr not in attrs
    ):
        raise MockValidationException(
            "One or more parameter values were invalid: Missing the key in the item"
        )
    key = {table.hash_key_attr: attrs[table.hash_key_attr]}
    if table.range_key_attr is not None:
        key[table.range_key_attr] = attrs[table.range_key_attr]
    return sys.intern(key) if type(key) is str else key


def transact_write_items(self: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
    if len(transact_items) > 100:
        raise TooManyTransactionsException()

    # (a) Shape: one operation per entry, each item at most once.
    ops: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
    seen: set[tuple[str, str]] = set()
    for entry in transact_items:
        if len(entry) != 1:
            raise TransactWriteSingleOpException
        op_type, op = next(iter(entry.items()))
        if op_type not in _OPS:
            raise MockValidationException(f"Unsupported transaction operation {op_type}")
        key = _op_key(self, op_type, op)
        ident = (str(op["TableName"]), str(dict(sorted(key.items()))))
        if ident in seen:
            raise MultipleTransactionsException()
        seen.add(ident)
        ops.append((op_type, op, key))

    # (a) Conditions, all against the state before the transaction.
    reasons: list[Any] = []
    refused = False
    for op_type, op, key in ops:
        cond = op.get("ConditionExpression")
        if cond is None:
            reasons.append((None, None, None))
            continue
        current = self.get_item(op["TableName"], key)
        check = get_filter_expression(
            cond, op.get("ExpressionAttributeNames"), op.get("ExpressionAttributeValues")
        )
        if check.expr(current):
            reasons.append((None, None, None))
            continue
        refused = True
        old = None
        if op.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD" and current:
            old = current.to_json()["Attributes"]
        reasons.append(("ConditionalCheckFailed", "The conditional request failed", old))
    if refused:
        raise TransactionCanceledException(reasons)

    # (b) Snapshot what the writes touch, then write.
    saved: list[tuple[Any, Any, Any, Any]] = []  # (table, hash, range, item copy or None)
    stream_lengths: dict[str, tuple[StreamShard, int]] = {}
    for op_type, op, key in ops:
        if op_type == "ConditionCheck":
            continue
        table = self.get_table(op["TableName"])
        hash_value, range_value = self.get_keys_value(table, key)
        current = table.get_item(hash_value, range_value)
        saved.append((table, hash_value, range_value, copy.deepcopy(current)))
        shard = table.stream_shard
        if shard is not None and table.name not in stream_lengths:
            stream_lengths[table.name] = (shard, len(shard.items))

    errors: list[Any] = []
    failed = False
    try:
        for op_type, op, key in ops:
            try:
                names = op.get("ExpressionAttributeNames")
                values = op.get("ExpressionAttributeValues")
                if op_type == "Put":
                    self.put_item(
                        op["TableName"], op["Item"],
                        expression_attribute_names=names,
                        expression_attribute_values=values,
                        overwrite=True,
                    )
                elif op_type == "Delete":
                    self.delete_item(op["TableName"], key)
                elif op_type == "Update":
                    self.update_item(
                        op["TableName"], key,
                        update_expression=op["UpdateExpression"],
                        expression_attribute_names=names,
                        expression_attribute_values=values,
                    )
                errors.append((None, None, None))
            except MockValidationException:
                raise
            except Exception as e:  # noqa: BLE001 - reported as the item's reason
                failed = True
                errors.append((type(e).__name__, str(getattr(e, "message", e)), None))
    except BaseException:
        _rollback(saved, stream_lengths)
        raise
    if failed:
        _rollback(saved, stream_lengths)
        raise TransactionCanceledException(errors)


def _rollback(saved: list[tuple[Any, Any, Any, Any]],
              stream_lengths: dict[str, tuple[StreamShard, int]]) -> None:
    for table, hash_value, range_value, item in reversed(saved):
        if range_value is not None:
            bucket = table.items[hash_value]
            if item is None:
                bucket.pop(range_value, None)
            else:
                bucket[range_value] = item
        elif item is None:
            table.items.pop(hash_value, None)
        else:
            table.items[hash_value] = item
    for shard, length in stream_lengths.values():
        excess = len(shard.items) - length
        if excess > 0:
            del shard.items[length:]


def _trimmed(shard: StreamShard) -> int:
    return getattr(shard, "trimmed", 0)


class CompactStreamRecord:
    """A stream record as the JSON GetRecords answers with, made once when
    the write happens (item 14). Stock moto's `StreamRecord` keeps the old
    and new images as nested dicts, one dict per attribute value: about
    7.2 KB of resident memory per record of the service's items, against
    2 KB as JSON (`scripts/bench_moto_memory.py --streams`). With
    `MOTO_PATCH_SELFCHECK=1` the stock record is kept too, to compare."""

    __slots__ = ("json", "seq", "added_at", "stock")

    def __init__(self, record: dict[str, Any], seq: int, added_at: datetime.datetime) -> None:
        self.json = json.dumps(record, separators=(",", ":"), default=_wire_default)
        self.seq = seq
        self.added_at = added_at
        self.stock = record if _SELFCHECK else None


def _sequence(record: Any) -> int:
    if isinstance(record, CompactStreamRecord):
        return record.seq
    return int(record["dynamodb"]["SequenceNumber"])


def shard_add(self: StreamShard, old: Any, new: Any) -> None:
    view = self.table.stream_specification["StreamViewType"]
    if old is None:
        event_name = "INSERT"
    elif new is None:
        event_name = "REMOVE"
    else:
        event_name = "MODIFY"
    seq = self.starting_sequence_number + _trimmed(self) + len(self.items)
    stock = StreamRecord(self.table, view, event_name, old, new, seq)
    added_at = datetime.datetime.now(datetime.timezone.utc)
    if COMPACT_STREAM_RECORDS:
        record: Any = CompactStreamRecord(stock.record, seq, added_at)
    else:
        record = stock
        record.added_at = added_at
    self.items.append(record)
    kept = len(self.items)
    read = max(0, getattr(self, "read_upto", 0) - _trimmed(self))
    drop = min(max(0, kept - STREAM_MAX_RECORDS), read)
    if kept - drop > STREAM_MAX_UNREAD:
        unread = kept - drop - STREAM_MAX_UNREAD
        print(f"moto_patch: dropping {unread} unread stream record(s) of {self.table.name} "
              f"(MOTO_STREAM_MAX_UNREAD={STREAM_MAX_UNREAD})", file=sys.stderr)
        drop += unread
    horizon = record.added_at - STREAM_RETENTION
    while drop < len(self.items) and getattr(self.items[drop], "added_at", horizon) < horizon:
        drop += 1
    if drop:
        del self.items[:drop]
        self.trimmed = _trimmed(self) + drop


def shard_get(self: StreamShard, start: int, quantity: int) -> list[dict[str, Any]]:
    index = start - self.starting_sequence_number - _trimmed(self)
    if index < 0:
        print(
            f"moto_patch: a stream reader asked for trimmed records of {self.table.name}; "
            "continuing from the oldest record kept",
            file=sys.stderr,
        )
        index = 0
    got = self.items[index:index + quantity]
    self.read_upto = max(getattr(self, "read_upto", 0), _trimmed(self) + index + len(got))
    return [r if isinstance(r, CompactStreamRecord) else r.to_json() for r in got]


def iterator_get(self: ShardIterator, limit: int = 1000) -> dict[str, Any]:
    """Stock moto's, reading each record's sequence number from a compact
    record as well."""
    records = self.stream_shard.get(self.sequence_number, limit)
    if records:
        following = ShardIterator(self.streams_backend, self.stream_shard, "AFTER_SEQUENCE_NUMBER",
                                  max(_sequence(r) for r in records))
    else:
        following = ShardIterator(self.streams_backend, self.stream_shard, "AT_SEQUENCE_NUMBER",
                                  self.sequence_number)
    self.streams_backend.shard_iterators[following.arn] = following
    return {"NextShardIterator": following.arn, "Records": records}


_iterator_init = ShardIterator.__init__


def iterator_init(self: ShardIterator, streams_backend: Any, stream_shard: StreamShard,
                  shard_iterator_type: str, sequence_number: int | None = None) -> None:
    _iterator_init(self, streams_backend, stream_shard, shard_iterator_type, sequence_number)
    if shard_iterator_type == "LATEST":
        self.sequence_number += _trimmed(stream_shard)
    elif shard_iterator_type == "TRIM_HORIZON":
        self.sequence_number += _trimmed(stream_shard)


class _BoundedIterators(OrderedDict):
    def __setitem__(self, key: str, value: Any) -> None:
        super().__setitem__(key, value)
        while len(self) > MAX_SHARD_ITERATORS:
            self.popitem(last=False)


_streams_init = DynamoDBStreamsBackend.__init__


def streams_init(self: DynamoDBStreamsBackend, region_name: str, account_id: str) -> None:
    _streams_init(self, region_name, account_id)
    self.shard_iterators = _BoundedIterators()


IDEMPOTENCY_WINDOW_SECONDS = 600
_tokens: OrderedDict[str, tuple[str, float]] = OrderedDict()
_tokens_lock = threading.Lock()


class IdempotentParameterMismatch(DynamodbException):
    def __init__(self) -> None:
        super().__init__(
            "com.amazonaws.dynamodb.v20120810#IdempotentParameterMismatchException",
            message="The request uses the same client token as a previous, but non-identical request.",
        )


_handler_transact_write_items = DynamoHandler.transact_write_items


def handler_transact_write_items(self: DynamoHandler) -> Any:
    token = self.body.get("ClientRequestToken")
    if token is None:
        return _handler_transact_write_items(self)
    digest = hashlib.sha256(
        json.dumps(self.body.get("TransactItems"), sort_keys=True).encode()
    ).hexdigest()
    now = time.monotonic()
    with _tokens_lock:
        while _tokens and next(iter(_tokens.values()))[1] < now - IDEMPOTENCY_WINDOW_SECONDS:
            _tokens.popitem(last=False)
        seen = _tokens.get(token)
    if seen is not None:
        if seen[0] != digest:
            raise IdempotentParameterMismatch()
        # Already committed: success, nothing written again.
        return ActionResult({"ConsumedCapacity": [], "ItemCollectionMetrics": {}})
    result = _handler_transact_write_items(self)
    with _tokens_lock:
        _tokens[token] = (digest, now)
    return result


_table_query = Table.query


def table_query(self: Table, *args: Any, **kwargs: Any) -> Any:
    hash_key = args[0] if args else kwargs.get("hash_key")
    index_name = args[7] if len(args) > 7 else kwargs.get("index_name")
    if index_name is None and hash_key is not None:
        # dict.get: `items` is a defaultdict, and a read must not create a partition.
        part = dict.get(self.items, hash_key)
        if part is None:
            candidates = []
        elif self.range_key_attr is not None:
            candidates = list(part.values())
        else:
            candidates = [part]
    else:
        candidates = []
        for part in self.items.values():
            if self.range_key_attr is not None:
                candidates.extend(part.values())
            else:
                candidates.append(part)
    # `query` calls self.all_items() once; requests are served one at a time.
    self.all_items = lambda: candidates
    try:
        return _table_query(self, *args, **kwargs)
    finally:
        del self.all_items


_FAST_ACTIONS = frozenset({
    "GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query", "Scan",
    "BatchGetItem", "BatchWriteItem", "TransactGetItems", "TransactWriteItems",
    "GetRecords",
})
_SELFCHECK = os.environ.get("MOTO_PATCH_SELFCHECK") == "1"
_serialized = DynamoHandler.serialized


def _without_none(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _without_none(x) for k, x in v.items() if x is not None}
    if isinstance(v, list):
        return [_without_none(x) for x in v]
    return v


def _wire_default(v: Any) -> Any:
    # Streams records carry ApproximateCreationDateTime as a datetime; the
    # wire has epoch seconds.
    if isinstance(v, datetime.datetime):
        # As moto's serializer writes it: whole seconds, milliseconds truncated.
        if v.tzinfo is not None:
            v = v.astimezone(datetime.timezone.utc)
        base = calendar.timegm(v.timetuple())
        return base + (v.microsecond // 1000) / 1000.0 if v.microsecond else base
    raise TypeError(f"{type(v).__name__} is not JSON")


def dynamo_serialized(self: Any, action_result: ActionResult) -> Any:
    result = action_result.result
    if not isinstance(result, dict) or self._get_action() not in _FAST_ACTIONS:
        return _serialized(self, action_result)
    records = result.get("Records")
    if records and isinstance(records[0], CompactStreamRecord):
        # GetRecords: each record's JSON was made when it was written.
        rest = json.dumps(_without_none({k: v for k, v in result.items() if k != "Records"}),
                          separators=(",", ":"))
        body = '{"Records":[' + ",".join(r.json for r in records) + "]" + (
            "," + rest[1:] if rest != "{}" else "}")
        if _SELFCHECK:
            action_result = ActionResult({**result, "Records": [r.stock for r in records]})
    else:
        body = json.dumps(_without_none(result), separators=(",", ":"), default=_wire_default)
    headers = {"Content-Type": "application/x-amz-json-1.0"}
    headers.update(self.response_headers)
    if _SELFCHECK:
        status, _, stock = _serialized(self, action_result)
        if status != 200 or json.loads(stock) != json.loads(body):
            raise AssertionError(f"moto_patch: {self._get_action()} answers differ:\n{stock}\n{body}")
    return 200, headers, body


def _now_or(original: Any, scale: float) -> Any:
    def now(dt: Any = None) -> float:
        return time.time() * scale if dt is None else original(dt)

    return now


def _untracked_new(cls: type, *args: Any, **kwargs: Any) -> Any:
    return object.__new__(cls)


_parse_update_expression = UpdateExpressionParser.make


@functools.lru_cache(maxsize=4096)
def _parsed_update_expression(expression: str) -> Any:
    # An expression that does not parse raises, and nothing is kept.
    tree = _parse_update_expression(expression)
    try:
        pickled: bytes | None = pickle.dumps(tree, pickle.HIGHEST_PROTOCOL)
    except Exception:  # noqa: BLE001 - a tree that does not pickle is deep-copied
        pickled = None
    # Set after pickling, so that copies carry neither attribute.
    tree._moto_patch_pickled = pickled
    tree._moto_patch_passed = set()
    return tree


def _fresh_copy(tree: Any) -> Any:
    pickled = getattr(tree, "_moto_patch_pickled", None)
    return copy.deepcopy(tree) if pickled is None else pickle.loads(pickled)


# Processors whose verdict depends only on the expression, its attribute
# names and the table's key attributes; each maps a validator to the key
# under which its passing is remembered.
def _names_key(names: Any) -> str:
    return json.dumps(names, sort_keys=True)


_EXPRESSION_ONLY_CHECKS: dict[type, Any] = {
    ActionCountValidator: lambda v: ("counts",),
    OverlappingPathsValidator: lambda v: ("overlaps", _names_key(v.expression_attribute_names)),
    UpdateHashRangeKeyValidator: lambda v: (
        "keys", _names_key(v.expression_attribute_names), tuple(v.table.table_key_attrs)),
}


class _RememberPassing:
    """Runs one expression-only check; remembers it passed (only if it did)."""

    def __init__(self, processor: Any, passed: set[Any], key: Any):
        self.processor, self.passed, self.key = processor, passed, key

    def traverse(self, node: Any) -> Any:
        node = self.processor.traverse(node)
        self.passed.add(self.key)
        return node


def validator_init(self: Any, expression: Any, expression_attribute_names: Any,
                   expression_attribute_values: Any, item: Any, table: Any) -> None:
    self.expression_attribute_names = expression_attribute_names
    self.expression_attribute_values = expression_attribute_values
    self.item = item
    self.table = table
    self.processors = self.get_ast_processors()
    passed = getattr(expression, "_moto_patch_passed", None)
    if passed is not None:
        kept = []
        for processor in self.processors:
            key_of = _EXPRESSION_ONLY_CHECKS.get(type(processor))
            if key_of is None:
                kept.append(processor)
                continue
            key = key_of(self)
            if key not in passed:
                kept.append(_RememberPassing(processor, passed, key))
        self.processors = kept
    self.node_to_validate = _fresh_copy(expression)


# (processor class, node class) -> the processing-map key that handles it,
# None when the processor leaves that node alone, _NOT_A_NODE for leaves
# (strings, values) that the walk passes by.
_NOT_A_NODE = object()
_handlers: dict[tuple[type, type], Any] = {}


def _handler_key(processor: Any, node_type: type) -> Any:
    pair = (type(processor), node_type)
    try:
        return _handlers[pair]
    except KeyError:
        pass
    if not issubclass(node_type, Node):
        found: Any = _NOT_A_NODE
    else:
        # The first key in the map's order that the node is an instance of,
        # as DepthFirstTraverser.process picks it.
        found = next((k for k in processor._processing_map() if issubclass(node_type, k)), None)
    _handlers[pair] = found
    return found


def traverse_node_recursively(self: Any, node: Any, child_id: int = -1) -> Any:
    key = _handler_key(self, type(node))
    if key is _NOT_A_NODE:
        return node
    parent_node = node.parent
    children = node.children
    if children is not None:
        for i, child_node in enumerate(children):
            self.pre_processing_of_child(node, i)
            self.traverse_node_recursively(child_node, i)
    if key is not None:
        node = self._processing_map()[key](node)
        node.parent = parent_node
        if parent_node:
            parent_node.children[child_id] = node
    return node


CONDITION_CACHE_SIZE = 4096
# (expression, names, the values it reads) -> (condition, names found, values found)
_conditions: OrderedDict[tuple[str, str, str], tuple[Any, tuple[str, ...], tuple[str, ...]]] = OrderedDict()
# (expression, names) -> the value placeholders it reads (lexing does not
# depend on the values; a value is only looked up by its placeholder)
_placeholders: OrderedDict[tuple[str, str], tuple[str, ...]] = OrderedDict()


def _remember(cache: OrderedDict[Any, Any], key: Any, value: Any) -> None:
    cache[key] = value
    if len(cache) > CONDITION_CACHE_SIZE:
        cache.popitem(last=False)


class RememberingConditionParser(ConditionExpressionParser):
    def parse(self) -> Any:
        if not self.condition_expression:
            return super().parse()
        values = self.expression_attribute_values or {}
        shape = (self.condition_expression, _names_key(self.expression_attribute_names))
        used = _placeholders.get(shape)
        hit = None
        if used is not None and all(p in values for p in used):
            key = (*shape, json.dumps({p: values[p] for p in used}, sort_keys=True))
            hit = _conditions.get(key)
        if hit is None:
            # Parsed from a private copy of the values: the kept condition
            # shares nothing with this request's body. A condition that does
            # not parse raises here, and nothing is kept.
            if self.expression_attribute_values is not None:
                self.expression_attribute_values = json.loads(json.dumps(values))
            op = super().parse()
            used = tuple(dict.fromkeys(self.expr_attr_values_found))
            hit = (op, tuple(self.expr_attr_names_found), tuple(self.expr_attr_values_found))
            _remember(_placeholders, shape, used)
            _remember(_conditions, (*shape, json.dumps({p: values[p] for p in used}, sort_keys=True)), hit)
            return op
        _conditions.move_to_end(key)
        op, names_found, values_found = hit
        self.expr_attr_names_found.extend(names_found)
        self.expr_attr_values_found.extend(values_found)
        return op


def create_condition_expression_parser(expr: Any, names: Any, values: Any) -> Any:
    return RememberingConditionParser(expr, names, values)


_list_of_moto_modules = moto_backends.list_of_moto_modules
MOTO_MODULES: tuple[str, ...] = ()


# moto's own limit (`LimitedSizeDict`): DynamoDB's is 400 KB, and items of
# 409-410 KB were measured to pass.
ITEM_SIZE_LIMIT = 405000


def _name(key: Any) -> Any:
    return sys.intern(key) if type(key) is str else key


def _slotted_dynamo_type() -> None:
    from moto.dynamodb.models import dynamo_type

    stock = dynamo_type.DynamoType
    if "__slots__" in stock.__dict__:
        return
    namespace = {k: v for k, v in stock.__dict__.items() if k not in ("__dict__", "__weakref__")}
    namespace["__slots__"] = ("type", "value")
    slotted = type(stock.__name__, stock.__bases__, namespace)
    slotted.__qualname__, slotted.__module__ = stock.__qualname__, stock.__module__
    for name, module in list(sys.modules.items()):
        if (name == "moto" or name.startswith("moto.") or name == __name__) \
                and getattr(module, "DynamoType", None) is stock:
            setattr(module, "DynamoType", slotted)


def item_init(self: Item, hash_key: DynamoType, range_key: DynamoType | None,
              attrs: dict[str, Any]) -> None:
    self.hash_key = hash_key
    self.range_key = range_key
    built = LimitedSizeDict()
    for key, value in attrs.items():
        dict.__setitem__(built, _name(key), dynamo_type.DynamoType(value))
    if sum(bytesize(k) + v.size() for k, v in built.items()) > ITEM_SIZE_LIMIT:
        raise ItemSizeTooLarge
    self.attrs = built


_limited_setitem = LimitedSizeDict.__setitem__


def limited_setitem(self: LimitedSizeDict, key: str, value: Any) -> None:
    _limited_setitem(self, _name(key), value)


def list_of_moto_modules() -> tuple[str, ...]:
    return MOTO_MODULES


def apply() -> None:
    global MOTO_MODULES
    MOTO_MODULES = tuple(_list_of_moto_modules())
    moto_backends.list_of_moto_modules = list_of_moto_modules
    UpdateExpressionValidator.__init__ = validator_init  # type: ignore[method-assign]
    DepthFirstTraverser.traverse_node_recursively = traverse_node_recursively  # type: ignore[method-assign]
    for module in (comparisons, dynamodb_responses, dynamodb_models):
        module.create_condition_expression_parser = create_condition_expression_parser  # type: ignore[attr-defined]
    UpdateExpressionParser.make = classmethod(  # type: ignore[method-assign,assignment]
        lambda cls, expression_str: _parsed_update_expression(expression_str))
    BaseModel.__new__ = staticmethod(_untracked_new)  # type: ignore[method-assign]
    if os.environ.get("MOTO_COMPACT_ITEMS", "1") != "0":
        _slotted_dynamo_type()
        Item.__init__ = item_init  # type: ignore[method-assign]
        LimitedSizeDict.__setitem__ = limited_setitem  # type: ignore[method-assign]
    sqs_models.unix_time = _now_or(sqs_models.unix_time, 1.0)
    sqs_models.unix_time_millis = _now_or(sqs_models.unix_time_millis, 1000.0)
    DynamoHandler.serialized = dynamo_serialized
    DynamoDBStreamsHandler.serialized = dynamo_serialized
    Table.query = table_query
    DynamoHandler.transact_write_items = handler_transact_write_items
    DynamoDBBackend.transact_write_items = transact_write_items
    StreamShard.add = shard_add
    StreamShard.get = shard_get
    ShardIterator.__init__ = iterator_init
    ShardIterator.get = iterator_get
    DynamoDBStreamsBackend.__init__ = streams_init
