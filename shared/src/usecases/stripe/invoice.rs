//! Payments: paid and failed invoices move their subscription's license;
//! refunds and disputes find it through the charge that paid an invoice.

use super::Cx;
use crate::domain::stripe::wire::{id_of, Charge, Dispute, Invoice};
use crate::domain::stripe::{stripe_id_ok, Change, Receipt};
use crate::domain::LicenseStatus;
use crate::error::Error;

impl Cx<'_> {
    /// `invoice.paid` (and its twin `invoice.payment_succeeded`): active until
    /// the end of the paid period; remembers which charges paid it, since
    /// refunds and disputes name only the charge.
    pub(super) async fn invoice_paid(&self, inv: &Invoice) -> Result<Receipt, Error> {
        let Some(sub) = inv.subscription_id() else {
            return self.not_for_a_subscription().await;
        };
        let charges = inv.charges(sub);
        self.for_subscription(
            sub,
            Change::of_paid_invoice(inv),
            id_of(&inv.customer),
            &charges,
        )
        .await
    }

    /// `invoice.payment_failed`: past due (its grace period starts).
    pub(super) async fn invoice_failed(&self, inv: &Invoice) -> Result<Receipt, Error> {
        let Some(sub) = inv.subscription_id() else {
            return self.not_for_a_subscription().await;
        };
        let change = Change::to(LicenseStatus::PastDue);
        self.for_subscription(sub, change, id_of(&inv.customer), &[])
            .await
    }

    async fn not_for_a_subscription(&self) -> Result<Receipt, Error> {
        self.ignored("the invoice is not for a subscription".into())
            .await
    }

    /// `charge.refunded`: a full refund suspends; a partial one changes nothing.
    pub(super) async fn refunded(&self, ch: &Charge) -> Result<Receipt, Error> {
        if !ch.fully_refunded() {
            return self
                .ignored("partial refund: the license is unchanged".into())
                .await;
        }
        self.for_charge(&[Some(ch.id.as_str()), id_of(&ch.payment_intent)])
            .await
    }

    /// `charge.dispute.created` suspends.
    pub(super) async fn disputed(&self, d: &Dispute) -> Result<Receipt, Error> {
        self.for_charge(&[id_of(&d.charge), id_of(&d.payment_intent)])
            .await
    }

    /// Suspend the license of the subscription that the charge (or payment
    /// intent) paid an invoice of.
    async fn for_charge(&self, refs: &[Option<&str>]) -> Result<Receipt, Error> {
        for r in refs.iter().flatten().filter(|r| stripe_id_ok(r)) {
            if let Some(ch) = self.ts.get_stripe_charge(r).await? {
                let change = Change::to(LicenseStatus::Suspended);
                return self
                    .for_subscription(&ch.subscription_id, change, None, &[])
                    .await;
            }
        }
        let why =
            "unknown charge: no invoice.paid seen for it, so no license to change".to_string();
        self.ignored(why).await
    }
}
