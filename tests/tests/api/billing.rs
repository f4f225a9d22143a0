//! Money on the local stack: commercial terms on licenses, overage
//! checkouts counted exactly under concurrency, the overage export (CSV,
//! JSON, PDF), and the period close's `invoice.ready` webhooks.

use crate::webhooks::{endpoint, verifies, Receiver};
use harness::{Env, Tenant};
use serde_json::{json, Value};
use std::collections::HashMap;
use time::macros::datetime;

pub(crate) fn terms(crm: &str) -> Value {
    json!({
        "currency": "EUR",
        "commit_qty": 5,
        "commit_fee_minor": 500000,
        "billing_cycle": "monthly",
        "overage_unit_price_minor": 50000,
        "overage_per": "checkout",
        "contract": { "start_date": "2026-01-01", "end_date": "2027-12-31", "auto_renew": true },
        "crm_account_id": crm,
        "crm_opportunity_id": "006-OPP-1"
    })
}

/// A floating policy (5 seats, 15 overage) and a license under it with
/// `commercial` terms (or none).
pub(crate) async fn floating_license(
    env: &Env,
    t: &Tenant,
    email: &str,
    commercial: Option<Value>,
) -> Value {
    let product = format!("bill{}", ulid::Ulid::new().to_string().to_lowercase());
    let r = env
        .post(
            "/v1/manage/products",
            &t.admin,
            json!({ "code": product, "name": "CAD Suite" }),
        )
        .await;
    assert_eq!(r.status, 201, "{r:?}");
    let p = env
        .post(
            "/v1/manage/policies",
            &t.admin,
            json!({ "product": product, "name": "Floating 5", "max_activations": 5,
                    "activation_mode": "floating", "lease_seconds": 900, "max_overage": 15 }),
        )
        .await;
    assert_eq!(p.status, 201, "{p:?}");
    let mut body = json!({ "policy": p.data()["id"], "customer_email": email });
    if let Some(c) = commercial {
        body["commercial"] = c;
    }
    let l = env.post("/v1/manage/licenses", &t.admin, body).await;
    assert_eq!(l.status, 201, "{l:?}");
    l.data().clone()
}

async fn export(env: &Env, t: &Tenant, query: &str) -> reqwest::Response {
    env.http
        .get(format!("{}/v1/manage/billing/overage?{query}", env.base))
        .header("x-api-key", &t.admin)
        .send()
        .await
        .unwrap()
}

pub(crate) fn pdf_text(bytes: &[u8]) -> String {
    let dir = std::env::temp_dir().join(format!("bill-{}", ulid::Ulid::new()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("export.pdf");
    std::fs::write(&path, bytes).unwrap();
    let out = std::process::Command::new("pdftotext")
        .arg("-layout")
        .arg(&path)
        .arg("-")
        .output()
        .expect("pdftotext (Debian poppler-utils; `make test` installs it)");
    assert!(out.status.success(), "pdftotext: {out:?}");
    let _ = std::fs::remove_dir_all(&dir);
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn forty_concurrent_checkouts_bill_exactly_fifteen_overage_checkouts() {
    let env = Env::with_clock(datetime!(2026-12-10 12:00 UTC)).await;
    let t = env.tenant("billing-must").await;
    let lic = floating_license(&env, &t, "buyer@acme.example", Some(terms("ACME-001"))).await;
    let key = lic["key"].as_str().unwrap().to_string();
    assert_eq!(lic["commercial"]["crm_account_id"], "ACME-001");
    // A license without terms, with overage of its own: never in the export.
    let other = floating_license(&env, &t, "nobody@acme.example", None).await;
    let other_key = other["key"].as_str().unwrap().to_string();
    for i in 0..7 {
        let r = env.activate(&t, &other_key, &format!("x-{i}")).await;
        assert_eq!(r.status, 201, "{r:?}");
    }

    let reqs = (0..40).map(|i| {
        let (env, t, key) = (&env, &t, &key);
        async move { env.activate(t, key, &format!("seat-{i}")).await }
    });
    let r = futures::future::join_all(reqs).await;
    let granted: Vec<_> = r.iter().filter(|r| r.status == 201).collect();
    let overage: Vec<_> = granted
        .iter()
        .filter(|r| r.data()["overage"] == true)
        .collect();
    assert_eq!(
        (granted.len(), overage.len()),
        (20, 15),
        "{:?}",
        r.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    // A renewal (the same fingerprint again) and a heartbeat are not new checkouts.
    let fp = overage[0].data()["fingerprint"]
        .as_str()
        .unwrap()
        .to_string();
    let again = env.activate(&t, &key, &fp).await;
    assert_eq!(again.status, 200, "{again:?}");
    let hb = env
        .post(
            &format!(
                "/v1/integration/activations/{}/heartbeat",
                overage[0].data()["id"].as_str().unwrap()
            ),
            &t.integration,
            json!({}),
        )
        .await;
    assert_eq!(hb.status, 200, "{hb:?}");

    let q = "start_date=2026-12-01&end_date=2026-12-31";
    let csv = export(&env, &t, &format!("{q}&format=csv")).await;
    assert_eq!(csv.status(), 200);
    assert!(csv.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    let csv = csv.text().await.unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "CRM_Account_ID,Customer_Name,Product,Total_Overage_Checkouts,Total_Cost,Currency,Billing_Period"
    );
    assert_eq!(lines.len(), 2, "one license with terms, one month: {csv}");
    assert!(lines[1].ends_with(",15,7500.00,EUR,2026-12"), "{csv}");
    assert_eq!(
        lines[1],
        "ACME-001,buyer@acme.example,CAD Suite,15,7500.00,EUR,2026-12"
    );

    let j = env
        .get(&format!("/v1/manage/billing/overage?{q}"), &t.admin)
        .await;
    assert_eq!(j.status, 200, "{j:?}");
    let d = j.data();
    assert_eq!(d["vendor_id"], t.id.as_str());
    assert_eq!(
        d["period"],
        json!({ "start": "2026-12-01", "end": "2026-12-31" })
    );
    assert_eq!(d["currency"], "EUR");
    assert_eq!(d["total_overage_revenue"], "7500.00");
    let c = &d["customers"][0];
    assert_eq!(c["crm_account_id"], "ACME-001");
    assert_eq!(c["customer_name"], "buyer@acme.example");
    let p = &c["products"][0];
    assert_eq!(p["license_id"], lic["id"]);
    assert_eq!(p["product_name"], "CAD Suite");
    assert_eq!(p["overage_checkouts"], 15);
    assert_eq!(p["overage_cost"], "7500.00");
    assert_eq!(p["commit_fee"], "5000.00");
    // total_billable = commit fee + overage cost, exactly.
    assert_eq!(p["total_billable"], "12500.00");
    assert_eq!(d["total_billable"], "12500.00");

    // Filtered by another CRM account: nothing.
    let none = env
        .get(
            &format!("/v1/manage/billing/overage?{q}&customer_crm_id=OTHER"),
            &t.admin,
        )
        .await;
    assert_eq!(none.data()["customers"], json!([]), "{none:?}");

    let pdf = export(&env, &t, &format!("{q}&format=pdf")).await;
    assert_eq!(pdf.status(), 200);
    assert_eq!(pdf.headers()["content-type"], "application/pdf");
    let bytes = pdf.bytes().await.unwrap();
    assert!(bytes.starts_with(b"%PDF-"));
    let text = pdf_text(&bytes);
    for want in [
        "Customer: buyer@acme.example",
        "CRM account: ACME-001",
        "CAD Suite",
        "Commit: 5 seats",
        "Overage checkouts beyond 5",
        "7500.00 EUR",
        "Total (EUR): 12500.00 EUR",
    ] {
        assert!(text.contains(want), "{want:?} not in the PDF text:\n{text}");
    }
}

#[tokio::test]
async fn terms_are_validated_audited_shown_and_removable() {
    let env = Env::start().await;
    let t = env.tenant("billing-terms").await;
    let lic = floating_license(&env, &t, "terms@acme.example", None).await;
    let id = lic["id"].as_str().unwrap();
    assert_eq!(lic["commercial"], Value::Null);
    let path = format!("/v1/manage/licenses/{id}");

    let mut bad_currency = terms("A");
    bad_currency["currency"] = json!("EURO");
    let mut negative = terms("A");
    negative["commit_fee_minor"] = json!(-1);
    let mut dates = terms("A");
    dates["contract"]["end_date"] = json!("2025-01-01");
    let mut cycle = terms("A");
    cycle["billing_cycle"] = json!("weekly");
    let mut float = terms("A");
    float["overage_unit_price_minor"] = json!(500.5);
    for (body, field) in [
        (bad_currency, "currency"),
        (negative, "commit_fee_minor"),
        (dates, "end_date"),
        (cycle, "billing_cycle"),
        (float, "overage_unit_price_minor"),
    ] {
        let r = env
            .patch(&path, &t.admin, json!({ "commercial": body }))
            .await;
        assert_eq!(r.status, 422, "{field}: {r:?}");
        assert!(r.text.contains(field), "{field}: {r:?}");
    }
    assert_eq!(
        env.get(&path, &t.admin).await.data()["commercial"],
        Value::Null
    );

    let r = env
        .patch(&path, &t.admin, json!({ "commercial": terms("CRM-9") }))
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.data()["commercial"]["commit_fee_minor"], 500000);
    assert_eq!(r.data()["commercial"]["currency"], "EUR");
    let got = env.get(&path, &t.admin).await;
    assert_eq!(got.data()["commercial"], terms("CRM-9"));
    let audit = env.get("/v1/manage/audit-events", &t.admin).await;
    let codes: Vec<&str> = audit
        .data()
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["target_id"] == id)
        .map(|e| e["code"].as_str().unwrap())
        .collect();
    assert!(codes.contains(&"LICENSE.COMMERCIAL_UPDATED"), "{codes:?}");

    let q = "/v1/manage/billing/overage?start_date=2026-11-01&end_date=2026-12-31";
    let e = env.get(q, &t.admin).await;
    let rows = &e.data()["customers"][0]["products"];
    assert_eq!(rows.as_array().unwrap().len(), 2, "two months: {e:?}");
    assert_eq!(rows[0]["billing_period"], "2026-11");
    assert_eq!(rows[0]["total_billable"], "5000.00");

    let r = env
        .patch(&path, &t.admin, json!({ "commercial": null }))
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.data()["commercial"], Value::Null);
    let e = env.get(q, &t.admin).await;
    assert_eq!(e.data()["customers"], json!([]), "{e:?}");

    for bad in [
        "start_date=2026-12-01",
        "start_date=2026-12-31&end_date=2026-12-01",
        "start_date=2020-01-01&end_date=2026-12-01",
        "start_date=2026-12-01&end_date=2026-12-31&format=xml",
        "start_date=2026-13-01&end_date=2026-12-31",
    ] {
        let r = env
            .get(&format!("/v1/manage/billing/overage?{bad}"), &t.admin)
            .await;
        assert_eq!(r.status, 422, "{bad}: {r:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn closing_a_period_three_times_emits_one_signed_invoice_per_license() {
    let env = Env::with_webhooks().await;
    let t = env.tenant("billing-close").await;
    let (recv, url) = Receiver::start(&[]).await;
    let (_, secret) = endpoint(&env, &t, &url, json!(["invoice.ready"])).await;
    let a = floating_license(&env, &t, "a@acme.example", Some(terms("CRM-A"))).await;
    let b = floating_license(&env, &t, "b@acme.example", Some(terms("CRM-B"))).await;
    floating_license(&env, &t, "c@acme.example", None).await;
    let op = env.operator_token().await;

    // The month in progress cannot be closed.
    let now = time::OffsetDateTime::now_utc();
    let open = format!("{:04}-{:02}", now.year(), u8::from(now.month()));
    let r = env
        .operator(
            "POST",
            "/v1/platform/billing/close-period",
            &op,
            Some(&json!({ "period": open })),
        )
        .await;
    assert_eq!(r.status, 422, "{r:?}");
    assert_eq!(r.code(), "PERIOD_NOT_ENDED");

    let body = json!({ "period": "2026-11" });
    let close = || {
        env.operator(
            "POST",
            "/v1/platform/billing/close-period",
            &op,
            Some(&body),
        )
    };
    let first = close().await;
    assert_eq!(first.status, 200, "{first:?}");
    assert_eq!(first.data()["invoices"], 2, "{first:?}");
    let (x, y) = futures::join!(close(), close());
    for r in [&x, &y] {
        assert_eq!(r.status, 200, "{r:?}");
        assert_eq!(r.data()["invoices"], 0, "{r:?}");
        assert_eq!(r.data()["already_closed"], 2, "{r:?}");
    }

    // The operator's command line closes through the same code: nothing more.
    let admin = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../target/debug/licensing-admin"
    );
    let out = std::process::Command::new(admin)
        .args(["billing", "close-period", "--period", "2026-11", "--tenant"])
        .arg(&t.id)
        .env("TABLE_NAME", &env.config.table_name)
        .output()
        .expect("licensing-admin (built with the workspace)");
    assert!(out.status.success(), "{out:?}");
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (&summary["invoices"], &summary["already_closed"]),
        (&json!(0), &json!(2)),
        "{summary}"
    );

    let got = recv.until("two invoices", |g| g.len() >= 2).await;
    env.webhooks_settled().await;
    let got_all = recv.got();
    assert_eq!(got_all.len(), 2, "exactly one per license: {got:?}");
    let mut by_license: HashMap<String, Value> = HashMap::new();
    for g in &got_all {
        assert!(verifies(&secret, g), "signed with the endpoint's secret");
        let ev = g.json();
        assert_eq!(ev["type"], "invoice.ready");
        let d = ev["data"].clone();
        by_license.insert(d["license_id"].as_str().unwrap().to_string(), d);
    }
    let inv = &by_license[a["id"].as_str().unwrap()];
    assert_eq!(inv["period"], "2026-11");
    assert_eq!(inv["crm_account_id"], "CRM-A");
    assert_eq!(inv["currency"], "EUR");
    assert_eq!(
        inv["line_items"],
        json!([{ "description": "Commit: 5 seats (monthly)", "quantity": 1,
                 "unit_price": "5000.00", "amount": "5000.00" }])
    );
    assert_eq!(inv["total"], "5000.00");
    assert_eq!(
        by_license[b["id"].as_str().unwrap()]["crm_account_id"],
        "CRM-B"
    );
}

/// The export for a tenant with 10,000 licenses under commercial terms, each
/// with overage in the month: seeded straight into the table (the index
/// items and counters the seat transactions would write), then exported
/// page by page as JSON, CSV and PDF. Run by hand (`make itest
/// T='billing::export_of_10000 --include-ignored'`); the figures are in
/// docs/benchmarks.md.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore]
async fn export_of_10000_licenses() {
    use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};
    use shared::domain::billing::BilledLicense;
    use shared::ids::{Email, LicenseId, LicenseKey, ProductCode, TenantId};
    use shared::store::keys;
    const N: usize = 10_000;
    let env = Env::start().await;
    let t = env.tenant("billing-bench").await;
    let tid = TenantId::parse(&t.id).unwrap();
    let one = floating_license(&env, &t, "first@acme.example", Some(terms("CRM-0"))).await;
    let product = ProductCode::parse(one["product"].as_str().unwrap()).unwrap();
    let commercial: shared::domain::billing::CommercialTerms =
        serde_json::from_value(terms("CRM-X")).unwrap();
    let seeded = std::time::Instant::now();
    let mut writes = Vec::new();
    for i in 1..N {
        let id = LicenseId::derive(&tid, &LicenseKey::generate());
        let mut c = commercial.clone();
        c.crm_account_id = Some(format!("CRM-{:05}", i % 2000));
        let entry = BilledLicense {
            license_id: id.clone(),
            product: product.clone(),
            customer_email: Email::normalise(&format!("buyer{i}@acme.example")).unwrap(),
            commercial: c,
            organization: None,
        };
        let k = keys::commercial_index(&tid, &id);
        let mut item: std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue> =
            serde_dynamo::to_item(&entry).unwrap();
        item.insert(
            keys::PK.into(),
            aws_sdk_dynamodb::types::AttributeValue::S(k.pk),
        );
        item.insert(
            keys::SK.into(),
            aws_sdk_dynamodb::types::AttributeValue::S(k.sk),
        );
        writes.push(item);
        let k = keys::overage_checkouts(&tid, &id, "2026-12");
        let counter = json!({ "license_id": id, "period": "2026-12", "overage_checkouts": i % 16 });
        let mut item: std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue> =
            serde_dynamo::to_item(&counter).unwrap();
        item.insert(
            keys::PK.into(),
            aws_sdk_dynamodb::types::AttributeValue::S(k.pk),
        );
        item.insert(
            keys::SK.into(),
            aws_sdk_dynamodb::types::AttributeValue::S(k.sk),
        );
        writes.push(item);
    }
    for chunk in writes.chunks(25) {
        let reqs: Vec<WriteRequest> = chunk
            .iter()
            .map(|i| {
                WriteRequest::builder()
                    .put_request(
                        PutRequest::builder()
                            .set_item(Some(i.clone()))
                            .build()
                            .unwrap(),
                    )
                    .build()
            })
            .collect();
        let out = env
            .clients
            .dynamodb
            .batch_write_item()
            .request_items(env.config.table_name.clone(), reqs)
            .send()
            .await
            .unwrap();
        assert!(out.unprocessed_items.unwrap_or_default().is_empty());
    }
    eprintln!("seeded {N} licenses in {:?}", seeded.elapsed());

    let q = "start_date=2026-12-01&end_date=2026-12-31";
    for format in ["json", "csv", "pdf"] {
        let started = std::time::Instant::now();
        let (mut rows, mut bytes, mut pages) = (0usize, 0usize, 0usize);
        let mut cursor: Option<String> = None;
        loop {
            let mut url = format!("{q}&format={format}");
            if let Some(c) = &cursor {
                url.push_str(&format!("&cursor={c}"));
            }
            let r = export(&env, &t, &url).await;
            assert_eq!(r.status(), 200);
            cursor = r
                .headers()
                .get("x-next-cursor")
                .map(|v| v.to_str().unwrap().to_string());
            let body = r.bytes().await.unwrap();
            bytes += body.len();
            pages += 1;
            rows += match format {
                "json" => {
                    let v: Value = serde_json::from_slice(&body).unwrap();
                    v["data"]["customers"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|c| c["products"].as_array().unwrap().len())
                        .sum::<usize>()
                }
                "csv" => {
                    body.split(|b| *b == b'\n')
                        .filter(|l| !l.is_empty())
                        .count()
                        - 1
                }
                _ => 0,
            };
            if cursor.is_none() {
                break;
            }
        }
        if format != "pdf" {
            assert_eq!(rows, N, "{format}");
        }
        eprintln!(
            "export {format}: {N} licenses, {pages} pages, {bytes} bytes, {:?}",
            started.elapsed()
        );
    }
}

/// The tenant's Stripe API key (for billing meters): stored in Secrets
/// Manager, never echoed, audited; a malformed key changes nothing.
#[tokio::test]
async fn the_stripe_api_key_is_stored_never_echoed() {
    let env = Env::start().await;
    let t = env.tenant("billing-stripe").await;
    let tid = shared::ids::TenantId::parse(&t.id).unwrap();
    let key = "sk_test_51Bill0123456789abcdefXYZ";
    let (envr, admin) = (&env, t.admin.as_str());
    let put = |body: Value| async move {
        envr.send(
            "PUT",
            "/v1/manage/integrations/stripe",
            Some(admin),
            Some(&body),
        )
        .await
    };
    for bad in [
        json!({}),
        json!({ "api_key": "pk_live_0123456789abcdef" }),
        json!({ "api_key": "sk_test_short" }),
        json!({ "api_key": key, "webhook_secret": "whsec_short" }),
    ] {
        let r = put(bad.clone()).await;
        assert_eq!(r.status, 422, "{bad}: {r:?}");
    }
    assert_eq!(env.app.webhook_secrets.api_key(&tid).await.unwrap(), None);
    let r = put(json!({ "api_key": key })).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert!(!r.text.contains(key), "never echoed: {}", r.text);
    assert_eq!(r.data()["api_key_updated"], true);
    assert_eq!(r.data()["webhook_secret_updated"], false);
    assert_eq!(
        env.app
            .webhook_secrets
            .api_key(&tid)
            .await
            .unwrap()
            .as_deref(),
        Some(key)
    );
    let audit = env.get("/v1/manage/audit-events", &t.admin).await;
    assert!(!audit.text.contains(key));
    assert!(
        audit.text.contains("INTEGRATION.STRIPE_UPDATED"),
        "{audit:?}"
    );
}
