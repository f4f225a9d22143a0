//! Creating the service's AWS resources for local runs and tests (in AWS the
//! SAM template owns them): the table, the provisioning queue and its DLQ,
//! and the secrets. Every call is idempotent.

use crate::error::Error;
pub use crate::store::schema::{create_table, delete_table, Stream};
use crate::store::sdk_error;
use rand::RngCore;

/// The sender of local portal e-mail: the emulator's SES sends only from
/// an identity created first, as real SES sends only from a verified one.
pub const PORTAL_SENDER: &str = "no-reply@portal.example.com";

/// Create the SES e-mail identity `address` (already there is fine).
pub async fn create_sender(ses: &aws_sdk_sesv2::Client, address: &str) -> Result<(), Error> {
    use aws_sdk_sesv2::error::ProvideErrorMetadata;
    match ses
        .create_email_identity()
        .email_identity(address)
        .send()
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if e.code() == Some("AlreadyExistsException") => Ok(()),
        Err(e) => Err(sdk_error("SES CreateEmailIdentity", e)),
    }
}

/// Names of everything one deployment (one prefix) uses.
#[derive(Debug, Clone)]
pub struct Names {
    pub table: String,
    pub pepper_secret: String,
    pub operator_token_secret: String,
    pub signing_key_secret: String,
    pub signing_master_secret: String,
    pub secrets_prefix: String,
    pub queue: String,
    pub dlq: String,
    pub webhook_master_secret: String,
    pub webhook_queue: String,
    pub webhook_dlq: String,
    /// The portal's sender address (an SES identity).
    pub portal_sender: String,
}

impl Names {
    pub fn for_prefix(prefix: &str) -> Self {
        Self {
            table: format!("{prefix}-licensing"),
            pepper_secret: format!("{prefix}/pepper"),
            operator_token_secret: format!("{prefix}/operator-token"),
            signing_key_secret: format!("{prefix}/signing-key"),
            signing_master_secret: format!("{prefix}/signing-master"),
            secrets_prefix: format!("{prefix}/tenants"),
            queue: format!("{prefix}-provisioning"),
            dlq: format!("{prefix}-provisioning-dlq"),
            webhook_master_secret: format!("{prefix}/webhook-master"),
            webhook_queue: format!("{prefix}-webhooks"),
            webhook_dlq: format!("{prefix}-webhooks-dlq"),
            portal_sender: PORTAL_SENDER.to_string(),
        }
    }
}

/// The provisioning queue and its dead-letter queue (after `max_receives`
/// receives a message moves there). Returns (queue URL, DLQ URL).
pub async fn create_queues(
    sqs: &aws_sdk_sqs::Client,
    names: &Names,
    max_receives: u32,
) -> Result<(String, String), Error> {
    create_queue_pair(sqs, &names.queue, &names.dlq, max_receives, "30", "345600").await
}

/// The webhook delivery queue and its DLQ: a message is tried
/// [`MAX_ATTEMPTS`] times (its backoff spans more than a day) and kept 4 days.
///
/// [`MAX_ATTEMPTS`]: crate::domain::webhook::MAX_ATTEMPTS
pub async fn create_webhook_queues(
    sqs: &aws_sdk_sqs::Client,
    names: &Names,
) -> Result<(String, String), Error> {
    let max = crate::domain::webhook::MAX_ATTEMPTS;
    create_queue_pair(
        sqs,
        &names.webhook_queue,
        &names.webhook_dlq,
        max,
        "60",
        "345600",
    )
    .await
}

async fn create_queue_pair(
    sqs: &aws_sdk_sqs::Client,
    queue_name: &str,
    dlq_name: &str,
    max_receives: u32,
    visibility_secs: &str,
    retention_secs: &str,
) -> Result<(String, String), Error> {
    use aws_sdk_sqs::types::QueueAttributeName as A;
    let dlq = sqs
        .create_queue()
        .queue_name(dlq_name)
        .attributes(A::MessageRetentionPeriod, "1209600")
        .send()
        .await
        .map_err(|e| sdk_error("CreateQueue", e))?
        .queue_url
        .ok_or_else(|| Error::internal("CreateQueue returned no URL"))?;
    let arn = sqs
        .get_queue_attributes()
        .queue_url(&dlq)
        .attribute_names(A::QueueArn)
        .send()
        .await
        .map_err(|e| sdk_error("GetQueueAttributes", e))?
        .attributes
        .and_then(|mut a| a.remove(&A::QueueArn))
        .ok_or_else(|| Error::internal("DLQ has no ARN"))?;
    let redrive = serde_json::json!({
        "deadLetterTargetArn": arn,
        "maxReceiveCount": max_receives.to_string(),
    })
    .to_string();
    let queue = sqs
        .create_queue()
        .queue_name(queue_name)
        .attributes(A::VisibilityTimeout, visibility_secs)
        .attributes(A::MessageRetentionPeriod, retention_secs)
        .attributes(A::RedrivePolicy, redrive)
        .send()
        .await
        .map_err(|e| sdk_error("CreateQueue", e))?
        .queue_url
        .ok_or_else(|| Error::internal("CreateQueue returned no URL"))?;
    Ok((queue, dlq))
}

fn random_hex(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut b);
    hex::encode(b)
}

/// Create the service secrets if missing; returns the operator token.
pub async fn create_secrets(secrets: &crate::aws::Secrets, names: &Names) -> Result<String, Error> {
    for id in [
        &names.pepper_secret,
        &names.signing_key_secret,
        &names.signing_master_secret,
        &names.webhook_master_secret,
    ] {
        if secrets.get(id).await?.is_none() {
            secrets.put(id, &random_hex(32)).await?;
        }
    }
    match secrets.get(&names.operator_token_secret).await? {
        Some(t) => Ok(t),
        None => {
            let token = format!("op_{}", random_hex(24));
            secrets.put(&names.operator_token_secret, &token).await?;
            Ok(token)
        }
    }
}
