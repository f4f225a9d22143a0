//! `dev-server`: every function's handler on loopback at the contract's
//! paths. Reads the same settings the functions read (see `make dev`).

use shared::app::App;
use shared::functions::Function;
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    shared::telemetry::init();
    let port: u16 = match std::env::var("PORT") {
        Ok(p) => p
            .parse()
            .map_err(|_| format!("PORT must be a port number, not {p:?}"))?,
        Err(_) => 3000,
    };
    let mut app = App::from_env(&Function::ALL).await?;
    // `make dev`: each portal sign-in link is also logged, so a developer
    // signs in without a mailbox (the e-mail still goes to SES).
    if let Some(mailer) = app.mailer.as_mut() {
        mailer.log_links = true;
    }
    let app = Arc::new(app);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    tracing::info!(addr = %listener.local_addr()?, "dev server listening");

    // The provisioning queue's consumer, as Lambda's event source mapping would run it.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let queue_url = app
        .config
        .provisioning_queue_url
        .clone()
        .ok_or("PROVISIONING_QUEUE_URL is not set")?;
    let consumer = shared::provisioning::LocalConsumer {
        app: app.clone(),
        queue_url,
        wait: std::time::Duration::from_secs(10),
        retry_after: std::time::Duration::from_secs(5),
        hook: Arc::new(shared::usecases::tenants::NoHook),
    };
    let consumer = tokio::spawn(consumer.run(stop_rx.clone()));

    // The event sources of webhook-fanout and webhook-deliver: the table's stream and the
    // delivery queue. Deliveries are logged (GET .../deliveries).
    let (ready, _) = tokio::sync::watch::channel(None);
    let poll = std::time::Duration::from_millis(500);
    let stream = shared::webhooks::local::run_stream(app.clone(), poll, ready, stop_rx.clone());
    let stream = tokio::spawn(async move {
        if let Err(error) = stream.await {
            tracing::error!(%error, "the stream poller stopped");
        }
    });
    let deliveries = tokio::spawn(shared::webhooks::local::run_queue(app.clone(), stop_rx));

    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    dev_server::serve(listener, app, shutdown).await?;
    let _ = stop_tx.send(true);
    let _ = consumer.await;
    let _ = stream.await;
    let _ = deliveries.await;
    Ok(())
}
