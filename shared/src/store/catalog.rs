//! Products and policies.

use super::attrs as a;
use super::write::{from_item, PutIf, Txn, TxnError, Write};
use super::{keys, Page, TenantStore};
use crate::clock::rfc3339;
use crate::crypto::Signer;
use crate::domain::{AuditEvent, Policy, PolicyPatch, Product, ProductPatch, SeatTerms};
use crate::error::Error;
use crate::ids::{PolicyId, ProductCode};
use time::OffsetDateTime;

impl TenantStore {
    pub async fn create_product(&self, p: &Product, audit: &AuditEvent) -> Result<(), Error> {
        let mut txn = Txn::new();
        txn.put(
            "product",
            &keys::product(self.tenant_id(), &p.code),
            p,
            PutIf::New,
        )?;
        self.push_audit(&mut txn, "audit", audit)?;
        txn.run(self.db(), self.table())
            .await
            .map_err(|e| e.or_else(|_| Error::ProductExists(p.code.to_string())))
    }

    pub async fn get_product(&self, code: &ProductCode) -> Result<Option<Product>, Error> {
        self.get_as(&keys::product(self.tenant_id(), code)).await
    }

    pub async fn list_products(
        &self,
        signer: &Signer,
        limit: i32,
        cursor: Option<&str>,
    ) -> Result<Page<Product>, Error> {
        let pk = keys::products_pk(self.tenant_id());
        self.page(signer, "products", pk, false, None, limit, cursor)
            .await
    }

    /// A policy, conditional on its product existing.
    pub async fn create_policy(&self, p: &Policy, audit: &AuditEvent) -> Result<(), Error> {
        let t = self.tenant_id();
        let mut txn = Txn::new();
        txn.exists("product", keys::product(t, &p.product))?;
        txn.put("policy", &keys::policy(t, &p.id), p, PutIf::New)?;
        self.push_audit(&mut txn, "audit", audit)?;
        txn.run(self.db(), self.table()).await.map_err(|e| {
            e.or_else(|c| {
                if c.failed("product") {
                    Error::PolicyProductMissing(p.product.to_string())
                } else {
                    Error::internal(format!("policy id collision: {}", c.describe()))
                }
            })
        })
    }

    pub async fn get_policy(&self, id: &PolicyId) -> Result<Option<Policy>, Error> {
        self.get_as(&keys::policy(self.tenant_id(), id)).await
    }

    pub async fn list_policies(
        &self,
        signer: &Signer,
        limit: i32,
        cursor: Option<&str>,
    ) -> Result<Page<Policy>, Error> {
        let pk = keys::policies_pk(self.tenant_id());
        self.page(signer, "policies", pk, false, None, limit, cursor)
            .await
    }

    /// Every policy of the tenant (one paged Query of the policies partition).
    pub async fn all_policies(&self) -> Result<Vec<Policy>, Error> {
        let items = self
            .query_all(keys::policies_pk(self.tenant_id()), None)
            .await?;
        items.into_iter().map(from_item).collect()
    }

    /// `Ok(None)`: no such product. A trial's policy must be one of this
    /// product's, checked in the same transaction (policies never move to
    /// another product and are never deleted).
    pub async fn update_product(
        &self,
        code: &ProductCode,
        patch: &ProductPatch,
        audit: &AuditEvent,
        now: OffsetDateTime,
    ) -> Result<Option<Product>, Error> {
        let t = self.tenant_id();
        let mut w = Write::to(keys::product(t, code));
        w.set(a::UPDATED_AT, &rfc3339(now))
            .set_some(a::NAME, patch.name.as_ref());
        match &patch.trial {
            None => {}
            Some(None) => {
                w.remove(a::TRIAL);
            }
            Some(Some(trial)) => {
                w.set(a::TRIAL, trial);
            }
        }
        w.if_exists();
        let mut txn = Txn::new();
        txn.update("product", &w)?;
        if let Some(Some(trial)) = &patch.trial {
            let mut policy = Write::to(keys::policy(t, &trial.policy));
            policy.if_exists().if_eq(a::PRODUCT, code);
            txn.check("trial policy", &policy)?;
        }
        self.push_audit(&mut txn, "audit", audit)?;
        match txn.run(self.db(), self.table()).await {
            Ok(()) => self.get_product(code).await,
            Err(TxnError::Cancelled(c)) if c.failed("product") => Ok(None),
            Err(TxnError::Cancelled(_)) => Err(Error::TrialPolicyMissing),
            Err(TxnError::Other(e)) => Err(e),
        }
    }

    /// `Ok(None)`: no such policy. `terms`: the policy's new seat terms as
    /// a whole (the patch's seat-term fields are not written), only if the
    /// policy is unchanged since the `updated_at` they were checked against.
    pub async fn update_policy(
        &self,
        id: &PolicyId,
        patch: &PolicyPatch,
        terms: Option<(SeatTerms, OffsetDateTime)>,
        audit: &AuditEvent,
        now: OffsetDateTime,
    ) -> Result<Option<Policy>, Error> {
        let mut w = Write::to(keys::policy(self.tenant_id(), id));
        w.set(a::UPDATED_AT, &rfc3339(now))
            .set_some(a::NAME, patch.name.as_ref())
            .set_some(a::MAX_ACTIVATIONS, patch.max_activations.as_ref())
            .set_some(a::DURATION_DAYS, patch.duration_days.as_ref())
            .set_some(a::ENTITLEMENTS, patch.entitlements.as_ref())
            .set_some(a::GRACE_PERIOD_DAYS, patch.grace_period_days.as_ref())
            .set_some(a::STRIPE_PRICE_IDS, patch.stripe_price_ids.as_ref())
            .set_some(a::CLIENT_AUTH, patch.client_auth.as_ref())
            .set_some(a::MAX_FILE_TTL_SECONDS, patch.max_file_ttl_seconds.as_ref());
        if let Some((t, unchanged_since)) = terms {
            super::seats::set_terms(&mut w, &t);
            w.if_eq(a::UPDATED_AT, &rfc3339(unchanged_since));
        }
        if !self.update_existing(&w, audit).await? {
            return Ok(None);
        }
        self.get_policy(id).await
    }

    /// `w` on an existing record, with its audit event, in one transaction.
    /// `Ok(false)`: no such record.
    async fn update_existing(&self, w: &Write, audit: &AuditEvent) -> Result<bool, Error> {
        let mut w = w.clone();
        w.if_exists();
        let mut txn = Txn::new();
        txn.update("record", &w)?;
        self.push_audit(&mut txn, "audit", audit)?;
        match txn.run(self.db(), self.table()).await {
            Ok(()) => Ok(true),
            Err(TxnError::Cancelled(_)) => Ok(false),
            Err(TxnError::Other(e)) => Err(e),
        }
    }
}
