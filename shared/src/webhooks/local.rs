//! Local stand-ins for the event sources of `webhook-fanout` and `webhook-deliver` (dev
//! feature only): a poller of the table's DynamoDB stream and a long-poller
//! of the delivery queue, each handing batches to the same code Lambda runs.

use super::{dispatch, outbox};
use crate::app::App;
use crate::error::Error;
use crate::store::sdk_error;
use aws_sdk_dynamodbstreams::types::ShardIteratorType;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Records read per `GetRecords`: the `BatchSize` of `WebhookFanout`'s stream
/// event source in `infra/template.yaml` (`scripts/check_infra.py` checks
/// they agree), so the local poller hands the fan-out the batches Lambda would. Without it the emulator answers up to
/// 1,000 records a call, and a call that large, served under the lock that
/// serialises DynamoDB requests, held every other request back for about a
/// quarter of a second while the fan-out had a backlog (docs/benchmarks.md).
/// A full batch is followed by the next read at once (no poll interval), so
/// the smaller batches do not slow the fan-out down.
const STREAM_BATCH_SIZE: i32 = 100;

/// Poll the stream of `app`'s table from its current end. `drained` turns
/// `Some` once every shard has an iterator (changes after that are seen),
/// and then holds the start of the latest round of reads that found every
/// shard empty: every change written before that instant has been fanned
/// out (tests wait on it instead of sleeping).
pub async fn run_stream(
    app: Arc<App>,
    poll: Duration,
    drained: watch::Sender<Option<std::time::Instant>>,
    mut stop: watch::Receiver<bool>,
) -> Result<(), Error> {
    let sdk = crate::aws::sdk_config().await;
    let streams = aws_sdk_dynamodbstreams::Client::new(&sdk);
    let arn = app
        .clients
        .dynamodb
        .describe_table()
        .table_name(&app.config.table_name)
        .send()
        .await
        .map_err(|e| sdk_error("DescribeTable", e))?
        .table
        .and_then(|t| t.latest_stream_arn)
        .ok_or_else(|| Error::internal("the table has no stream (see infra::create_table)"))?;
    let queue = app.webhook_queue()?.clone();
    let mut iters: HashMap<String, String> = HashMap::new();
    let mut first = true;
    let mut last_discovery = std::time::Instant::now() - Duration::from_secs(60);
    loop {
        if *stop.borrow() {
            return Ok(());
        }
        if last_discovery.elapsed() > Duration::from_secs(5) {
            last_discovery = std::time::Instant::now();
            let shards = streams
                .describe_stream()
                .stream_arn(&arn)
                .send()
                .await
                .map_err(|e| sdk_error("DescribeStream", e))?
                .stream_description
                .map(|d| d.shards.unwrap_or_default())
                .unwrap_or_default();
            for shard in shards {
                let Some(id) = shard.shard_id else { continue };
                if iters.contains_key(&id) {
                    continue;
                }
                // Shards open at start: from now on. Later shards: all of them.
                let kind = if first {
                    ShardIteratorType::Latest
                } else {
                    ShardIteratorType::TrimHorizon
                };
                let it = streams
                    .get_shard_iterator()
                    .stream_arn(&arn)
                    .shard_id(&id)
                    .shard_iterator_type(kind)
                    .send()
                    .await
                    .map_err(|e| sdk_error("GetShardIterator", e))?
                    .shard_iterator;
                if let Some(it) = it {
                    iters.insert(id, it);
                }
            }
            if first {
                first = false;
                drained.send_replace(Some(std::time::Instant::now()));
            }
        }
        let mut closed = Vec::new();
        let round = std::time::Instant::now();
        let mut empty = true;
        // A shard that filled its batch has more: read again without waiting,
        // as Lambda's stream poller does while records are waiting.
        let mut more = false;
        for (shard, it) in iters.iter_mut() {
            let out = match streams
                .get_records()
                .shard_iterator(it.as_str())
                .limit(STREAM_BATCH_SIZE)
                .send()
                .await
            {
                Ok(o) => o,
                Err(e) => {
                    let error = sdk_error("GetRecords", e);
                    tracing::warn!(%error, "reading the stream failed");
                    empty = false;
                    continue;
                }
            };
            let records = out.records.unwrap_or_default();
            if !records.is_empty() {
                empty = false;
            }
            let full = records.len() >= STREAM_BATCH_SIZE as usize;
            let changes: Vec<outbox::StreamChange> = records
                .into_iter()
                .filter_map(|r| r.dynamodb)
                .filter_map(|d| {
                    outbox::StreamChange::from_images(
                        d.keys.unwrap_or_default(),
                        d.new_image,
                        d.old_image,
                    )
                })
                .collect();
            if !changes.is_empty() {
                if let Err(error) = outbox::handle_changes(&app.store, &queue, &changes).await {
                    // Keep the iterator: the same records come again.
                    tracing::warn!(%error, "fan-out failed; retrying the batch");
                    continue;
                }
            }
            match out.next_shard_iterator {
                Some(next) => *it = next,
                None => closed.push(shard.clone()),
            }
            // Only a batch handled moves on at once; a failed one waits a poll.
            more |= full;
        }
        for s in closed {
            iters.remove(&s);
        }
        if empty && !first {
            drained.send_replace(Some(round));
        }
        if more {
            continue; // the loop's top checks `stop`
        }
        tokio::select! {
            _ = tokio::time::sleep(poll) => {}
            _ = stop.changed() => return Ok(()),
        }
    }
}

/// Batches of the delivery queue handled at once: Lambda's SQS event source
/// starts with five concurrent pollers (and adds more while messages wait).
/// One poller, handling a batch of 10 at a time, fell behind the fan-out
/// under `scripts/load.py` once the fan-out itself stopped waiting between
/// full batches: 861 deliveries still queued two minutes after the load.
const DELIVERY_POLLERS: usize = 5;

/// Long-poll the delivery queue as Lambda's SQS event source would, with
/// [`DELIVERY_POLLERS`] batches in flight.
pub async fn run_queue(app: Arc<App>, stop: watch::Receiver<bool>) -> Result<(), Error> {
    let url = app.webhook_queue()?.url().to_string();
    let pollers = (0..DELIVERY_POLLERS).map(|_| {
        let sqs = app.clients.sqs.clone();
        let app = app.clone();
        let handler = move |event| {
            let app = app.clone();
            async move { dispatch::handle_batch(&app, event).await }
        };
        crate::sqs::poll_queue(
            sqs,
            url.clone(),
            Duration::from_secs(2),
            30,
            stop.clone(),
            handler,
        )
    });
    futures::future::join_all(pollers).await;
    Ok(())
}
