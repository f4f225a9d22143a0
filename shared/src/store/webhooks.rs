//! Webhook endpoints (a bounded set per tenant) and their delivery logs.

use super::attrs as a;
use super::write::{PutIf, Txn, TxnError, Write};
use super::{keys, Page, TenantStore};
use crate::clock::rfc3339;
use crate::crypto::Signer;
use crate::domain::webhook::{Delivery, WebhookEndpoint};
use crate::domain::AuditEvent;
use crate::error::Error;
use crate::ids::{DeliveryId, WebhookEndpointId};
use time::OffsetDateTime;

/// At most this many endpoints per tenant.
pub const MAX_ENDPOINTS: u32 = 16;
/// Delivery log entries are kept this long (DynamoDB TTL).
const DELIVERY_RETENTION_DAYS: i64 = 30;

mod item {
    pub const COUNTER: &str = "endpoint counter";
    pub const ENDPOINT: &str = "endpoint";
    pub const AUDIT: &str = "audit";
}

pub use crate::domain::webhook::EndpointPatch;

impl TenantStore {
    /// A new endpoint, under the per-tenant bound, with its audit event.
    pub async fn create_webhook_endpoint(
        &self,
        ep: &WebhookEndpoint,
        audit: &AuditEvent,
    ) -> Result<(), Error> {
        let t = self.tenant_id();
        let mut counter = Write::to(keys::webhook_counter(t));
        counter
            .add(a::ENDPOINTS, 1)
            .if_absent_or_below(a::ENDPOINTS, MAX_ENDPOINTS);
        let mut txn = Txn::new();
        txn.update(item::COUNTER, &counter)?;
        txn.put(
            item::ENDPOINT,
            &keys::webhook_endpoint(t, &ep.id),
            ep,
            PutIf::New,
        )?;
        self.push_audit(&mut txn, item::AUDIT, audit)?;
        match txn.run(self.db(), self.table()).await {
            Ok(()) => Ok(()),
            Err(TxnError::Cancelled(c)) if c.failed(item::COUNTER) => {
                Err(Error::WebhookEndpointLimit { max: MAX_ENDPOINTS })
            }
            Err(e) => Err(e.or_else(|c| {
                Error::internal(format!("endpoint create refused: {}", c.describe()))
            })),
        }
    }

    pub async fn get_webhook_endpoint(
        &self,
        id: &WebhookEndpointId,
    ) -> Result<Option<WebhookEndpoint>, Error> {
        self.get_as(&keys::webhook_endpoint(self.tenant_id(), id))
            .await
    }

    /// Every endpoint of the tenant (at most [`MAX_ENDPOINTS`]), oldest first.
    pub async fn list_webhook_endpoints(&self) -> Result<Vec<WebhookEndpoint>, Error> {
        let pk = keys::webhooks_pk(self.tenant_id());
        self.query_all(pk, Some(keys::WEBHOOK_ENDPOINT_PREFIX))
            .await?
            .into_iter()
            .map(super::write::from_item)
            .collect()
    }

    /// Apply `patch` if the endpoint exists; `None` if it does not.
    pub async fn patch_webhook_endpoint(
        &self,
        id: &WebhookEndpointId,
        patch: &EndpointPatch,
        now: OffsetDateTime,
        audit: &AuditEvent,
    ) -> Result<Option<WebhookEndpoint>, Error> {
        let mut w = Write::to(keys::webhook_endpoint(self.tenant_id(), id));
        w.set(a::UPDATED_AT, &rfc3339(now)).if_exists();
        if let Some(u) = &patch.url {
            w.set(a::URL, u);
        }
        if let Some(e) = &patch.events {
            w.set(a::EVENTS, e);
        }
        match &patch.description {
            Some(Some(d)) => {
                w.set(a::DESCRIPTION, d);
            }
            Some(None) => {
                w.remove(a::DESCRIPTION);
            }
            None => {}
        }
        match patch.enabled {
            Some(true) => {
                // Re-enabling starts the failure clock afresh.
                w.set(a::ENABLED, &true)
                    .remove(a::DISABLED_REASON)
                    .remove(a::FAILING_SINCE);
            }
            Some(false) => {
                w.set(a::ENABLED, &false).set(a::DISABLED_REASON, "manual");
            }
            None => {}
        }
        let mut txn = Txn::new();
        txn.update(item::ENDPOINT, &w)?;
        self.push_audit(&mut txn, item::AUDIT, audit)?;
        match txn.run(self.db(), self.table()).await {
            Ok(()) => self.get_webhook_endpoint(id).await,
            Err(TxnError::Cancelled(c)) if c.failed(item::ENDPOINT) => Ok(None),
            Err(e) => {
                Err(e.or_else(|c| {
                    Error::internal(format!("endpoint patch refused: {}", c.describe()))
                }))
            }
        }
    }

    /// Delete the endpoint; `false` if there was none.
    pub async fn delete_webhook_endpoint(
        &self,
        id: &WebhookEndpointId,
        audit: &AuditEvent,
    ) -> Result<bool, Error> {
        let t = self.tenant_id();
        let mut counter = Write::to(keys::webhook_counter(t));
        counter.add(a::ENDPOINTS, -1);
        let mut txn = Txn::new();
        txn.delete(
            item::ENDPOINT,
            Write::to(keys::webhook_endpoint(t, id)).if_exists(),
        )?;
        txn.update(item::COUNTER, &counter)?;
        self.push_audit(&mut txn, item::AUDIT, audit)?;
        match txn.run(self.db(), self.table()).await {
            Ok(()) => Ok(true),
            Err(TxnError::Cancelled(c)) if c.failed(item::ENDPOINT) => Ok(false),
            Err(e) => Err(e.or_else(|c| {
                Error::internal(format!("endpoint delete refused: {}", c.describe()))
            })),
        }
    }

    /// A delivery failed: remember since when the endpoint fails (if not
    /// already), and disable it once that is [`DISABLE_AFTER`] ago, with
    /// its audit event. Returns `true` when this call disabled it.
    ///
    /// [`DISABLE_AFTER`]: crate::domain::webhook::DISABLE_AFTER
    pub async fn webhook_failed(
        &self,
        ep: &WebhookEndpoint,
        now: OffsetDateTime,
        audit_disabled: &AuditEvent,
    ) -> Result<bool, Error> {
        let key = keys::webhook_endpoint(self.tenant_id(), &ep.id);
        let since = match ep.failing_since {
            Some(s) => s,
            None => {
                let mut w = Write::to(key);
                w.set_if_absent(a::FAILING_SINCE, &rfc3339(now)).if_exists();
                w.run(self.db(), self.table()).await?;
                return Ok(false);
            }
        };
        if now - since < crate::domain::webhook::DISABLE_AFTER || !ep.enabled {
            return Ok(false);
        }
        let mut w = Write::to(key);
        w.set(a::ENABLED, &false)
            .set(a::DISABLED_REASON, "failing")
            .set(a::UPDATED_AT, &rfc3339(now))
            .if_eq(a::ENABLED, &true)
            .if_eq(a::FAILING_SINCE, &rfc3339(since));
        let mut txn = Txn::new();
        txn.update(item::ENDPOINT, &w)?;
        self.push_audit(&mut txn, item::AUDIT, audit_disabled)?;
        match txn.run(self.db(), self.table()).await {
            Ok(()) => Ok(true),
            Err(TxnError::Cancelled(c)) if c.failed(item::ENDPOINT) => Ok(false),
            Err(e) => Err(e.or_else(|c| {
                Error::internal(format!("endpoint disable refused: {}", c.describe()))
            })),
        }
    }

    /// A delivery succeeded: the endpoint is healthy again.
    pub async fn webhook_recovered(&self, ep: &WebhookEndpoint) -> Result<(), Error> {
        if ep.failing_since.is_none() {
            return Ok(());
        }
        let mut w = Write::to(keys::webhook_endpoint(self.tenant_id(), &ep.id));
        w.remove(a::FAILING_SINCE).if_exists();
        w.run(self.db(), self.table()).await?;
        Ok(())
    }

    /// Log one attempt (kept [`DELIVERY_RETENTION_DAYS`] days).
    pub async fn put_delivery(&self, d: &Delivery) -> Result<(), Error> {
        let key = keys::delivery(self.tenant_id(), &d.endpoint_id, &d.id);
        let ttl = d.at.unix_timestamp() + DELIVERY_RETENTION_DAYS * 86_400;
        let mut it = super::write::to_item(&key, d)?;
        it.insert(keys::TTL.to_string(), super::write::n(ttl));
        let res = self
            .db()
            .put_item()
            .table_name(self.table())
            .set_item(Some(it))
            .condition_expression("attribute_not_exists(PK)")
            .send()
            .await;
        // Delivery ids are ULIDs: a taken one is a retried write of this one.
        super::conditional("PutItem", res).map(|_| ())
    }

    pub async fn get_delivery(
        &self,
        endpoint: &WebhookEndpointId,
        id: &DeliveryId,
    ) -> Result<Option<Delivery>, Error> {
        self.get_as(&keys::delivery(self.tenant_id(), endpoint, id))
            .await
    }

    /// An endpoint's attempts, newest first.
    pub async fn list_deliveries(
        &self,
        signer: &Signer,
        endpoint: &WebhookEndpointId,
        limit: i32,
        cursor_: Option<&str>,
    ) -> Result<Page<Delivery>, Error> {
        let listing = format!("deliveries:{endpoint}");
        let pk = keys::deliveries_pk(self.tenant_id(), endpoint);
        self.page(signer, &listing, pk, true, None, limit, cursor_)
            .await
    }
}
