//! Outbound e-mail through Amazon SES (v2). Locally the emulator's SES
//! accepts the message and keeps it (tests read it back from there).

use crate::error::Error;
use crate::ids::Email;

pub struct Mailer {
    client: aws_sdk_sesv2::Client,
    from: String,
    /// Dev server only: also log each portal sign-in link, so a developer
    /// can sign in without a mailbox. Never set by a Lambda.
    pub log_links: bool,
}

impl Mailer {
    pub fn new(client: aws_sdk_sesv2::Client, from: String) -> Self {
        Self {
            client,
            from,
            log_links: false,
        }
    }

    /// One plain-text message to one recipient.
    pub async fn send(&self, to: &Email, subject: &str, text: &str) -> Result<(), Error> {
        use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message};
        let content = |s: &str| {
            Content::builder()
                .data(s)
                .charset("UTF-8")
                .build()
                .map_err(Error::internal)
        };
        let message = Message::builder()
            .subject(content(subject)?)
            .body(Body::builder().text(content(text)?).build())
            .build();
        self.client
            .send_email()
            .from_email_address(&self.from)
            .destination(Destination::builder().to_addresses(to.as_str()).build())
            .content(EmailContent::builder().simple(message).build())
            .send()
            .await
            .map_err(|e| crate::store::sdk_error("SES SendEmail", e))?;
        Ok(())
    }
}
