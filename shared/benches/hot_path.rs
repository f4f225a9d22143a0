//! The CPU side of a warm request, without I/O: what each request costs on
//! top of its DynamoDB round trip. Run with `cargo bench -p licensing-shared`
//! (release profile); `scripts/bench-hot-path.sh` writes the figures into
//! docs/benchmarks.md. A plain harness: each case runs in batches for about a
//! second and the median batch gives nanoseconds per operation.

use shared::crypto::Pepper;
use shared::domain::*;
use shared::ids::*;
use shared::views::license_view_parts;
use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::{Duration, Instant};
use time::macros::datetime;

fn measure(name: &str, mut f: impl FnMut()) -> (String, f64) {
    // Warm up, then size a batch to ~10 ms.
    let mut batch = 1u64;
    loop {
        let t = Instant::now();
        for _ in 0..batch {
            f();
        }
        if t.elapsed() > Duration::from_millis(10) {
            break;
        }
        batch *= 2;
    }
    let mut samples = Vec::new();
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(1) || samples.len() < 10 {
        let t = Instant::now();
        for _ in 0..batch {
            f();
        }
        samples.push(t.elapsed().as_nanos() as f64 / batch as f64);
    }
    samples.sort_by(|a, b| a.total_cmp(b));
    (name.to_string(), samples[samples.len() / 2])
}

fn main() {
    let tenant = TenantId::parse("acme").unwrap();
    let pepper = Pepper::new(b"0123456789abcdef0123456789abcdef".to_vec());
    let secret = ApiKeySecret::generate(&tenant);
    let key_string = secret.expose();
    let stored_hash = pepper.hash(secret.secret_bytes());

    let mut ents = Entitlements::new();
    ents.insert(
        Feature::parse("export-4k").unwrap(),
        EntitlementSpec::Boolean {},
    );
    ents.insert(
        Feature::parse("api-calls").unwrap(),
        EntitlementSpec::Metered {
            limit: Some(1000),
            period: Period::Month,
            overage: Overage::Deny,
            aggregation: Aggregation::Sum,
            unique_by: None,
            stripe_meter_event_name: None,
            overage_unit_price_minor: None,
        },
    );
    let now = datetime!(2026-11-23 12:00 UTC);
    let policy = Policy {
        id: PolicyId::generate(),
        product: ProductCode::parse("desktop").unwrap(),
        name: "Pro".into(),
        max_activations: 5,
        duration_days: Some(365),
        entitlements: ents,
        grace_period_days: 7,
        stripe_price_ids: vec![],
        terms: SeatTerms::default(),
        client_auth: true,
        max_file_ttl_seconds: 1_209_600,
        created_at: now,
        updated_at: now,
    };
    let key = LicenseKey::generate();
    let mut license = License {
        id: LicenseId::derive(&tenant, &key),
        key: key.clone(),
        product: policy.product.clone(),
        policy: policy.id.clone(),
        customer_email: Email::normalise("ann@example.com").unwrap(),
        status: LicenseStatus::Active,
        expires_at: None,
        expires_epoch: None,
        grace_until: None,
        grace_epoch: None,
        max_activations: 5,
        seats_used: 2,
        overage_used: 0,
        terms: SeatTerms::default(),
        metadata: Default::default(),
        entitlement_overrides: BTreeMap::new(),
        stripe: Default::default(),
        stripe_event_at: 0,
        email_unverified: false,
        commercial: None,
        organization: None,
        created_at: now,
        updated_at: now,
    };
    license.set_expiry(Some(datetime!(2027-11-23 12:00 UTC)));
    let usage = UsageSnapshot::new();
    let body = br#"{"fingerprint":"machine-1","product":"desktop",
        "entitlements":["export-4k","api-calls"]}"#;
    let path = format!("/v1/integration/licenses/{key}/validate");
    let signing = shared::crypto::SigningKeys::new(b"bench-master-secret".to_vec());
    let answer = serde_json::json!({
        "data": { "valid": true, "code": "VALID", "license": license_view_parts(&license, Some(&policy), Some(&usage), None, now) },
        "meta": { "request_id": "req_01M8P8S6AH5P5DXM093YFR6CVY", "api_version": "v1" },
    })
    .to_string();

    let results = vec![
        measure(
            "API key: parse + HMAC-SHA256 verify (constant time)",
            || {
                let s = ApiKeySecret::parse(black_box(&key_string)).unwrap();
                black_box(pepper.verify(s.secret_bytes(), &stored_hash));
            },
        ),
        measure("route match (the whole route table)", || {
            black_box(shared::http::route_for("POST", black_box(&path)));
        }),
        measure(
            "validate body: JSON parse into the validation scope",
            || {
                #[derive(serde::Deserialize)]
                #[allow(dead_code)]
                struct B {
                    fingerprint: Option<Fingerprint>,
                    product: Option<ProductCode>,
                    #[serde(default)]
                    entitlements: Vec<Feature>,
                }
                black_box(shared::http::request::json::<B>(black_box(body)).unwrap());
            },
        ),
        measure("validate: evaluate + license view + envelope JSON", || {
            let scope = ValidationScope {
                fingerprint: None,
                product: Some(policy.product.clone()),
                entitlements: vec![Feature::parse("export-4k").unwrap()],
            };
            let code = evaluate(&license, &policy, None, &scope, now);
            let view = license_view_parts(&license, Some(&policy), Some(&usage), None, now);
            let reply = shared::http::envelope::Reply::ok(
                serde_json::json!({ "valid": true, "code": code, "license": view }),
            );
            black_box(shared::http::envelope::render(reply, "req_bench", None));
        }),
        measure(
            "signed answer: SHA-256 of the body + Ed25519 signature (key cached)",
            || {
                let msg = shared::crypto::answer_message(&shared::crypto::Exchange {
                    method: "POST",
                    path: black_box(&path),
                    tenant: "acme",
                    date: "2026-11-30T12:00:00.000Z",
                    nonce: "a-client-nonce-0123456789abcdef",
                    request_body: black_box(
                        br#"{"fingerprint":"8c1f-ann-laptop","product":"desktop"}"#,
                    ),
                    response_body: black_box(answer.as_bytes()),
                });
                black_box(signing.sign("acme", 1, msg.as_bytes()));
            },
        ),
        measure("license item: serde_dynamo to_item + from_item", || {
            let item = serde_dynamo::to_item::<
                _,
                std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>,
            >(black_box(&license))
            .unwrap();
            black_box(serde_dynamo::from_item::<_, License>(item).unwrap());
        }),
    ];
    println!("| case | ns per operation (median) |");
    println!("|---|---|");
    for (name, ns) in results {
        println!("| {name} | {ns:.0} |");
    }
}
