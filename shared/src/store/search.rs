//! License search: GSI2 holds every license of a tenant in one index
//! partition, sorted by creation time (then id). The time range is the key
//! condition; status, product, policy and `q` are a FilterExpression over
//! the few projected attributes. A page keeps querying until it is full or
//! has evaluated [`READ_BUDGET`] index entries, then answers with what it
//! found and a cursor, so a selective filter costs bounded reads per request.
//! The licenses of a page are read back with one BatchGetItem (the index does
//! not carry the seat counters, so activations never write it).

use super::attrs as a;
use super::write::{from_item, n, s, Expr};
use super::{cursor, keys, sdk_error, Item, Page, TenantStore};
use crate::clock::rfc3339;
use crate::crypto::Signer;
use crate::domain::{License, LicenseFilter, LicenseStatus, ShownStatus};
use crate::error::Error;
use std::collections::HashMap;
use time::{Duration, OffsetDateTime};

/// The most index entries one page may evaluate (about 25 RCU of small
/// projected entries); past it the page comes back short, with a cursor.
pub const READ_BUDGET: i32 = 2000;

/// Entries asked for per Query while a filter is set.
const CHUNK: i32 = 500;

impl TenantStore {
    /// One page of the tenant's licenses matching `f`, newest first.
    pub async fn search_licenses(
        &self,
        signer: &Signer,
        f: &LicenseFilter,
        limit: usize,
        cursor_: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<Page<License>, Error> {
        self.search_licenses_within(signer, f, limit, cursor_, now, READ_BUDGET)
            .await
    }

    /// [`Self::search_licenses`] reading at most `budget` index entries
    /// (tests use a small one to see short pages without thousands of items).
    pub async fn search_licenses_within(
        &self,
        signer: &Signer,
        f: &LicenseFilter,
        limit: usize,
        cursor_: Option<&str>,
        now: OffsetDateTime,
        budget: i32,
    ) -> Result<Page<License>, Error> {
        let budget = budget.max(1);
        let listing = format!("license-search?{}", f.canonical());
        let mut start = cursor_
            .map(|c| cursor::decode(signer, self.tenant_id(), &listing, c))
            .transpose()?;
        let mut e = Expr::default();
        let cond = key_condition(&mut e, self, f);
        let filter = filter_expression(&mut e, f, now);
        let mut found: Vec<Item> = Vec::new();
        let mut evaluated = 0i32;
        let next = loop {
            let need = limit - found.len();
            let ask = if filter.is_some() {
                CHUNK.min(budget - evaluated)
            } else {
                need as i32
            };
            let page = self
                .db()
                .query()
                .table_name(self.table())
                .index_name(keys::GSI2)
                .key_condition_expression(&cond)
                .set_filter_expression(filter.clone())
                .set_expression_attribute_names(e.names())
                .set_expression_attribute_values(e.values())
                .set_exclusive_start_key(start.take())
                .scan_index_forward(false)
                .limit(ask)
                .send()
                .await
                .map_err(|e| sdk_error("Query", e))?;
            evaluated += page.scanned_count;
            let lek = page.last_evaluated_key.filter(|k| !k.is_empty());
            let items = page.items.unwrap_or_default();
            if items.len() > need {
                // More matched than fit: the page ends at the last one taken.
                found.extend(items.into_iter().take(need));
                break found.last().map(index_key);
            }
            found.extend(items);
            match lek {
                None => break None,
                Some(k) if found.len() >= limit || evaluated >= budget => break Some(k),
                Some(k) => start = Some(k),
            }
        };
        let licenses = self.licenses_in_order(&found).await?;
        Ok(Page {
            // The index lags the table by a moment: a license changed since
            // is shown as it is now, and only if it still matches.
            items: licenses.into_iter().filter(|l| f.matches(l, now)).collect(),
            next_cursor: next.and_then(|k| cursor::encode(signer, self.tenant_id(), &listing, &k)),
        })
    }

    /// The license items of `entries` (index entries), in their order.
    async fn licenses_in_order(&self, entries: &[Item]) -> Result<Vec<License>, Error> {
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        let wanted: Vec<keys::Key> = entries
            .iter()
            .filter_map(|i| {
                Some(keys::Key {
                    pk: super::write::get_s(i, keys::PK)?.to_string(),
                    sk: super::write::get_s(i, keys::SK)?.to_string(),
                })
            })
            .collect();
        let mut by_pk: HashMap<String, Item> = self
            .batch_get(&wanted)
            .await?
            .into_iter()
            .filter_map(|i| Some((super::write::get_s(&i, keys::PK)?.to_string(), i)))
            .collect();
        wanted
            .iter()
            .filter_map(|k| by_pk.remove(&k.pk))
            .map(from_item)
            .collect()
    }
}

/// How many license items a backfill found and indexed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Backfill {
    pub scanned: u64,
    pub indexed: u64,
}

impl super::Store {
    /// Give every license item that lacks them its search-index keys
    /// (licenses issued before GSI2 existed): one Scan of the table, filtered
    /// to license items without `GSI2PK`, and one conditional UpdateItem per
    /// license found. Safe to run again or alongside traffic (the keys follow
    /// from fields fixed at issue; an item that has them is left alone).
    /// An operator's one-off migration: no function calls it.
    pub async fn backfill_search_index(&self) -> Result<Backfill, Error> {
        let mut out = Backfill::default();
        let mut start: Option<Item> = None;
        loop {
            let mut e = Expr::default();
            let filter = format!(
                "{} = {} AND attribute_not_exists({})",
                e.name(keys::SK),
                e.val(s(keys::LICENSE_SK)),
                e.name(keys::GSI2PK)
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
                let tenant =
                    super::write::get_s(&item, keys::PK).and_then(keys::tenant_of_license_pk);
                let Some(tenant) = tenant else { continue };
                let license: License = from_item(item)?;
                if self.tenant(&tenant).index_license(&license).await? {
                    out.indexed += 1;
                }
            }
            match page.last_evaluated_key.filter(|k| !k.is_empty()) {
                Some(k) => start = Some(k),
                None => return Ok(out),
            }
        }
    }
}

impl TenantStore {
    /// Set a license's search-index keys unless it has them. `Ok(false)`:
    /// it had them (or is gone).
    pub async fn index_license(&self, l: &License) -> Result<bool, Error> {
        let t = self.tenant_id();
        let mut w = super::write::Write::to(keys::license(t, &l.id));
        let created = rfc3339(l.created_at);
        w.set(keys::GSI2PK, &keys::search_index_pk(t))
            .set(keys::GSI2SK, &keys::search_index_sk(&created, &l.id))
            .if_exists()
            .if_absent(keys::GSI2PK);
        w.run(self.db(), self.table()).await
    }
}

/// The key of an index entry, as a Query's LastEvaluatedKey would give it.
fn index_key(item: &Item) -> Item {
    [keys::PK, keys::SK, keys::GSI2PK, keys::GSI2SK]
        .into_iter()
        .filter_map(|k| Some((k.to_string(), item.get(k)?.clone())))
        .collect()
}

/// The tenant's partition, and the creation range as a sort-key range.
/// Sort keys are `<created, RFC 3339 in ms>#<id>`: "created after t" is
/// "key >= t + 1 ms", "created before t" is "key < t" (any key of time t
/// itself sorts after the bare time).
fn key_condition(e: &mut Expr, ts: &TenantStore, f: &LicenseFilter) -> String {
    let pk = e.name(keys::GSI2PK);
    let mut cond = format!("{pk} = {}", e.val(s(keys::search_index_pk(ts.tenant_id()))));
    let from = f
        .created_after
        .map(|t| rfc3339(floor_ms(t) + Duration::milliseconds(1)));
    let until = f.created_before.map(|t| rfc3339(ceil_ms(t)));
    let range = match (from, until) {
        (Some(lo), Some(hi)) => format!("BETWEEN {} AND {}", e.val(s(lo)), e.val(s(hi))),
        (Some(lo), None) => format!(">= {}", e.val(s(lo))),
        (None, Some(hi)) => format!("< {}", e.val(s(hi))),
        (None, None) => return cond,
    };
    cond.push_str(&format!(" AND {} {range}", e.name(keys::GSI2SK)));
    cond
}

fn floor_ms(t: OffsetDateTime) -> OffsetDateTime {
    t.replace_nanosecond(t.millisecond() as u32 * 1_000_000)
        .unwrap_or(t)
}

fn ceil_ms(t: OffsetDateTime) -> OffsetDateTime {
    let f = floor_ms(t);
    if f == t {
        t
    } else {
        f + Duration::milliseconds(1)
    }
}

/// The filters other than time, over the projected attributes; the same
/// rules as [`LicenseFilter::matches`]. `None`: no filter.
fn filter_expression(e: &mut Expr, f: &LicenseFilter, now: OffsetDateTime) -> Option<String> {
    let mut parts = Vec::new();
    if let Some(st) = f.status {
        parts.push(status_filter(e, st, now));
    }
    if let Some(p) = &f.product {
        let name = e.name(a::PRODUCT);
        parts.push(format!("{name} = {}", e.val(s(p.as_str()))));
    }
    if let Some(p) = &f.policy {
        let name = e.name(a::POLICY);
        parts.push(format!("{name} = {}", e.val(s(p.as_str()))));
    }
    if let Some(q) = &f.q {
        let (key, email) = (e.name(a::KEY), e.name(a::CUSTOMER_EMAIL));
        let mut any: Vec<String> = q
            .key_forms()
            .into_iter()
            .map(|k| format!("begins_with({key}, {})", e.val(s(k))))
            .collect();
        any.push(format!(
            "begins_with({email}, {})",
            e.val(s(q.email_form()))
        ));
        parts.push(any.join(" OR "));
    }
    (!parts.is_empty()).then(|| {
        parts
            .into_iter()
            .map(|p| format!("({p})"))
            .collect::<Vec<_>>()
            .join(" AND ")
    })
}

/// The stored attributes behind a shown status (see `License::standing`).
fn status_filter(e: &mut Expr, st: ShownStatus, now: OffsetDateTime) -> String {
    let status = e.name(a::STATUS);
    let is = |e: &mut Expr, v: LicenseStatus| format!("{status} = {}", e.val(s(v.as_str())));
    match st {
        ShownStatus::Suspended => is(e, LicenseStatus::Suspended),
        ShownStatus::Cancelled => is(e, LicenseStatus::Cancelled),
        ShownStatus::Active => {
            let exp = e.name(a::EXPIRES_EPOCH);
            let now_v = e.val(n(now.unix_timestamp()));
            let active = is(e, LicenseStatus::Active);
            format!("{active} AND (attribute_not_exists({exp}) OR {exp} > {now_v})")
        }
        // Past due shows as expired only while its grace runs and its own
        // expiry has passed.
        ShownStatus::PastDue => {
            let (exp, grace) = (e.name(a::EXPIRES_EPOCH), e.name(a::GRACE_EPOCH));
            let now_v = e.val(n(now.unix_timestamp()));
            let past_due = is(e, LicenseStatus::PastDue);
            format!(
                "{past_due} AND (attribute_not_exists({grace}) OR {grace} <= {now_v} \
                 OR attribute_not_exists({exp}) OR {exp} > {now_v})"
            )
        }
        ShownStatus::Expired => {
            let (exp, grace) = (e.name(a::EXPIRES_EPOCH), e.name(a::GRACE_EPOCH));
            let now_v = e.val(n(now.unix_timestamp()));
            let (active, past_due) = (is(e, LicenseStatus::Active), is(e, LicenseStatus::PastDue));
            format!("{exp} <= {now_v} AND ({active} OR ({past_due} AND {grace} > {now_v}))")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn millisecond_rounding() {
        let t = datetime!(2026-01-01 0:00:00.000_5 UTC);
        assert_eq!(floor_ms(t), datetime!(2026-01-01 0:00 UTC));
        assert_eq!(ceil_ms(t), datetime!(2026-01-01 0:00:00.001 UTC));
        let whole = datetime!(2026-01-01 0:00:00.002 UTC);
        assert_eq!(ceil_ms(whole), whole);
    }

    #[test]
    fn no_filter_no_expression() {
        let mut e = Expr::default();
        assert!(filter_expression(
            &mut e,
            &LicenseFilter::default(),
            OffsetDateTime::UNIX_EPOCH
        )
        .is_none());
    }
}
