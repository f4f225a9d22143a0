//! Money, the remaining parts: metered overage priced per unit (export,
//! catalog and `invoice.ready`), the organization's name in the export,
//! "cost this period" in the organization's catalog and its "Costs" page,
//! the Stripe API key never echoed nor logged, and licenses granted by the
//! vendor's CRM id.

use crate::webhooks::{endpoint, Receiver};
use harness::{Env, Org, Resp, Tenant, Visitor};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};

/// The month in progress (the tests run on the system clock).
fn this_month() -> String {
    let now = time::OffsetDateTime::now_utc();
    format!("{:04}-{:02}", now.year(), u8::from(now.month()))
}

fn terms(currency: &str, fee: u64, crm: &str) -> Value {
    json!({
        "currency": currency, "commit_qty": 2, "commit_fee_minor": fee,
        "billing_cycle": "monthly", "overage_unit_price_minor": 50000, "overage_per": "checkout",
        "contract": { "start_date": "2026-01-01", "end_date": "2027-12-31", "auto_renew": true },
        "crm_account_id": crm
    })
}

/// A floating policy (2 seats + 3 overage) whose two metrics are priced per
/// unit beyond their monthly limits — `api-calls` (sum, 100, EUR 0.25) and
/// `active-users` (unique_count of `user_id`, 2, EUR 7.00) — and a license
/// of it granted to `org` with commit terms. Returns (license id, key,
/// product code).
async fn priced_grant(env: &Env, t: &Tenant, org: &Org, crm: &str) -> (String, String, String) {
    let code = format!("cad{}", &ulid::Ulid::new().to_string().to_lowercase()[18..]);
    let r = env
        .post(
            "/v1/manage/products",
            &t.admin,
            json!({ "code": code, "name": "CAD Suite" }),
        )
        .await;
    assert_eq!(r.status, 201, "{r:?}");
    let p = env
        .post(
            "/v1/manage/policies",
            &t.admin,
            json!({ "product": code, "name": "Pool", "max_activations": 2,
                    "activation_mode": "floating", "lease_seconds": 900, "max_overage": 3,
                    "entitlements": {
                        "api-calls": { "type": "metered", "limit": 100, "period": "month",
                                       "overage": "allow", "overage_unit_price_minor": 25 },
                        "active-users": { "type": "metered", "limit": 2, "period": "month",
                                          "overage": "allow", "aggregation": "unique_count",
                                          "unique_by": "user_id", "overage_unit_price_minor": 700 },
                    } }),
        )
        .await;
    assert_eq!(p.status, 201, "{p:?}");
    assert_eq!(
        p.data()["entitlements"]["api-calls"]["overage_unit_price_minor"],
        25
    );
    let l = env
        .post(
            "/v1/manage/licenses",
            &t.admin,
            json!({ "policy": p.data()["id"], "customer": { "id": org.id },
                    "commercial": terms("EUR", 200000, crm) }),
        )
        .await;
    assert_eq!(l.status, 201, "{l:?}");
    (
        l.data()["id"].as_str().unwrap().to_string(),
        l.data()["key"].as_str().unwrap().to_string(),
        code,
    )
}

/// Usage and checkouts on the priced license: 130 api-calls (13 records at
/// once), 5 distinct users in 7 records, 4 checkouts on 2 seats (2 overage).
async fn use_it(env: &Env, t: &Tenant, org: &Org, key: &str, code: &str) {
    let calls =
        futures::future::join_all((0..13).map(|_| env.record(t, key, "api-calls", 10))).await;
    for r in &calls {
        assert_eq!(r.status, 201, "{r:?}");
    }
    for u in ["u1", "u2", "u3", "u1", "u4", "u5", "u2"] {
        let body = json!({ "metadata": { "user_id": u } });
        let r = env.record_with(t, key, "active-users", 1, body).await;
        assert!(r.status == 201 || r.status == 200, "{r:?}");
    }
    for i in 0..4 {
        let body = json!({ "product": code, "user": format!("engineer{i}") });
        let r = env
            .send_raw(
                "POST",
                "/v1/customer/checkouts",
                &[
                    ("x-api-key", org.admin_key.as_str()),
                    ("content-type", "application/json"),
                ],
                body.to_string().into_bytes(),
            )
            .await;
        assert_eq!(r.status, 201, "{r:?}");
        assert_eq!(r.data()["overage"], i >= 2, "{r:?}");
    }
}

async fn export(env: &Env, t: &Tenant, format: &str) -> reqwest::Response {
    let m = this_month();
    let r = env
        .http
        .get(format!(
            "{}/v1/manage/billing/overage?start_date={m}-01&end_date={m}-28&format={format}",
            env.base
        ))
        .header("x-api-key", &t.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r
}

fn metered() -> Value {
    json!([
        { "metric": "active-users", "used": 5, "limit": 2, "overage_units": 3,
          "unit_price": "7.00", "cost": "21.00" },
        { "metric": "api-calls", "used": 130, "limit": 100, "overage_units": 30,
          "unit_price": "0.25", "cost": "7.50" },
    ])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn metered_overage_is_priced_in_the_export_the_catalog_the_costs_page_and_the_invoice() {
    let env = Env::with_webhooks().await;
    let t = env.tenant("costs-vendor").await;
    let suffix = &ulid::Ulid::new().to_string().to_lowercase()[20..];
    let org_name = format!("Daimler Trucks, {suffix}");
    let org = env
        .customer_org_at(
            &format!("daimler-{suffix}"),
            &org_name,
            &format!("daimler-{suffix}.example"),
        )
        .await;
    let (recv, url) = Receiver::start(&[]).await;
    endpoint(&env, &t, &url, json!(["invoice.ready"])).await;
    let (license_id, key, code) = priced_grant(&env, &t, &org, "MB-001").await;
    use_it(&env, &t, &org, &key, &code).await;
    let month = this_month();

    // JSON: the organization names the customer; every overage is priced.
    let v: Value = export(&env, &t, "json").await.json().await.unwrap();
    let c = &v["data"]["customers"][0];
    assert_eq!(c["customer_name"], org_name.as_str(), "{v}");
    assert_eq!(c["customer_id"], org.id.as_str());
    assert_eq!(c["crm_account_id"], "MB-001");
    let p = &c["products"][0];
    assert_eq!(p["license_id"], license_id.as_str());
    assert_eq!(p["overage_checkouts"], 2);
    assert_eq!(p["checkout_overage_cost"], "1000.00");
    assert_eq!(p["metered_overage"], metered());
    assert_eq!(p["overage_cost"], "1028.50");
    assert_eq!(p["commit_fee"], "2000.00");
    assert_eq!(p["total_billable"], "3028.50");
    assert_eq!(v["data"]["total_overage_revenue"], "1028.50");
    assert_eq!(v["data"]["total_billable"], "3028.50");

    // CSV: the checkout row, then one row per metric beyond its limit.
    let csv = export(&env, &t, "csv").await.text().await.unwrap();
    let name = format!("\"{org_name}\"");
    let want = [
        "CRM_Account_ID,Customer_Name,Product,Total_Overage_Checkouts,Total_Cost,Currency,Billing_Period".to_string(),
        format!("MB-001,{name},CAD Suite,2,1000.00,EUR,{month}"),
        format!("MB-001,{name},CAD Suite / active-users,3,21.00,EUR,{month}"),
        format!("MB-001,{name},CAD Suite / api-calls,30,7.50,EUR,{month}"),
    ];
    assert_eq!(csv.lines().collect::<Vec<_>>(), want, "{csv}");

    // PDF: the metered lines among the line items.
    let pdf = export(&env, &t, "pdf").await.bytes().await.unwrap();
    let text = crate::billing::pdf_text(&pdf);
    assert!(text.contains(&org_name), "{text}");
    assert!(text.contains("Overage api-calls beyond 100"), "{text}");
    assert!(text.contains("7.50 EUR"), "{text}");
    assert!(text.contains("Overage active-users beyond 2"), "{text}");
    assert!(text.contains("21.00 EUR"), "{text}");

    // The organization's catalog: the very figures of the export.
    let cat = env.get("/v1/customer/catalog", &org.admin_key).await;
    assert_eq!(cat.status, 200, "{cat:?}");
    let e = cat.data()[0].clone();
    let cost = &e["cost_this_period"];
    assert_eq!(cost["period"], month.as_str());
    assert_eq!(cost["currency"], p["currency"]);
    assert_eq!(cost["commit_fee"], p["commit_fee"]);
    assert_eq!(cost["overage_checkouts"], p["overage_checkouts"]);
    assert_eq!(cost["checkout_overage_cost"], p["checkout_overage_cost"]);
    assert_eq!(cost["metered_overage"], p["metered_overage"]);
    assert_eq!(cost["overage_cost"], p["overage_cost"]);
    assert_eq!(cost["total"], p["total_billable"]);

    // A second vendor bills in USD: no overage, its commit only.
    let t2 = env.tenant("costs-vendor2").await;
    let l2 = super::billing::floating_license(&env, &t2, "x@y.example", None).await;
    let r = env
        .post(
            "/v1/manage/licenses",
            &t2.admin,
            json!({ "policy": l2["policy"], "customer": { "id": org.id },
                    "commercial": terms("USD", 150000, "D-9") }),
        )
        .await;
    assert_eq!(r.status, 201, "{r:?}");
    let second = r.data()["id"].as_str().unwrap().to_string();

    // The Costs page: per vendor and license, totals per currency.
    let anon = Visitor::new(&env, &org.id).get("/costs").await;
    assert_eq!(anon.status, 303, "{anon:?}");
    let mut v = Visitor::new(&env, &org.id);
    v.cookie = Some(org.session.portal_cookie.clone());
    let page = v.get("/costs").await;
    assert_eq!(page.status, 200, "{page:?}");
    let h = &page.html;
    assert!(h.contains(&format!("Costs {month}")), "{h}");
    let row = between(h, &format!("data-license=\"{license_id}\""), "</tr>");
    for want in [
        "CAD Suite",
        "<td class=\"commit\">2000.00</td>",
        "1028.50",
        "2 overage checkouts: 1000.00",
        "30 api-calls beyond 100: 7.50",
        "3 active-users beyond 2: 21.00",
        "<td class=\"total\">3028.50</td>",
    ] {
        assert!(row.contains(want), "{want} in {row}");
    }
    let row = between(h, &format!("data-license=\"{second}\""), "</tr>");
    assert!(row.contains("<td class=\"total\">1500.00</td>"), "{row}");
    let totals = between(h, "id=\"totals\"", "</section>");
    let eur = between(totals, "data-currency=\"EUR\"", "</tr>");
    assert!(eur.contains("<td class=\"total\">3028.50</td>"), "{eur}");
    assert!(eur.contains("<td class=\"overage\">1028.50</td>"), "{eur}");
    let usd = between(totals, "data-currency=\"USD\"", "</tr>");
    assert!(usd.contains("<td class=\"total\">1500.00</td>"), "{usd}");
    assert!(h.contains(&format!("data-vendor=\"{}\"", t.id)), "{h}");
    assert!(h.contains(&format!("data-vendor=\"{}\"", t2.id)), "{h}");

    // Closing the month: its invoice.ready carries every line, exactly.
    let tid = shared::ids::TenantId::parse(&t.id).unwrap();
    let period = shared::domain::billing::Period::parse(&month).unwrap();
    let after = period.next().first_day().midnight().assume_utc() + time::Duration::hours(1);
    let s = shared::usecases::billing::close_tenant_period(
        &env.app.store.tenant(&tid),
        period,
        "operator",
        "req_costs",
        after,
    )
    .await
    .unwrap();
    assert_eq!(s.invoices, 1, "{s:?}");
    recv.until("the invoice", |g| !g.is_empty()).await;
    env.webhooks_settled().await;
    let got = recv.got();
    assert_eq!(got.len(), 1, "{got:?}");
    let inv = got[0].json()["data"].clone();
    assert_eq!(inv["license_id"], license_id.as_str());
    assert_eq!(
        inv["line_items"],
        json!([
            { "description": "Commit: 2 seats (monthly)", "quantity": 1,
              "unit_price": "2000.00", "amount": "2000.00" },
            { "description": "Overage checkouts beyond 2 seats", "quantity": 2,
              "unit_price": "500.00", "amount": "1000.00" },
            { "description": "Overage active-users beyond 2", "quantity": 3,
              "unit_price": "7.00", "amount": "21.00" },
            { "description": "Overage api-calls beyond 100", "quantity": 30,
              "unit_price": "0.25", "amount": "7.50" },
        ]),
        "{inv}"
    );
    assert_eq!(inv["total"], "3028.50");
}

/// The text of `h` from `start` to the next `end`.
fn between<'a>(h: &'a str, start: &str, end: &str) -> &'a str {
    let at = h.find(start).unwrap_or_else(|| panic!("{start} in {h}"));
    let rest = &h[at..];
    &rest[..rest.find(end).unwrap_or(rest.len())]
}

#[tokio::test]
async fn a_price_on_a_metric_is_refused_unless_it_can_be_billed() {
    let env = Env::start().await;
    let t = env.tenant("costs-valid").await;
    let r = env
        .post(
            "/v1/manage/products",
            &t.admin,
            json!({ "code": "app", "name": "App" }),
        )
        .await;
    assert_eq!(r.status, 201, "{r:?}");
    for (spec, field) in [
        (
            json!({ "type": "metered", "limit": 5, "period": "day", "overage": "allow",
                    "overage_unit_price_minor": 10 }),
            "needs period 'month'",
        ),
        (
            json!({ "type": "metered", "limit": 5, "period": "month",
                    "overage_unit_price_minor": 10 }),
            "needs overage 'allow'",
        ),
        (
            json!({ "type": "metered", "period": "month", "overage": "allow",
                    "aggregation": "last", "overage_unit_price_minor": 10 }),
            "needs aggregation",
        ),
        (
            json!({ "type": "metered", "limit": 5, "period": "month", "overage": "allow",
                    "overage_unit_price_minor": 1_000_000_000_000_001u64 }),
            "must be at most",
        ),
    ] {
        let r = env
            .post(
                "/v1/manage/policies",
                &t.admin,
                json!({ "product": "app", "name": "P", "max_activations": 1,
                        "entitlements": { "calls": spec } }),
            )
            .await;
        assert_eq!((r.status, r.code()), (422, "VALIDATION_ERROR"), "{r:?}");
        let msg = r.json["error"]["message"].as_str().unwrap_or_default();
        assert!(
            msg.contains("entitlements.calls.overage_unit_price_minor") && msg.contains(field),
            "{msg}"
        );
    }
    for bad in [json!(-1), json!(2.5), json!("10")] {
        let r = env
            .post(
                "/v1/manage/policies",
                &t.admin,
                json!({ "product": "app", "name": "P", "max_activations": 1,
                        "entitlements": { "calls": { "type": "metered", "limit": 5,
                            "period": "month", "overage": "allow",
                            "overage_unit_price_minor": bad } } }),
            )
            .await;
        assert_eq!(r.status, 422, "{r:?}");
    }
}

#[tokio::test]
async fn a_license_granted_by_crm_id_reaches_that_organization() {
    let env = Env::start().await;
    let t = env.tenant("costs-crm").await;
    let org = env.customer_org("crmgrant").await;
    let l = super::billing::floating_license(&env, &t, "x@y.example", None).await;
    let policy = l["policy"].clone();

    // Not linked yet: a clear 422 naming what to do.
    let body = json!({ "policy": policy, "customer": { "crm_account_id": "SF-0042" } });
    let r = env
        .post("/v1/manage/licenses", &t.admin, body.clone())
        .await;
    assert_eq!((r.status, r.code()), (422, "CUSTOMER_NOT_FOUND"), "{r:?}");
    assert!(
        r.json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("crm_account_id"),
        "{r:?}"
    );

    let link = env
        .send(
            "PUT",
            &format!("/v1/manage/customers/{}/crm", org.id),
            Some(&t.admin),
            Some(&json!({ "crm_account_id": "SF-0042" })),
        )
        .await;
    assert_eq!(link.status, 200, "{link:?}");
    let r = env
        .post(
            "/v1/manage/licenses",
            &t.admin,
            json!({ "policy": policy, "customer": { "crm_account_id": "SF-0042" },
                    "commercial": terms("EUR", 100000, "SF-0042") }),
        )
        .await;
    assert_eq!(r.status, 201, "{r:?}");
    let id = r.data()["id"].as_str().unwrap().to_string();
    assert_eq!(r.data()["customer_email"], org.admin_email.as_str());
    assert_eq!(
        r.data()["organization"],
        json!({ "id": org.id, "name": org.name })
    );

    let cat = env.get("/v1/customer/catalog", &org.admin_key).await;
    assert_eq!(cat.status, 200, "{cat:?}");
    let found: Vec<&Value> = cat
        .data()
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["license_id"] == id.as_str())
        .collect();
    assert_eq!(found.len(), 1, "{cat:?}");
    assert_eq!(found[0]["vendor"]["id"], t.id.as_str());
    assert_eq!(found[0]["cost_this_period"]["commit_fee"], "1000.00");

    // Another vendor's unlinked CRM id of the same value finds nothing.
    let other = env.tenant("costs-crm-other").await;
    let l = super::billing::floating_license(&env, &other, "x@y.example", None).await;
    let r = env
        .post(
            "/v1/manage/licenses",
            &other.admin,
            json!({ "policy": l["policy"], "customer": { "crm_account_id": "SF-0042" } }),
        )
        .await;
    assert_eq!((r.status, r.code()), (422, "CUSTOMER_NOT_FOUND"), "{r:?}");
}

/// Log lines the service writes while the test runs (the subscriber stays
/// for the binary's life; after the test the lines are dropped).
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>, Arc<std::sync::atomic::AtomicBool>);

impl std::io::Write for Logs {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        if !self.1.load(std::sync::atomic::Ordering::Relaxed) {
            self.0.lock().unwrap().extend_from_slice(b);
        }
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn the_stripe_api_key_is_never_echoed_nor_logged() {
    let logs = Logs::default();
    let sink = logs.clone();
    // The production filter, with the service's own debug lines too.
    let installed = shared::telemetry::init_to(
        move || sink.clone(),
        "info,shared=debug,aws_config=warn,aws_smithy_runtime=warn",
    );
    assert!(
        installed,
        "no other test of this binary installs a subscriber"
    );
    let env = Env::start().await;
    let t = env.tenant("costs-stripe").await;
    let secret = format!("sk_test_{}", ulid::Ulid::new().to_string().to_lowercase());
    let tail = &secret[secret.len() - 12..];
    let path = "/v1/manage/integrations/stripe";
    let mut answers: Vec<Resp> = Vec::new();

    let r = env
        .send(
            "PUT",
            path,
            Some(&t.admin),
            Some(&json!({ "api_key": secret })),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.data()["api_key_updated"], true);
    answers.push(r);
    // Again (a replacement), with a webhook secret beside it.
    let body = json!({ "api_key": secret, "webhook_secret": "whsec_costs0123456789abcdef" });
    let r = env.send("PUT", path, Some(&t.admin), Some(&body)).await;
    assert_eq!(r.status, 200, "{r:?}");
    answers.push(r);
    // Refusals: a malformed key, an unknown field beside the key, a wrong
    // type, another tenant's role (none of these may quote it).
    let bad_key = format!("pk_live_{}", &secret[8..]);
    for body in [
        json!({ "api_key": bad_key }),
        json!({ "api_key": secret, "extra": 1 }),
        json!({ "api_key": [secret] }),
    ] {
        let r = env.send("PUT", path, Some(&t.admin), Some(&body)).await;
        assert_eq!(r.status, 422, "{r:?}");
        answers.push(r);
    }
    let r = env
        .send(
            "PUT",
            path,
            Some(&t.integration),
            Some(&json!({ "api_key": secret })),
        )
        .await;
    assert!(r.status == 401 || r.status == 403, "{r:?}");
    answers.push(r);
    // What a vendor can read back: audit events (the update is audited).
    let r = env.get("/v1/manage/audit-events", &t.admin).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert!(
        r.json.to_string().contains("INTEGRATION.STRIPE_UPDATED"),
        "{r:?}"
    );
    answers.push(r);

    for a in &answers {
        let text = format!("{:?} {}", a.headers, a.json);
        assert!(!text.contains(tail), "the key in an answer: {text}");
        assert!(!text.contains(&secret[8..]), "the key in an answer: {text}");
    }
    let captured = String::from_utf8_lossy(&logs.0.lock().unwrap()).to_string();
    logs.1.store(true, std::sync::atomic::Ordering::Relaxed);
    let first = answers[0].json["meta"]["request_id"].as_str().unwrap();
    assert!(
        captured.contains(first),
        "the capture holds the PUT's log lines"
    );
    assert!(!captured.contains(tail), "the key in the logs");
    assert!(!captured.contains(&bad_key[8..]), "the bad key in the logs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_costs_page_in_chromium() {
    use super::portal_browser::{browser, el, sign_in, text_of};
    use fantoccini::Locator;
    let env = Env::start().await;
    let t = env.tenant("costs-browser").await;
    let org = env.customer_org("costsweb").await;
    let (license_id, key, code) = priced_grant(&env, &t, &org, "MB-WEB").await;
    use_it(&env, &t, &org, &key, &code).await;
    let base = env.base.clone();
    let (_driver, c) = browser(1100, 900).await;
    sign_in(&c, &base, &org.id, &org.admin_email, false).await;
    el(&c, Locator::LinkText("Costs"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let row = format!("tr[data-license='{license_id}']");
    assert_eq!(text_of(&c, &format!("{row} td.total")).await, "3028.50");
    assert_eq!(text_of(&c, &format!("{row} td.commit")).await, "2000.00");
    let overage = text_of(&c, &format!("{row} td.overage")).await;
    for want in [
        "1028.50",
        "2 overage checkouts: 1000.00",
        "30 api-calls beyond 100: 7.50",
        "3 active-users beyond 2: 21.00",
    ] {
        assert!(overage.contains(want), "{want} in {overage}");
    }
    assert_eq!(
        text_of(&c, "#totals tr[data-currency='EUR'] td.total").await,
        "3028.50"
    );
    assert!(text_of(&c, "h1").await.starts_with("Costs "));
    super::portal_browser::shot(&c, "org-costs").await;
}
