//! JSON logs through `tracing`. Every request's lines carry its request id
//! (the `request` span); secrets never reach a log line (API keys, peppers and
//! signing keys have redacting Debug impls and are never logged).

use tracing_subscriber::EnvFilter;

/// Install the JSON subscriber once (cold start). `RUST_LOG` overrides the
/// default level `info`.
pub fn init() {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,aws_config=warn,aws_smithy_runtime=warn"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(true)
        .with_span_list(false)
        .with_target(false)
        .without_time()
        .try_init();
}

/// [`init`]'s JSON subscriber writing to `writer` (tests capture the
/// service's log lines through it to prove a secret never reaches one).
/// `directives` as `RUST_LOG` takes them. False when a subscriber was
/// installed already.
#[cfg(feature = "dev")]
pub fn init_to<W>(writer: W, directives: &str) -> bool
where
    W: for<'a> tracing_subscriber::fmt::MakeWriter<'a> + Send + Sync + 'static,
{
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(EnvFilter::new(directives))
        .with_current_span(true)
        .with_span_list(false)
        .with_target(false)
        .without_time()
        .with_writer(writer)
        .try_init()
        .is_ok()
}
