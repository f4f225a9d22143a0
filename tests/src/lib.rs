//! Test harness: the real stack, in process. Each [`Env`] gets its own
//! DynamoDB table on the emulator `make test` started (moto), the secrets that
//! run created, an [`App`] built exactly as a function builds it (plus an SDK
//! interceptor that counts DynamoDB round trips), and the dev server's HTTP
//! front on a free loopback port.

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::{
    AfterDeserializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
};
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use serde_json::Value;
use shared::app::App;
use shared::aws::Clients;
use shared::clock::{Clock, ManualClock, SystemClock};
use shared::config::{Config, Setting};
use shared::functions::Function;
use shared::infra::Stream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// DynamoDB operations sent, in order (one entry per HTTP attempt), with
/// the items they read, the writes of rate-limit windows, and the partition
/// key of every item write (one entry per item of every write operation,
/// condition checks of transactions included, whether or not it succeeded:
/// what DynamoDB charges a partition for).
#[derive(Debug, Default)]
pub struct CallLog(Mutex<Vec<String>>, AtomicU64, AtomicU64, Mutex<Vec<String>>);

impl CallLog {
    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
    /// Items read since the last call: a Query's or Scan's `ScannedCount`
    /// (what the key condition read, before any filter), a GetItem's item,
    /// a BatchGetItem's items.
    pub fn take_items_read(&self) -> u64 {
        self.1.swap(0, Ordering::SeqCst)
    }
    /// Writes to rate-limit windows (`…#RATE#…` keys) since the last call.
    pub fn take_rate_writes(&self) -> u64 {
        self.2.swap(0, Ordering::SeqCst)
    }
    /// The partition keys written since the last call.
    pub fn take_writes(&self) -> Vec<String> {
        std::mem::take(&mut *self.3.lock().unwrap())
    }
}

#[derive(Debug)]
struct Counter(Arc<CallLog>);

fn pk_of(
    key: Option<&std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>>,
) -> String {
    key.and_then(|k| k.get("PK"))
        .and_then(|v| v.as_s().ok())
        .cloned()
        .unwrap_or_default()
}

impl Intercept for Counter {
    fn name(&self) -> &'static str {
        "round-trip-counter"
    }
    fn read_before_serialization(
        &self,
        ctx: &aws_smithy_runtime_api::client::interceptors::context::BeforeSerializationInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        use aws_sdk_dynamodb::operation as op;
        let input = ctx.input();
        let mut pks = Vec::new();
        if let Some(t) = input.downcast_ref::<op::transact_write_items::TransactWriteItemsInput>() {
            for i in t.transact_items() {
                if let Some(u) = i.update() {
                    pks.push(pk_of(Some(u.key())));
                } else if let Some(p) = i.put() {
                    pks.push(pk_of(Some(p.item())));
                } else if let Some(d) = i.delete() {
                    pks.push(pk_of(Some(d.key())));
                } else if let Some(c) = i.condition_check() {
                    pks.push(pk_of(Some(c.key())));
                }
            }
        } else if let Some(u) = input.downcast_ref::<op::update_item::UpdateItemInput>() {
            pks.push(pk_of(u.key.as_ref()));
        } else if let Some(p) = input.downcast_ref::<op::put_item::PutItemInput>() {
            pks.push(pk_of(p.item.as_ref()));
        } else if let Some(d) = input.downcast_ref::<op::delete_item::DeleteItemInput>() {
            pks.push(pk_of(d.key.as_ref()));
        } else if let Some(b) = input.downcast_ref::<op::batch_write_item::BatchWriteItemInput>() {
            for reqs in b.request_items.iter().flat_map(|m| m.values()) {
                for r in reqs {
                    if let Some(p) = r.put_request() {
                        pks.push(pk_of(Some(p.item())));
                    } else if let Some(d) = r.delete_request() {
                        pks.push(pk_of(Some(d.key())));
                    }
                }
            }
        }
        if !pks.is_empty() {
            self.0 .3.lock().unwrap().extend(pks);
        }
        Ok(())
    }
    fn read_before_transmit(
        &self,
        ctx: &BeforeTransmitInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let op = cfg
            .load::<Metadata>()
            .map(|m| m.name().to_string())
            .unwrap_or_default();
        let body = ctx.request().body().bytes().unwrap_or_default();
        let rate = body.windows(6).any(|w| w == b"#RATE#");
        if rate && matches!(op.as_str(), "UpdateItem" | "PutItem" | "TransactWriteItems") {
            self.0 .2.fetch_add(1, Ordering::SeqCst);
        }
        self.0 .0.lock().unwrap().push(op);
        Ok(())
    }
    fn read_after_deserialization(
        &self,
        ctx: &AfterDeserializationInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        use aws_sdk_dynamodb::operation as op;
        let Ok(out) = ctx.output_or_error() else {
            return Ok(());
        };
        let read = if let Some(q) = out.downcast_ref::<op::query::QueryOutput>() {
            q.scanned_count.max(0) as u64
        } else if let Some(q) = out.downcast_ref::<op::scan::ScanOutput>() {
            q.scanned_count.max(0) as u64
        } else if let Some(g) = out.downcast_ref::<op::get_item::GetItemOutput>() {
            u64::from(g.item.is_some())
        } else if let Some(b) = out.downcast_ref::<op::batch_get_item::BatchGetItemOutput>() {
            let found = b.responses.iter().flat_map(|r| r.values());
            found.map(|items| items.len() as u64).sum()
        } else {
            0
        };
        self.0 .1.fetch_add(read, Ordering::SeqCst);
        Ok(())
    }
}

/// Every setting but the portal's base URL, which is each Env's own address.
fn all_settings() -> Vec<Setting> {
    let mut v = Vec::new();
    for f in Function::ALL {
        for s in f.settings() {
            if !v.contains(s) && *s != Setting::PortalBaseUrl {
                v.push(*s);
            }
        }
    }
    v
}

pub fn base_config() -> Config {
    Config::from_env_for(&all_settings()).unwrap_or_else(|e| {
        panic!("{e}\nThe integration tests run against the local stack: use `make test`, which starts it and sets these.")
    })
}

static SEQ: AtomicU64 = AtomicU64::new(0);

pub struct Env {
    pub app: Arc<App>,
    /// The provisioning DLQ of this Env's own queue (see [`Env::with_queue`]).
    pub dlq_url: Option<String>,
    stop: Option<tokio::sync::watch::Sender<bool>>,
    pub base: String,
    pub http: reqwest::Client,
    pub calls: Arc<CallLog>,
    pub clock: Option<Arc<ManualClock>>,
    pub config: Config,
    pub clients: Clients,
    /// The stream poller's progress (see [`Env::webhooks_settled`]).
    drained: Option<tokio::sync::watch::Receiver<Option<std::time::Instant>>>,
}

#[derive(Clone)]
pub struct Resp {
    pub status: u16,
    pub json: Value,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
}

impl Resp {
    pub fn data(&self) -> &Value {
        &self.json["data"]
    }
    pub fn code(&self) -> &str {
        self.json["error"]["code"].as_str().unwrap_or("")
    }
    pub fn header(&self, n: &str) -> Option<&str> {
        self.headers.get(n).and_then(|v| v.to_str().ok())
    }
}

impl std::fmt::Debug for Resp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status, self.text)
    }
}

pub struct Tenant {
    pub id: String,
    pub admin: String,
    pub integration: String,
}

impl Env {
    pub async fn start() -> Env {
        Self::build(None, Stream::Off).await
    }

    pub async fn with_clock(at: time::OffsetDateTime) -> Env {
        Self::build(Some(Arc::new(ManualClock::new(at))), Stream::Off).await
    }

    /// An Env with a provisioning queue (and DLQ, 3 receives) of its own and
    /// a local consumer running the pipeline with `hook`, retrying after 1 s.
    pub async fn with_queue(hook: Arc<dyn shared::usecases::tenants::StageHook>) -> Env {
        let mut env = Self::build(None, Stream::Off).await;
        let names = shared::infra::Names::for_prefix(&format!(
            "q{}",
            ulid::Ulid::new().to_string().to_lowercase()
        ));
        let (queue, dlq) = shared::infra::create_queues(&env.clients.sqs, &names, 3)
            .await
            .expect("create queues");
        env.config.provisioning_queue_url = Some(queue.clone());
        let app = Arc::new(
            App::build(
                env.config.clone(),
                env.clients.clone(),
                Arc::new(SystemClock),
            )
            .await
            .expect("build app"),
        );
        env.app = app.clone();
        env.restart_server().await;
        let (tx, rx) = tokio::sync::watch::channel(false);
        let consumer = shared::provisioning::LocalConsumer {
            app,
            queue_url: queue,
            wait: std::time::Duration::from_secs(1),
            retry_after: std::time::Duration::from_secs(1),
            hook,
        };
        tokio::spawn(consumer.run(rx));
        env.stop = Some(tx);
        env.dlq_url = Some(dlq);
        env
    }

    /// An Env with a webhook delivery queue (and DLQ) of its own, and the
    /// local stand-ins of the webhook functions' event sources running: the
    /// table's stream poller (started before this returns) and the queue's
    /// consumer. Retries back off from `WEBHOOK_RETRY_BASE_SECONDS`.
    pub async fn with_webhooks() -> Env {
        Self::with_webhooks_and_stripe(None).await
    }

    /// [`Env::with_webhooks`], with billing meter events posted to
    /// `stripe_api_base` (a local stand-in of Stripe) when given.
    pub async fn with_webhooks_and_stripe(stripe_api_base: Option<String>) -> Env {
        let mut env = Self::webhook_queue_env(Stream::On, stripe_api_base).await;
        let app = env.app.clone();
        let (tx, rx) = tokio::sync::watch::channel(false);
        let (ready_tx, mut ready) = tokio::sync::watch::channel(None);
        let poll = std::time::Duration::from_millis(100);
        let stream = shared::webhooks::local::run_stream(app.clone(), poll, ready_tx, rx.clone());
        tokio::spawn(async move {
            if let Err(e) = stream.await {
                eprintln!("stream poller stopped: {e}");
            }
        });
        tokio::spawn(shared::webhooks::local::run_queue(app, rx));
        ready
            .wait_for(|r| r.is_some())
            .await
            .expect("stream poller ready");
        env.drained = Some(ready);
        env.stop = Some(tx);
        env
    }

    /// An Env with a webhook delivery queue (and DLQ) of its own and nothing
    /// consuming it: for feeding the webhook functions' events by hand.
    pub async fn with_webhook_queue() -> Env {
        Self::webhook_queue_env(Stream::Off, None).await
    }

    async fn webhook_queue_env(stream: Stream, stripe_api_base: Option<String>) -> Env {
        let mut env = Self::build(None, stream).await;
        let names = shared::infra::Names::for_prefix(&format!(
            "w{}",
            ulid::Ulid::new().to_string().to_lowercase()
        ));
        let (queue, dlq) = shared::infra::create_webhook_queues(&env.clients.sqs, &names)
            .await
            .expect("create webhook queues");
        env.config.webhook_queue_url = Some(queue);
        env.config.webhook_allow_loopback_http = Some(true);
        if stripe_api_base.is_some() {
            env.config.stripe_api_base = stripe_api_base;
        }
        let app = Arc::new(
            App::build(
                env.config.clone(),
                env.clients.clone(),
                Arc::new(SystemClock),
            )
            .await
            .expect("build app"),
        );
        env.app = app;
        env.restart_server().await;
        env.dlq_url = Some(dlq);
        env
    }

    /// Another function instance over the same table: same config, its own
    /// (empty) caches.
    pub async fn sibling(&self) -> Arc<App> {
        Arc::new(
            App::build(
                self.config.clone(),
                self.clients.clone(),
                Arc::new(SystemClock),
            )
            .await
            .expect("build app"),
        )
    }

    /// The operator token the Platform API expects.
    pub async fn operator_token(&self) -> String {
        self.app
            .secrets
            .require(self.config.operator_token_secret_id.as_deref().unwrap())
            .await
            .unwrap()
    }

    async fn restart_server(&mut self) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        self.base = format!("http://{}", listener.local_addr().unwrap());
        let server_app = self.app.clone();
        tokio::spawn(async move {
            let _ = dev_server::serve(listener, server_app, std::future::pending()).await;
        });
    }

    /// `stream`: only Envs whose tests read the table's stream get one (the
    /// emulator keeps a stream's records, up to a bound, for every table).
    async fn build(clock: Option<Arc<ManualClock>>, stream: Stream) -> Env {
        Self::build_with(clock, stream, None).await
    }

    /// An Env whose domain proofs ask `dns` (a [`DnsStub`]).
    pub async fn with_dns(dns: &DnsStub) -> Env {
        Self::build_with(None, Stream::Off, Some(dns.addr)).await
    }

    async fn build_with(
        clock: Option<Arc<ManualClock>>,
        stream: Stream,
        dns: Option<std::net::SocketAddr>,
    ) -> Env {
        // `TEST_LOG=1 make itest T=..`: the service's JSON log lines on
        // stderr (with `--nocapture`), e.g. what a 500 was.
        if std::env::var_os("TEST_LOG").is_some() {
            shared::telemetry::init();
        }
        let mut config = base_config();
        if dns.is_some() {
            config.dns_resolver = dns;
        }
        // A table of its own: tests never see each other's items. Deleted
        // when the Env is dropped.
        config.table_name = format!(
            "{}-t{}-{}",
            config.table_name,
            SEQ.fetch_add(1, Ordering::SeqCst),
            ulid::Ulid::new().to_string().to_lowercase()
        );
        let sdk = shared::aws::sdk_config().await;
        let calls = Arc::new(CallLog::default());
        let dynamodb = aws_sdk_dynamodb::Client::from_conf(
            aws_sdk_dynamodb::config::Builder::from(&sdk)
                .interceptor(Counter(calls.clone()))
                .build(),
        );
        let mut clients = Clients::new(&sdk);
        clients.dynamodb = dynamodb;
        shared::infra::create_table(&clients.dynamodb, &config.table_name, stream)
            .await
            .expect("create test table");
        let clk: Arc<dyn Clock> = match &clock {
            Some(c) => c.clone(),
            None => Arc::new(SystemClock),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().unwrap());
        // Sign-in links lead back to this Env's own server.
        config.portal_base_url = Some(base.clone());
        let app = Arc::new(
            App::build(config.clone(), clients.clone(), clk)
                .await
                .expect("build app"),
        );
        let server_app = app.clone();
        tokio::spawn(async move {
            let _ = dev_server::serve(listener, server_app, std::future::pending()).await;
        });
        calls.take();
        calls.take_writes();
        Env {
            app,
            dlq_url: None,
            stop: None,
            base,
            http: reqwest::Client::new(),
            calls,
            clock,
            config,
            clients,
            drained: None,
        }
    }

    /// Wait (at most 60 s) until every change written before this call has
    /// been fanned out from the table's stream and every queued webhook
    /// delivery has been made (or parked in the DLQ): "nothing more is
    /// coming", without a fixed sleep. Only for [`Env::with_webhooks`].
    pub async fn webhooks_settled(&self) {
        let since = std::time::Instant::now();
        let mut drained = self
            .drained
            .clone()
            .expect("webhooks_settled needs an Env::with_webhooks");
        tokio::time::timeout(
            std::time::Duration::from_secs(60),
            drained.wait_for(|d| d.is_some_and(|d| d > since)),
        )
        .await
        .expect("the stream poller read the stream to its end within 60 s")
        .expect("the stream poller is running");
        let url = self
            .config
            .webhook_queue_url
            .clone()
            .expect("a webhook queue");
        self.queue_empty(&url).await;
    }

    /// Wait (at most 60 s) until the SQS queue at `url` holds no message,
    /// visible, in flight or delayed: its consumer has handled everything
    /// sent to it.
    pub async fn queue_empty(&self, url: &str) {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
        use aws_sdk_sqs::types::QueueAttributeName as A;
        loop {
            let attrs = self
                .clients
                .sqs
                .get_queue_attributes()
                .queue_url(url)
                .attribute_names(A::ApproximateNumberOfMessages)
                .attribute_names(A::ApproximateNumberOfMessagesNotVisible)
                .attribute_names(A::ApproximateNumberOfMessagesDelayed)
                .send()
                .await
                .expect("the queue's attributes")
                .attributes
                .unwrap_or_default();
            if attrs.values().all(|v| v == "0") {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "messages still queued at {url} after 60 s: {attrs:?}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// At least `n` messages of this Env's webhook queue, received (not
    /// deleted), waiting at most 10 s for them.
    pub async fn webhook_messages(&self, n: usize) -> Vec<aws_sdk_sqs::types::Message> {
        let url = self
            .config
            .webhook_queue_url
            .clone()
            .expect("an Env with a webhook queue");
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        let mut got = Vec::new();
        while got.len() < n {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{} of {n} messages queued at {url} after 10 s",
                got.len()
            );
            let out = self
                .clients
                .sqs
                .receive_message()
                .queue_url(&url)
                .max_number_of_messages(10)
                .wait_time_seconds(1)
                .send()
                .await
                .expect("ReceiveMessage");
            got.extend(out.messages.unwrap_or_default());
        }
        got
    }

    pub fn clock(&self) -> &ManualClock {
        self.clock
            .as_deref()
            .expect("this Env was started without a manual clock")
    }

    /// A fresh active tenant with an admin and an integration key.
    pub async fn tenant(&self, name: &str) -> Tenant {
        self.tenant_on_plan(name, "growth").await
    }

    pub async fn tenant_on_plan(&self, name: &str, plan: &str) -> Tenant {
        let id = format!(
            "{name}-{}",
            &ulid::Ulid::new().to_string().to_lowercase()[20..]
        );
        let req: shared::usecases::tenants::TenantRequest = serde_json::from_value(serde_json::json!({
            "tenant_id": id, "name": name, "admin_email": format!("ops@{name}.example"), "plan": plan,
        }))
        .unwrap();
        let b = shared::usecases::tenants::bootstrap(
            &self.app.store,
            self.app.pepper().unwrap(),
            req,
            self.app.now(),
        )
        .await
        .unwrap();
        Tenant {
            id,
            admin: b.admin_key,
            integration: b.integration_key,
        }
    }

    pub async fn operator(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<&Value>,
    ) -> Resp {
        let mut req = self
            .http
            .request(method.parse().unwrap(), format!("{}{}", self.base, path))
            .header("authorization", format!("Bearer {token}"));
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .body(b.to_string());
        }
        Self::read(req.send().await.expect("request")).await
    }

    pub async fn send(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        body: Option<&Value>,
    ) -> Resp {
        let mut req = self
            .http
            .request(method.parse().unwrap(), format!("{}{}", self.base, path));
        if let Some(k) = key {
            req = req.header("x-api-key", k);
        }
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .body(b.to_string());
        }
        Self::read(req.send().await.expect("request")).await
    }

    pub async fn send_raw(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Resp {
        let mut req = self
            .http
            .request(method.parse().unwrap(), format!("{}{}", self.base, path))
            .body(body);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        Self::read(req.send().await.expect("request")).await
    }

    async fn read(resp: reqwest::Response) -> Resp {
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap_or_default();
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        Resp {
            status,
            json,
            headers,
            text,
        }
    }

    pub async fn post(&self, path: &str, key: &str, body: Value) -> Resp {
        self.send("POST", path, Some(key), Some(&body)).await
    }
    pub async fn get(&self, path: &str, key: &str) -> Resp {
        self.send("GET", path, Some(key), None).await
    }
    pub async fn patch(&self, path: &str, key: &str, body: Value) -> Resp {
        self.send("PATCH", path, Some(key), Some(&body)).await
    }
    pub async fn delete(&self, path: &str, key: &str) -> Resp {
        self.send("DELETE", path, Some(key), None).await
    }

    // ------------------------------------------------ Integration fixtures
    // The requests most tests make, with the integration key: tests state
    // what differs, not the whole body.

    /// `POST /v1/integration/activations` for `fingerprint` on `key`.
    pub async fn activate(&self, t: &Tenant, key: &str, fingerprint: &str) -> Resp {
        self.activate_with(t, key, fingerprint, serde_json::json!({}))
            .await
    }

    /// [`Env::activate`] with more fields (`name`, `hostname`, `metadata`).
    pub async fn activate_with(
        &self,
        t: &Tenant,
        key: &str,
        fingerprint: &str,
        extra: Value,
    ) -> Resp {
        let mut body = serde_json::json!({ "license_key": key, "fingerprint": fingerprint });
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            b.extend(e.clone());
        }
        self.post("/v1/integration/activations", &t.integration, body)
            .await
    }

    /// `POST /v1/integration/activations/deactivate` for `fingerprint` on `key`.
    pub async fn deactivate(&self, t: &Tenant, key: &str, fingerprint: &str) -> Resp {
        self.post(
            "/v1/integration/activations/deactivate",
            &t.integration,
            serde_json::json!({ "license_key": key, "fingerprint": fingerprint }),
        )
        .await
    }

    /// `POST /v1/integration/licenses/{key}/validate` with `body`.
    pub async fn validate(&self, t: &Tenant, key: &str, body: Value) -> Resp {
        self.post(
            &format!("/v1/integration/licenses/{key}/validate"),
            &t.integration,
            body,
        )
        .await
    }

    /// `POST /v1/integration/usage/record`: `quantity` of `metric` on `key`, now.
    pub async fn record(&self, t: &Tenant, key: &str, metric: &str, quantity: u64) -> Resp {
        self.record_with(t, key, metric, quantity, serde_json::json!({}))
            .await
    }

    /// [`Env::record`] with more fields (`timestamp`, `metadata`).
    pub async fn record_with(
        &self,
        t: &Tenant,
        key: &str,
        metric: &str,
        quantity: u64,
        extra: Value,
    ) -> Resp {
        let mut body =
            serde_json::json!({ "license_key": key, "metric": metric, "quantity": quantity });
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            b.extend(e.clone());
        }
        self.post("/v1/integration/usage/record", &t.integration, body)
            .await
    }

    /// `POST /v1/integration/entitlements/check` of `features` on `key`.
    pub async fn check(&self, t: &Tenant, key: &str, features: &[&str]) -> Resp {
        self.post(
            "/v1/integration/entitlements/check",
            &t.integration,
            serde_json::json!({ "license_key": key, "features": features }),
        )
        .await
    }

    /// A product, a policy with `seats` seats and `entitlements`, and a
    /// license under it. Returns (policy id, license JSON).
    pub async fn license(&self, t: &Tenant, seats: u32, entitlements: Value) -> (String, Value) {
        let product = format!("p{}", SEQ.fetch_add(1, Ordering::SeqCst));
        let r = self
            .post(
                "/v1/manage/products",
                &t.admin,
                serde_json::json!({ "code": product, "name": "App" }),
            )
            .await;
        assert_eq!(r.status, 201, "{r:?}");
        let policy = self.policy(t, &product, seats, entitlements).await;
        let l = self
            .post(
                "/v1/manage/licenses",
                &t.admin,
                serde_json::json!({ "policy": policy, "customer_email": "buyer@example.com" }),
            )
            .await;
        assert_eq!(l.status, 201, "{l:?}");
        (policy, l.data().clone())
    }

    pub async fn policy(
        &self,
        t: &Tenant,
        product: &str,
        seats: u32,
        entitlements: Value,
    ) -> String {
        let p = self
            .post(
                "/v1/manage/policies",
                &t.admin,
                serde_json::json!({ "product": product, "name": "Pro", "max_activations": seats, "entitlements": entitlements, "grace_period_days": 3 }),
            )
            .await;
        assert_eq!(p.status, 201, "{p:?}");
        p.data()["id"].as_str().unwrap().to_string()
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(true);
        }
        // Delete the table before the test ends, so the emulator frees it.
        // A test's runtime is shutting down by the time its Env drops (a task
        // spawned on it would never run), so the delete runs to completion on
        // a thread of its own, with a client of its own.
        let table = std::mem::take(&mut self.config.table_name);
        let done = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime for the table's deletion");
            rt.block_on(async {
                let sdk = shared::aws::sdk_config().await;
                let db = aws_sdk_dynamodb::Client::new(&sdk);
                shared::infra::delete_table(&db, &table).await
            })
        })
        .join();
        match done {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("deleting a test table: {e}"),
            Err(_) => eprintln!("deleting a test table panicked"),
        }
    }
}

// ---------------------------------------------------------------- customer organizations

/// A verified customer organization (a tenant of kind `customer`), made the
/// quick way (through the use cases, skipping the DNS proof).
pub struct Org {
    pub id: String,
    pub name: String,
    pub domain: String,
    pub admin_email: String,
    /// An app key with every scope (`license:checkout`, `license:return`,
    /// `license:read`) and no bindings.
    pub admin_key: String,
    /// The admin's signed-in session on the `/v1/customer` API.
    pub session: OrgSession,
}

/// A member's session on the `/v1/customer` API: the cookie, its CSRF token
/// and the portal's origin (non-GET calls must send both).
#[derive(Clone, Debug)]
pub struct OrgSession {
    /// `customer_session=<customer>.<session id>`.
    pub cookie: String,
    pub csrf: String,
    pub origin: String,
    /// The portal page cookie's value (`portal_session`) of the same session.
    pub portal_cookie: String,
}

impl OrgSession {
    /// The headers a browser-like caller sends with this session.
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        vec![
            ("cookie", self.cookie.clone()),
            ("x-csrf-token", self.csrf.clone()),
            ("origin", self.origin.clone()),
        ]
    }
}

impl Env {
    /// A fresh verified organization `<name>-<suffix>` at
    /// `<name>-<suffix>.example` with its admin `admin@` that domain.
    pub async fn customer_org(&self, name: &str) -> Org {
        let suffix = &ulid::Ulid::new().to_string().to_lowercase()[20..];
        let id = format!("{name}-{suffix}");
        let domain = format!("{id}.example");
        self.customer_org_at(&id, name, &domain).await
    }

    /// A verified organization with this id, name and domain.
    pub async fn customer_org_at(&self, id: &str, name: &str, domain: &str) -> Org {
        use shared::usecases::customers;
        let admin_email = format!("admin@{domain}");
        let reg = shared::domain::Registration {
            customer_id: shared::ids::TenantId::parse(id).unwrap(),
            name: name.to_string(),
            domain: shared::ids::Domain::normalise(domain).unwrap(),
            country: Some("DE".into()),
            tax_id: None,
            region: None,
            admin_email: shared::ids::Email::normalise(&admin_email).unwrap(),
            admin_name: Some("Admin".into()),
        };
        let now = self.app.now();
        let store = &self.app.store;
        let org = customers::create(store, reg, "req_harness", now)
            .await
            .unwrap();
        let outcome = customers::activate(store, &org, "req_harness", now)
            .await
            .unwrap();
        assert_eq!(outcome, shared::store::customers::VerifyOutcome::Verified);
        let ts = store.tenant(&org.tenant_id);
        let session = self.org_session(id, &admin_email).await;
        let actor = shared::domain::Actor {
            actor: format!("member:{admin_email}"),
            request_id: "req_harness".into(),
        };
        let new = customers::keys::NewKey {
            app_name: "harness".into(),
            app_type: shared::domain::AppType::CloudService,
            scopes: shared::domain::CustomerScope::ALL.to_vec(),
            expires_in_days: None,
            bindings: Default::default(),
        };
        let (_, admin_key) =
            customers::keys::create(self.app.pepper().unwrap(), &ts, &actor, new, now)
                .await
                .unwrap();
        Org {
            id: id.to_string(),
            name: name.to_string(),
            domain: domain.to_string(),
            admin_email,
            admin_key,
            session,
        }
    }

    /// A signed-in session of a member `email` of organization `id` (the
    /// member must exist for the API to accept it).
    pub async fn org_session(&self, id: &str, email: &str) -> OrgSession {
        use shared::usecases::customers;
        let t = shared::ids::TenantId::parse(id).unwrap();
        let ts = self.app.store.tenant(&t);
        let email = shared::ids::Email::normalise(email).unwrap();
        let (sid, s) = customers::open_session(&ts, &email, self.app.now())
            .await
            .unwrap();
        OrgSession {
            cookie: format!(
                "{}={}",
                shared::http::CUSTOMER_COOKIE,
                customers::api_cookie_value(&t, &sid)
            ),
            csrf: s.csrf,
            origin: self.base.clone(),
            portal_cookie: sid,
        }
    }

    /// A `/v1/customer` call with a member's session (cookie, CSRF token, origin).
    pub async fn org_send(
        &self,
        method: &str,
        path: &str,
        session: &OrgSession,
        body: Option<&Value>,
    ) -> Resp {
        let mut req = self
            .http
            .request(method.parse().unwrap(), format!("{}{}", self.base, path));
        for (k, v) in session.headers() {
            req = req.header(k, v);
        }
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .body(b.to_string());
        }
        Self::read(req.send().await.expect("request")).await
    }
}

/// A real DNS server on loopback (UDP and TCP; `scripts/dns_stub.py`, dnslib
/// in the project's venv) serving the TXT records a test sets.
pub struct DnsStub {
    pub addr: std::net::SocketAddr,
    zone: std::path::PathBuf,
    records: Mutex<std::collections::BTreeMap<String, Vec<String>>>,
    child: std::process::Child,
}

impl DnsStub {
    pub fn start() -> DnsStub {
        use std::io::BufRead;
        let root = format!("{}/..", env!("CARGO_MANIFEST_DIR"));
        let python = format!("{root}/.local/venv/bin/python");
        let zone = std::env::temp_dir().join(format!("dns-stub-{}.json", ulid::Ulid::new()));
        std::fs::write(&zone, "{}").unwrap();
        // A port free for TCP (and, almost surely, UDP).
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut child = std::process::Command::new(&python)
            .arg(format!("{root}/scripts/dns_stub.py"))
            .arg(port.to_string())
            .arg(&zone)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("{python} scripts/dns_stub.py (make test installs dnslib): {e}")
            });
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready", "the DNS stub did not start");
        DnsStub {
            addr: format!("127.0.0.1:{port}").parse().unwrap(),
            zone,
            records: Mutex::new(Default::default()),
            child,
        }
    }

    /// Serve these TXT values at `name` (none: NXDOMAIN).
    pub fn set_txt(&self, name: &str, values: &[&str]) {
        let mut r = self.records.lock().unwrap();
        r.insert(
            name.trim_end_matches('.').to_lowercase(),
            values.iter().map(|v| v.to_string()).collect(),
        );
        let tmp = self.zone.with_extension("tmp");
        std::fs::write(&tmp, serde_json::to_string(&*r).unwrap()).unwrap();
        std::fs::rename(&tmp, &self.zone).unwrap();
    }
}

impl Drop for DnsStub {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.zone);
    }
}

/// Load a sample event from `events/`, with `{{NAME}}` placeholders filled.
pub fn event(name: &str, vars: &[(&str, &str)]) -> String {
    let path = format!("{}/../events/{name}", env!("CARGO_MANIFEST_DIR"));
    let mut s = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    for (k, v) in vars {
        s = s.replace(&format!("{{{{{k}}}}}"), v);
    }
    s
}

// ---------------------------------------------------------------- portal

/// The plain-text bodies of every e-mail the emulator's SES accepted for
/// `to`, oldest first. `scripts/moto_locked.py` serves moto's sent mail at
/// `/_local/ses/sent` (moto's own `/moto-api/data.json` has it too, with
/// every DynamoDB item: seconds per read once a run has filled the tables).
pub async fn sent_mail(to: &str) -> Vec<String> {
    let endpoint = std::env::var("AWS_ENDPOINT_URL").expect("AWS_ENDPOINT_URL (the emulator)");
    let sent: Value = reqwest::get(format!("{endpoint}/_local/ses/sent"))
        .await
        .expect("the emulator's sent mail (scripts/moto_locked.py)")
        .json()
        .await
        .expect("sent mail is JSON");
    sent.as_array()
        .map(|msgs| {
            msgs.iter()
                .filter(|m| {
                    m["destinations"]["ToAddresses"]
                        .as_array()
                        .is_some_and(|to_| to_.iter().any(|a| a == to))
                })
                .filter_map(|m| m["body"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// The sign-in link in the newest e-mail to `to`.
pub async fn last_link(to: &str) -> Option<String> {
    let mail = sent_mail(to).await;
    let body = mail.last()?;
    body.split_whitespace()
        .find(|w| w.contains("/auth?token="))
        .map(str::to_string)
}

/// A portal visitor without a browser: follows no redirects, keeps its
/// session cookie by hand, posts forms with the page's CSRF token.
pub struct Visitor {
    pub base: String,
    pub tenant: String,
    pub http: reqwest::Client,
    pub cookie: Option<String>,
}

/// A portal answer.
#[derive(Debug)]
pub struct Page {
    pub status: u16,
    pub location: Option<String>,
    pub set_cookie: Option<String>,
    pub headers: reqwest::header::HeaderMap,
    pub html: String,
}

impl Page {
    /// The `data-code` of an error page.
    pub fn code(&self) -> Option<&str> {
        let at = self.html.find("data-code=\"")? + "data-code=\"".len();
        self.html[at..].split('"').next()
    }
    /// The CSRF token of the page's forms.
    pub fn csrf(&self) -> Option<&str> {
        let at = self.html.find("name=\"csrf\" value=\"")? + "name=\"csrf\" value=\"".len();
        self.html[at..].split('"').next()
    }
}

impl Visitor {
    pub fn new(env: &Env, tenant: &str) -> Visitor {
        Visitor {
            base: env.base.clone(),
            tenant: tenant.to_string(),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookie: None,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}/portal/{}{path}", self.base, self.tenant)
    }

    async fn page(&self, rb: reqwest::RequestBuilder) -> Page {
        let rb = match &self.cookie {
            Some(c) => rb.header("cookie", format!("portal_session={c}")),
            None => rb,
        };
        let r = rb.send().await.expect("portal request");
        let h = |n: &str| {
            r.headers()
                .get(n)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let (location, set_cookie) = (h("location"), h("set-cookie"));
        Page {
            status: r.status().as_u16(),
            location,
            set_cookie,
            headers: r.headers().clone(),
            html: r.text().await.unwrap_or_default(),
        }
    }

    pub async fn get(&self, path: &str) -> Page {
        self.page(self.http.get(self.url(path))).await
    }

    /// POST a form from this portal's origin (as a browser on one of its pages would).
    pub async fn post(&self, path: &str, fields: &[(&str, &str)]) -> Page {
        self.post_from(Some(&self.base.clone()), path, fields).await
    }

    pub async fn post_from(
        &self,
        origin: Option<&str>,
        path: &str,
        fields: &[(&str, &str)],
    ) -> Page {
        let mut rb = self.http.post(self.url(path)).form(fields);
        if let Some(o) = origin {
            rb = rb.header("origin", o);
        }
        self.page(rb).await
    }

    /// Ask for a link, read it from SES, open it and press "Sign in".
    pub async fn sign_in(&mut self, email: &str) -> Page {
        let sent = self.post("/login", &[("email", email)]).await;
        assert_eq!(sent.status, 200, "{sent:?}");
        let link = last_link(email).await.expect("a sign-in e-mail");
        let token = link.split("token=").nth(1).unwrap().to_string();
        let done = self.post("/auth", &[("token", &token)]).await;
        if let Some(c) = &done.set_cookie {
            let v = c
                .split(';')
                .next()
                .unwrap()
                .trim_start_matches("portal_session=");
            self.cookie = Some(v.to_string());
        }
        done
    }
}
