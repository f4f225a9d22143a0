//! AWS clients and the Secrets Manager adapter. Every client honours
//! `AWS_ENDPOINT_URL` (moto, LocalStack or real AWS) through `aws-config`.

use crate::error::Error;
use crate::store::sdk_error;
use aws_sdk_secretsmanager::error::ProvideErrorMetadata;

pub async fn sdk_config() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .load()
        .await
}

/// The AWS clients a function uses, built once at cold start.
#[derive(Clone)]
pub struct Clients {
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub secrets: aws_sdk_secretsmanager::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub ses: aws_sdk_sesv2::Client,
}

/// DynamoDB calls are bounded in time: an attempt that hangs is abandoned
/// after [`DYNAMODB_ATTEMPT_TIMEOUT`] and retried by the SDK (standard retry
/// mode: throttling, 5xx and timeouts, with backoff); once
/// [`DYNAMODB_OPERATION_TIMEOUT`] has passed the request answers 503 with
/// `Retry-After`, well inside the functions' 10 s timeout.
pub const DYNAMODB_ATTEMPT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);
pub const DYNAMODB_OPERATION_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(7);

impl Clients {
    pub fn new(sdk: &aws_config::SdkConfig) -> Self {
        let timeouts = aws_config::timeout::TimeoutConfig::builder()
            .connect_timeout(std::time::Duration::from_secs(2))
            .operation_attempt_timeout(DYNAMODB_ATTEMPT_TIMEOUT)
            .operation_timeout(DYNAMODB_OPERATION_TIMEOUT)
            .build();
        let dynamodb = aws_sdk_dynamodb::config::Builder::from(sdk)
            .timeout_config(timeouts)
            .build();
        Self {
            dynamodb: aws_sdk_dynamodb::Client::from_conf(dynamodb),
            secrets: aws_sdk_secretsmanager::Client::new(sdk),
            sqs: aws_sdk_sqs::Client::new(sdk),
            ses: aws_sdk_sesv2::Client::new(sdk),
        }
    }
}

#[derive(Clone)]
pub struct Secrets {
    client: aws_sdk_secretsmanager::Client,
}

impl Secrets {
    pub fn new(client: aws_sdk_secretsmanager::Client) -> Self {
        Self { client }
    }

    /// The secret's string value; `Ok(None)` when no such secret exists.
    pub async fn get(&self, id: &str) -> Result<Option<String>, Error> {
        match self.client.get_secret_value().secret_id(id).send().await {
            Ok(out) => Ok(out.secret_string),
            Err(e) if e.code() == Some("ResourceNotFoundException") => Ok(None),
            Err(e) => Err(sdk_error("GetSecretValue", e)),
        }
    }

    /// The secret's value, or a clear error naming the missing secret.
    pub async fn require(&self, id: &str) -> Result<String, Error> {
        self.get(id)
            .await?
            .ok_or_else(|| Error::internal(format!("secret {id} does not exist")))
    }

    /// Create the secret, or store a new version of it.
    pub async fn put(&self, id: &str, value: &str) -> Result<(), Error> {
        match self
            .client
            .put_secret_value()
            .secret_id(id)
            .secret_string(value)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some("ResourceNotFoundException") => {
                match self
                    .client
                    .create_secret()
                    .name(id)
                    .secret_string(value)
                    .send()
                    .await
                {
                    Ok(_) => Ok(()),
                    // Created concurrently by someone else: write our version over it.
                    Err(e) if e.code() == Some("ResourceExistsException") => self
                        .client
                        .put_secret_value()
                        .secret_id(id)
                        .secret_string(value)
                        .send()
                        .await
                        .map(|_| ())
                        .map_err(|e| sdk_error("PutSecretValue", e)),
                    Err(e) => Err(sdk_error("CreateSecret", e)),
                }
            }
            Err(e) => Err(sdk_error("PutSecretValue", e)),
        }
    }
}
