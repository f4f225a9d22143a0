//! A one-off migration: activations retired in place under `A#` (with
//! `deactivated_at`, written before retired activations moved to `R#`) are
//! moved to `R#`, so they leave the live range validate reads.

use super::attrs as a;
use super::write::{from_item, s, PutIf, Txn, TxnError, Write};
use super::{keys, sdk_error, Item};
use crate::clock::rfc3339;
use crate::domain::Activation;
use crate::error::Error;

/// What a migration found and moved.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Retired {
    pub scanned: u64,
    pub moved: u64,
}

impl super::Store {
    /// Move every activation retired in place (`A#…` with `deactivated_at`)
    /// to `R#…`: one Scan of the table, filtered to those items, and one
    /// transaction per item — `Delete` of the `A#` item if its
    /// `deactivated_at` is still the one read (a restore meanwhile made it
    /// live: left alone), `Put` of the same item under `R#`. Safe to run
    /// again or alongside traffic. An operator's one-off: no function calls it.
    pub async fn retire_activations_in_place(&self) -> Result<Retired, Error> {
        let mut out = Retired::default();
        let mut start: Option<Item> = None;
        loop {
            let mut e = super::write::Expr::default();
            let filter = format!(
                "begins_with({}, {}) AND attribute_exists({})",
                e.name(keys::SK),
                e.val(s(keys::ACTIVATION_SK_PREFIX)),
                e.name(a::DEACTIVATED_AT)
            );
            let page = self
                .db()
                .scan()
                .table_name(self.table())
                .filter_expression(filter)
                .set_expression_attribute_names(e.names())
                .set_expression_attribute_values(e.values())
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| sdk_error("Scan", e))?;
            out.scanned += page.scanned_count.max(0) as u64;
            for item in page.items.unwrap_or_default() {
                let pk = super::write::get_s(&item, keys::PK).unwrap_or_default();
                let Some(tenant) = keys::tenant_of_license_pk(pk) else {
                    continue;
                };
                let act: Activation = from_item(item)?;
                let Some(at) = act.deactivated_at else {
                    continue;
                };
                let mut live = Write::to(keys::activation(&tenant, &act.id));
                live.if_eq(a::DEACTIVATED_AT, &rfc3339(at));
                let mut txn = Txn::new();
                txn.delete("retired in place", &live)?;
                let retired = keys::retired_activation(&tenant, &act.id);
                txn.put("retired", &retired, &act, PutIf::Always)?;
                match txn.run(self.db(), self.table()).await {
                    Ok(()) => out.moved += 1,
                    Err(TxnError::Cancelled(_)) => {} // restored meanwhile
                    Err(TxnError::Other(e)) => return Err(e),
                }
            }
            match page.last_evaluated_key.filter(|k| !k.is_empty()) {
                Some(k) => start = Some(k),
                None => return Ok(out),
            }
        }
    }
}
