//! Stripe billing meter events, sent from the delivery queue: one
//! form-encoded `POST {STRIPE_API_BASE}/v1/billing/meter_events` per
//! recorded usage event, with the tenant's Stripe API key (read from
//! Secrets Manager through a per-instance cache, never logged). The usage
//! event's id is the `identifier`: a retry is billed once.

use super::outbox::MeterMessage;
use crate::domain::meter_events::{meter_event_form, meter_outcome, MeterOutcome};
use crate::error::Error;
use crate::usecases::stripe::secret::WebhookSecrets;
use std::sync::OnceLock;
use std::time::Duration;

/// One POST's time limit.
const TIMEOUT: Duration = Duration::from_secs(10);

fn client() -> Result<&'static reqwest::Client, Error> {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    if let Some(c) = CLIENT.get() {
        return Ok(c);
    }
    let c = reqwest::Client::builder()
        .timeout(TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(Error::internal)?;
    Ok(CLIENT.get_or_init(|| c))
}

/// Send one meter event now. `Ok(outcome)`: what Stripe's answer means
/// (see [`meter_outcome`]); an error is a failure on our side (the key
/// could not be read), retried like a 5xx.
pub async fn send(
    secrets: &WebhookSecrets,
    base: &str,
    m: &MeterMessage,
) -> Result<MeterOutcome, Error> {
    let Some(key) = secrets.api_key_cached(&m.tenant_id).await? else {
        tracing::warn!(
            tenant = %m.tenant_id,
            usage_event = %m.usage_event_id,
            "no Stripe API key for this tenant; meter event kept for a retry"
        );
        return Ok(MeterOutcome::Retry);
    };
    let form = meter_event_form(&m.stripe_meter, &m.usage_event_id, m.quantity);
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form.iter().map(|(k, v)| (*k, v.as_str())))
        .finish();
    let url = format!("{base}/v1/billing/meter_events");
    let res = client()?
        .post(&url)
        .bearer_auth(&key)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await;
    let (status, excerpt) = match res {
        Ok(r) => {
            let status = r.status().as_u16();
            let text = r.text().await.unwrap_or_default();
            (Some(status), text.chars().take(500).collect::<String>())
        }
        // The error's text names the URL, never the key.
        Err(e) => (None, e.without_url().to_string()),
    };
    let outcome = meter_outcome(status);
    match outcome {
        MeterOutcome::Sent => tracing::info!(
            tenant = %m.tenant_id,
            usage_event = %m.usage_event_id,
            status,
            "meter event sent"
        ),
        MeterOutcome::Retry => tracing::warn!(
            tenant = %m.tenant_id,
            usage_event = %m.usage_event_id,
            status,
            response = %excerpt,
            "meter event failed; retried with backoff"
        ),
        MeterOutcome::Rejected => tracing::error!(
            tenant = %m.tenant_id,
            usage_event = %m.usage_event_id,
            event_name = %m.stripe_meter.event_name,
            customer = %m.stripe_meter.customer_id,
            quantity = m.quantity,
            status,
            response = %excerpt,
            "meter event rejected by Stripe; not retried"
        ),
    }
    Ok(outcome)
}
