//! License search: 250 licenses of known shape, paged through with and
//! without each filter; every license exactly once, newest first.

use futures::StreamExt;
use harness::{Env, Tenant};
use serde_json::{json, Value};
use shared::domain::{Actor, GraceChange, LicenseChange, LicenseGuard, LicenseStatus};
use shared::ids::{Email, LicenseId, PolicyId, TenantId};
use shared::usecases::licensing::{self, Lifecycle, NewLicense};
use std::collections::HashSet;
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

const N: usize = 250;
const BASE: OffsetDateTime = datetime!(2026-01-01 0:00 UTC);
/// When the searches run: every short expiry and ended grace is past.
const SEARCH_AT: OffsetDateTime = datetime!(2026-01-02 0:00 UTC);

/// What the test made, and what each license should show.
#[derive(Debug, Clone)]
struct Made {
    id: String,
    key: String,
    email: String,
    product: &'static str,
    policy: String,
    created: OffsetDateTime,
    status: &'static str,
}

/// Licenses two by two share a creation time (ties go by id).
fn created(i: usize) -> OffsetDateTime {
    BASE + Duration::seconds(60 * (i / 2) as i64)
}

fn url(query: &str) -> String {
    format!("/v1/manage/licenses?{query}")
}

/// Percent-encode a query value.
fn q(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Page through a search; returns (id, created_at) in the order served.
async fn all_pages(env: &Env, t: &Tenant, query: &str, limit: usize) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..(N + 5) {
        let mut path = url(&format!("{query}&limit={limit}"));
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={}", q(c)));
        }
        let r = env.get(&path, &t.admin).await;
        assert_eq!(r.status, 200, "{path}: {r:?}");
        let items = r.data().as_array().unwrap();
        assert!(items.len() <= limit, "{path}: {} items", items.len());
        for l in items {
            out.push((
                l["id"].as_str().unwrap().to_string(),
                l["created_at"].as_str().unwrap().to_string(),
            ));
        }
        match r.json["meta"]["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return out,
        }
    }
    panic!("{query}: paging did not end");
}

/// Served exactly the expected licenses, each once, newest first (then by id).
fn assert_listing(
    what: &str,
    got: &[(String, String)],
    made: &[Made],
    keep: impl Fn(&Made) -> bool,
) {
    let ids: Vec<&str> = got.iter().map(|(id, _)| id.as_str()).collect();
    let unique: HashSet<&str> = ids.iter().copied().collect();
    assert_eq!(unique.len(), ids.len(), "{what}: a license served twice");
    let mut want: Vec<&Made> = made.iter().filter(|m| keep(m)).collect();
    want.sort_by(|a, b| (b.created, &b.id).cmp(&(a.created, &a.id)));
    let want: Vec<&str> = want.iter().map(|m| m.id.as_str()).collect();
    assert!(
        !want.is_empty() || what.contains("none"),
        "{what}: a filter that keeps nothing"
    );
    assert_eq!(ids, want, "{what}");
}

async fn make(env: &Env, t: &Tenant) -> Vec<Made> {
    for code in ["pa", "pb"] {
        let r = env
            .post(
                "/v1/manage/products",
                &t.admin,
                json!({ "code": code, "name": code }),
            )
            .await;
        assert_eq!(r.status, 201, "{r:?}");
    }
    let a1 = env.policy(t, "pa", 3, json!({})).await;
    let a2 = env.policy(t, "pa", 3, json!({})).await;
    let b = env.policy(t, "pb", 3, json!({})).await;
    let tenant = TenantId::parse(t.id.as_str()).unwrap();
    let ts = env.app.store.tenant(&tenant);
    let actor = Actor {
        actor: "test".into(),
        request_id: "req_test".into(),
    };
    let jobs = (0..N).map(|i| {
        let (product, policy) = match i % 4 {
            0 => ("pa", a1.clone()),
            2 => ("pa", a2.clone()),
            _ => ("pb", b.clone()),
        };
        let (ts, actor, env) = (ts.clone(), &actor, env);
        async move {
            let at = created(i);
            let email = format!("User{i}@Ex{}.com", i % 5);
            let short = i % 13 == 0;
            let req = NewLicense {
                policy: PolicyId::parse(policy.as_str()).unwrap(),
                customer_email: Email::normalise(&email).unwrap(),
                expires_at: short.then(|| at + Duration::hours(1)),
                key: None,
                metadata: Default::default(),
                commercial: None,
                grant_to: None,
            };
            let s = licensing::issue(&env.app.policies, &ts, actor, req, at)
                .await
                .unwrap();
            let id = s.license.id.clone();
            let later = at + Duration::seconds(1);
            let mut status = if short { "expired" } else { "active" };
            if i % 11 == 5 {
                licensing::lifecycle(&env.app.policies, &ts, actor, &id, Lifecycle::Cancel, later)
                    .await
                    .unwrap();
                status = "cancelled";
            } else if i % 7 == 3 {
                licensing::lifecycle(
                    &env.app.policies,
                    &ts,
                    actor,
                    &id,
                    Lifecycle::Suspend,
                    later,
                )
                .await
                .unwrap();
                status = "suspended";
            } else if i % 17 == 4 || i % 19 == 2 {
                // Past due: a grace that ended, or one still running (which
                // shows as expired once the license's own expiry passed).
                let running = i % 19 == 2;
                let until = if running {
                    SEARCH_AT + Duration::days(10)
                } else {
                    at + Duration::hours(2)
                };
                past_due(&ts, &id, until, later).await;
                status = if running && short {
                    "expired"
                } else {
                    "past_due"
                };
            }
            Made {
                id: id.to_string(),
                key: s.license.key.to_string(),
                email: email.to_lowercase(),
                product,
                policy,
                created: at,
                status,
            }
        }
    });
    futures::stream::iter(jobs)
        .buffer_unordered(12)
        .collect()
        .await
}

async fn past_due(
    ts: &shared::store::TenantStore,
    id: &LicenseId,
    until: OffsetDateTime,
    now: OffsetDateTime,
) {
    let change = LicenseChange {
        status: Some(LicenseStatus::PastDue),
        grace: GraceChange::StartUnlessRunning(until),
        ..Default::default()
    };
    let audit = Actor {
        actor: "stripe".into(),
        request_id: "req_test".into(),
    }
    .audit(
        ts.tenant_id(),
        shared::domain::AuditCode::LicenseUpdated,
        id.as_str(),
        now,
    );
    ts.update_license(id, &change, &LicenseGuard::default(), &audit, now)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn filters_and_cursor_pages_serve_each_license_once() {
    let env = Env::with_clock(SEARCH_AT).await;
    let t = env.tenant("search").await;
    let made = make(&env, &t).await;
    assert_eq!(made.len(), N);
    for s in ["active", "suspended", "cancelled", "expired", "past_due"] {
        assert!(made.iter().any(|m| m.status == s), "no {s} license made");
    }

    // No filter, at three page sizes.
    for limit in [7, 25, 100] {
        let got = all_pages(&env, &t, "", limit).await;
        assert_eq!(got.len(), N);
        assert_listing(&format!("all, limit {limit}"), &got, &made, |_| true);
    }
    // Each status; and the view shows that status.
    for s in ["active", "suspended", "cancelled", "expired", "past_due"] {
        let got = all_pages(&env, &t, &format!("status={s}"), 10).await;
        assert_listing(&format!("status={s}"), &got, &made, |m| m.status == s);
    }
    let r = env.get(&url("status=past_due&limit=100"), &t.admin).await;
    for l in r.data().as_array().unwrap() {
        assert_eq!(l["status"], "past_due", "{l}");
    }
    // Product and policy.
    let got = all_pages(&env, &t, "product=pa", 9).await;
    assert_listing("product=pa", &got, &made, |m| m.product == "pa");
    let pol = made[1].policy.clone();
    let got = all_pages(&env, &t, &format!("policy={pol}"), 9).await;
    assert_listing("policy", &got, &made, |m| m.policy == pol);
    // The time range: both ends exclusive, ties on the boundary excluded.
    let (after, before) = (created(50), created(200));
    let range = format!(
        "created_after={}&created_before={}",
        q(&shared::clock::rfc3339(after)),
        q(&shared::clock::rfc3339(before))
    );
    let got = all_pages(&env, &t, &range, 8).await;
    assert_listing("range", &got, &made, |m| {
        m.created > after && m.created < before
    });
    let got = all_pages(&env, &t, &range[..range.find('&').unwrap()], 30).await;
    assert_listing("after", &got, &made, |m| m.created > after);
    // q: an e-mail prefix in any case, a key prefix in lower case.
    let got = all_pages(&env, &t, "q=USER1", 6).await;
    assert_listing("q=e-mail", &got, &made, |m| m.email.starts_with("user1"));
    let prefix = made[42].key[..8].to_lowercase();
    let got = all_pages(&env, &t, &format!("q={}", q(&prefix)), 5).await;
    assert_listing("q=key", &got, &made, |m| {
        m.key.to_lowercase().starts_with(&prefix) || m.email.starts_with(&prefix)
    });
    assert!(got.iter().any(|(id, _)| *id == made[42].id));
    // Everything at once.
    let all = format!("product=pb&status=active&{range}&q=user");
    let got = all_pages(&env, &t, &all, 4).await;
    assert_listing("combined", &got, &made, |m| {
        m.product == "pb" && m.status == "active" && m.created > after && m.created < before
    });
    // A filter nothing matches: one empty page, no cursor.
    let got = all_pages(&env, &t, "q=nobody-at-all", 10).await;
    assert_listing("none", &got, &made, |_| false);

    // A rare filter under a small read budget: pages come back short (some
    // empty) with a cursor, and paging on still serves each match once.
    let ts = env
        .app
        .store
        .tenant(&TenantId::parse(t.id.as_str()).unwrap());
    let f = shared::domain::LicenseFilter {
        status: Some(shared::domain::ShownStatus::Cancelled),
        ..Default::default()
    };
    let signer = env.app.signer().unwrap();
    let (mut got, mut cursor, mut pages, mut short) = (Vec::new(), None::<String>, 0, 0);
    loop {
        let page = ts
            .search_licenses_within(signer, &f, 10, cursor.as_deref(), SEARCH_AT, 30)
            .await
            .unwrap();
        pages += 1;
        if page.items.len() < 10 && page.next_cursor.is_some() {
            short += 1;
        }
        got.extend(
            page.items
                .iter()
                .map(|l| (l.id.to_string(), shared::clock::rfc3339(l.created_at))),
        );
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_listing("cancelled, budget 30", &got, &made, |m| {
        m.status == "cancelled"
    });
    assert!(pages >= N / 30, "{pages} pages");
    assert!(short > 0, "no short page");

    // Another tenant sees none of them.
    let other = env.tenant("other").await;
    let r = env.get(&url("limit=100"), &other.admin).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.data().as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn bad_filters_are_422_naming_the_field() {
    let env = Env::start().await;
    let t = env.tenant("badsearch").await;
    for (query, field) in [
        ("status=Active", "status"),
        ("status=expiring", "status"),
        ("product=Not%20A%20Code", "product"),
        ("policy=pol_nope", "policy"),
        ("created_after=yesterday", "created_after"),
        ("created_before=2026-13-01T00:00:00Z", "created_before"),
        ("q=two%20words", "q"),
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        (
            "created_after=2026-02-01T00:00:00Z&created_before=2026-01-01T00:00:00Z",
            "created_before",
        ),
        ("email=a@b.co&status=active", "email"),
    ] {
        let r = env.get(&url(query), &t.admin).await;
        assert_eq!(
            (r.status, r.code()),
            (422, "VALIDATION_ERROR"),
            "{query}: {r:?}"
        );
        let msg = r.json["error"]["message"].as_str().unwrap();
        assert!(msg.starts_with(field), "{query}: {msg}");
    }
    // A cursor belongs to its search.
    let (_, lic) = env.license(&t, 1, json!({})).await;
    let _ = env
        .post(
            "/v1/manage/licenses",
            &t.admin,
            json!({ "policy": lic["policy"], "customer_email": "second@example.com" }),
        )
        .await;
    let r = env.get(&url("limit=1"), &t.admin).await;
    let c: Value = r.json["meta"]["next_cursor"].clone();
    let c = c.as_str().expect("a second page");
    let r = env
        .get(
            &url(&format!("limit=1&status=active&cursor={}", q(c))),
            &t.admin,
        )
        .await;
    assert_eq!((r.status, r.code()), (400, "INVALID_CURSOR"), "{r:?}");
    let r = env
        .get(&url(&format!("limit=1&cursor={}", q(c))), &t.admin)
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.data().as_array().unwrap().len(), 1);
}

/// How many licenses a tenant-wide search shows (one page).
async fn listed(env: &Env, t: &Tenant) -> usize {
    let r = env.get(&url("limit=10"), &t.admin).await;
    assert_eq!(r.status, 200, "{r:?}");
    r.data().as_array().unwrap().len()
}

#[tokio::test]
async fn licenses_from_before_the_index_are_backfilled() {
    let env = Env::start().await;
    let t = env.tenant("backfill").await;
    let (_, lic) = env.license(&t, 1, json!({})).await;
    // Make it look like a license issued before GSI2 existed.
    let tenant = TenantId::parse(t.id.as_str()).unwrap();
    let id = LicenseId::parse(lic["id"].as_str().unwrap()).unwrap();
    let key = shared::store::keys::license(&tenant, &id);
    env.clients
        .dynamodb
        .update_item()
        .table_name(&env.config.table_name)
        .key("PK", aws_sdk_dynamodb::types::AttributeValue::S(key.pk))
        .key("SK", aws_sdk_dynamodb::types::AttributeValue::S(key.sk))
        .update_expression("REMOVE GSI2PK, GSI2SK")
        .send()
        .await
        .unwrap();
    assert_eq!(listed(&env, &t).await, 0);
    let done = env.app.store.backfill_search_index().await.unwrap();
    assert_eq!(done.indexed, 1, "{done:?}");
    assert_eq!(listed(&env, &t).await, 1);
    // Again: nothing left to do.
    let again = env.app.store.backfill_search_index().await.unwrap();
    assert_eq!(again.indexed, 0, "{again:?}");
}
