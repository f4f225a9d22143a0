//! `licensing-admin conformance`: writes `clients/conformance/cases.json`,
//! the signed answers and license files, valid and tampered, that every
//! client library must judge identically (`clients/conformance/README.md`).
//!
//! Everything is signed by the service's own code (`SigningKeys::answer_signature`,
//! `sign_license_file`) with keys derived from a fixed, published master
//! secret, at fixed times and with fixed nonces: the output is the same on
//! every run, byte for byte, and a test compares it with the committed file.

use serde_json::{json, Value};
use shared::clock::rfc3339;
use shared::crypto::{kid, sha256_hex, Exchange, SigningKeys};
use shared::usecases::licensing::sign_license_file;
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

/// The format of the file (bumped if a field changes meaning).
pub const FORMAT: &str = "licensing-conformance/v1";
/// Where the file lives, from the workspace root.
pub const PATH: &str = "clients/conformance/cases.json";
/// The master secret the keys derive from: published, never a real one.
pub const MASTER: &str = "conformance-master-secret-do-not-use";
/// The tenant every case is for (unless it says otherwise).
const TENANT: &str = "acme";
/// A tenant that is not the verifier's.
const OTHER_TENANT: &str = "globex";
/// The clock verifiers use.
const NOW: OffsetDateTime = datetime!(2026-11-30 12:00 UTC);
/// Pinned key versions; `UNPINNED` signs but is not listed in `keys`.
const PINNED: [u32; 2] = [1, 2];
const UNPINNED: u32 = 3;
const LICENSE_KEY: &str = "SHD02-RH6CA-MVCWT-XQXJT-DCBR3";
const FINGERPRINT: &str = "8c1f-ann-laptop";
const ACTIVATION_ID: &str = "act_1b740f825b92fee48e8c01e978cd2dd451436a6af24e90290aa3";
const LICENSE_ID: &str = "lic_1b740f825b92fee48e8c01e978cd2dd4";
const POLICY_ID: &str = "pol_01m84wyqrgtm28mgks2fxzz6qx";

/// The whole file, as written (pretty JSON, keys in a fixed order, `\n` at the end).
pub fn cases_json() -> String {
    let keys = SigningKeys::new(MASTER.as_bytes().to_vec());
    let mut pinned = serde_json::Map::new();
    for version in PINNED {
        pinned.insert(kid(version), json!(b64(&keys.public_key(TENANT, version))));
    }
    let doc = json!({
        "format": FORMAT,
        "generator": "licensing-admin conformance (tools/licensing-admin/src/conformance.rs)",
        "now": rfc3339(NOW),
        "max_clock_skew_seconds": 300,
        "tenant": TENANT,
        "keys": pinned,
        "answers": answers(&keys),
        "files": files(&keys),
    });
    let mut out = String::new();
    write_pretty(&mut out, &doc, 0);
    out.push('\n');
    out
}

fn b64(bytes: &[u8]) -> String {
    // Standard base64 with padding, without a dependency for it: the
    // service's public keys are listed this way.
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A fixed nonce per case: 64 hex characters, like the clients send.
fn nonce(name: &str) -> String {
    sha256_hex(format!("conformance nonce {name}").as_bytes())
}

fn meta(name: &str) -> Value {
    let id = sha256_hex(name.as_bytes()).to_uppercase();
    json!({ "api_version": "v1", "request_id": format!("req_01M8P9{}", &id[..20]) })
}

fn error_body(name: &str, status: u16, code: &str, kind: &str, message: &str) -> String {
    json!({
        "error": { "code": code, "message": message, "status": status, "type": kind },
        "meta": meta(name),
    })
    .to_string()
}

/// One request as the client sent it and the answer as the client received it.
#[derive(Clone)]
struct Exch {
    method: &'static str,
    path: String,
    tenant: String,
    nonce: String,
    request_body: String,
    status: u16,
    response_body: String,
    date: OffsetDateTime,
}

/// What the signer signed, when it differs from what the client holds.
#[derive(Default)]
struct Tamper {
    path: Option<String>,
    tenant: Option<String>,
    nonce: Option<String>,
    request_body: Option<String>,
    response_body: Option<String>,
    /// The signed date, when the header shows another.
    date: Option<OffsetDateTime>,
    version: Option<u32>,
    /// A replacement for the `X-Signature` header built from the genuine one.
    header: Option<fn(&str) -> Option<String>>,
}

fn answer_case(
    keys: &SigningKeys,
    name: &str,
    reason: &str,
    note: &str,
    e: &Exch,
    t: Tamper,
) -> Value {
    let signed_date = rfc3339(t.date.unwrap_or(e.date));
    let exchange = Exchange {
        method: e.method,
        path: t.path.as_deref().unwrap_or(&e.path),
        tenant: t.tenant.as_deref().unwrap_or(&e.tenant),
        date: &signed_date,
        nonce: t.nonce.as_deref().unwrap_or(&e.nonce),
        request_body: t
            .request_body
            .as_deref()
            .unwrap_or(&e.request_body)
            .as_bytes(),
        response_body: t
            .response_body
            .as_deref()
            .unwrap_or(&e.response_body)
            .as_bytes(),
    };
    let version = t.version.unwrap_or(1);
    let signature = keys.answer_signature(exchange.tenant, version, &exchange);
    let mut headers = serde_json::Map::new();
    let header = match t.header {
        Some(rewrite) => rewrite(&signature),
        None => Some(signature),
    };
    if let Some(header) = header {
        headers.insert("x-signature".into(), json!(header));
    }
    headers.insert("x-signature-date".into(), json!(rfc3339(e.date)));
    json!({
        "name": name,
        "expect": if reason == "valid" { "valid" } else { "invalid" },
        "reason": reason,
        "note": note,
        "request": {
            "method": e.method, "path": e.path, "tenant": e.tenant, "nonce": e.nonce,
            "body": e.request_body,
        },
        "response": { "status": e.status, "headers": headers, "body": e.response_body },
    })
}

fn answers(keys: &SigningKeys) -> Vec<Value> {
    let date = NOW - Duration::milliseconds(1500);
    let validate_path = format!("/v1/integration/licenses/{LICENSE_KEY}/validate");
    let license = json!({
        "entitlements": { "export-4k": { "type": "boolean" } },
        "expires_at": null, "id": LICENSE_ID, "key": LICENSE_KEY, "policy": POLICY_ID,
        "product": "desktop", "seats": { "limit": 3, "used": 1 }, "status": "active",
    });
    let validate_answer = |name: &str, valid: bool| {
        let (code, detail) = if valid {
            ("VALID", "The license is valid.")
        } else {
            (
                "NO_ACTIVATION",
                "The fingerprint is not activated on this license.",
            )
        };
        json!({
            "data": { "code": code, "detail": detail, "license": license, "valid": valid },
            "meta": meta(name),
        })
        .to_string()
    };
    let validate = |name: &str| Exch {
        method: "POST",
        path: validate_path.clone(),
        tenant: TENANT.into(),
        nonce: nonce(name),
        request_body: json!({ "fingerprint": FINGERPRINT, "product": "desktop" }).to_string(),
        status: 200,
        response_body: validate_answer(name, true),
        date,
    };
    let mut out = Vec::new();
    let mut add = |name: &str, reason: &str, note: &str, e: Exch, t: Tamper| {
        out.push(answer_case(keys, name, reason, note, &e, t));
    };

    // Genuine answers.
    add(
        "validate_200",
        "valid",
        "A license-key validate answered 200 VALID, signed with v1.",
        validate("validate_200"),
        Tamper::default(),
    );
    let activate_body = json!({
        "fingerprint": FINGERPRINT, "license_key": LICENSE_KEY, "name": "Zoë's laptop",
    })
    .to_string();
    let activation = json!({
        "data": {
            "created_at": "2026-11-30T11:59:58.412Z", "deactivated_at": null,
            "fingerprint": FINGERPRINT, "hostname": null, "id": ACTIVATION_ID,
            "last_activated_at": "2026-11-30T11:59:58.412Z", "last_heartbeat_at": null,
            "lease_expires_at": null, "license_id": LICENSE_ID, "metadata": {},
            "name": "Zoë's laptop", "overage": false, "status": "active",
        },
        "meta": meta("activate_201"),
    })
    .to_string();
    add(
        "activate_201",
        "valid",
        "An activation answered 201; request and answer bodies hold non-ASCII text (hash their UTF-8 bytes).",
        Exch {
            method: "POST",
            path: "/v1/integration/activations".into(),
            tenant: TENANT.into(),
            nonce: nonce("activate_201"),
            request_body: activate_body,
            status: 201,
            response_body: activation,
            date,
        },
        Tamper::default(),
    );
    let no_activation = Exch {
        method: "POST",
        path: format!("/v1/integration/licenses/{LICENSE_KEY}/checkout"),
        tenant: TENANT.into(),
        nonce: nonce("checkout_409"),
        request_body: json!({ "fingerprint": FINGERPRINT, "ttl_seconds": 86400 }).to_string(),
        status: 409,
        response_body: error_body(
            "checkout_409",
            409,
            "NO_ACTIVATION",
            "conflict_error",
            "the fingerprint is not activated on the license",
        ),
        date,
    };
    add(
        "checkout_409",
        "valid",
        "An error answer (409 NO_ACTIVATION) is signed like a success: it verifies.",
        no_activation,
        Tamper::default(),
    );
    add(
        "get_with_query_405",
        "valid",
        "A GET with a query string and no body (the empty string's hash), answered 405.",
        Exch {
            method: "GET",
            path: format!("{validate_path}?trace=1&lang=en%20GB"),
            tenant: TENANT.into(),
            nonce: nonce("get_with_query_405"),
            request_body: String::new(),
            status: 405,
            response_body: error_body(
                "get_with_query_405",
                405,
                "METHOD_NOT_ALLOWED",
                "invalid_request_error",
                "this path does not accept GET",
            ),
            date,
        },
        Tamper::default(),
    );
    add(
        "delete_empty_body",
        "valid",
        "A DELETE with no body (a lease returned), answered 200.",
        Exch {
            method: "DELETE",
            path: format!("/v1/integration/activations/{ACTIVATION_ID}"),
            tenant: TENANT.into(),
            nonce: nonce("delete_empty_body"),
            request_body: String::new(),
            status: 200,
            response_body: json!({
                "data": { "fingerprint": FINGERPRINT, "id": ACTIVATION_ID, "license_id": LICENSE_ID,
                          "status": "deactivated" },
                "meta": meta("delete_empty_body"),
            })
            .to_string(),
            date,
        },
        Tamper::default(),
    );
    add(
        "api_key_empty_nonce",
        "valid",
        "An API-key request sent no X-Nonce: the nonce line of the signed message is empty.",
        Exch {
            method: "POST",
            path: "/v1/integration/entitlements/check".into(),
            tenant: TENANT.into(),
            nonce: String::new(),
            request_body: json!({ "features": ["export-4k"], "license_key": LICENSE_KEY })
                .to_string(),
            status: 200,
            response_body: json!({
                "data": { "entitlements": { "export-4k": { "granted": true, "type": "boolean" } } },
                "meta": meta("api_key_empty_nonce"),
            })
            .to_string(),
            date,
        },
        Tamper::default(),
    );
    add(
        "signed_by_v2",
        "valid",
        "Signed by the tenant's rotated key v2 (both v1 and v2 are pinned).",
        validate("signed_by_v2"),
        Tamper {
            version: Some(2),
            ..Tamper::default()
        },
    );
    let skewed = |name: &str, by: Duration| Exch {
        date: NOW + by,
        ..validate(name)
    };
    add(
        "date_5_minutes_old",
        "valid",
        "X-Signature-Date exactly 5 minutes before now: within the skew (inclusive).",
        skewed("date_5_minutes_old", -Duration::minutes(5)),
        Tamper::default(),
    );
    add(
        "date_5_minutes_ahead",
        "valid",
        "X-Signature-Date exactly 5 minutes after now: within the skew (inclusive).",
        skewed("date_5_minutes_ahead", Duration::minutes(5)),
        Tamper::default(),
    );

    // Rewritten on the way.
    add(
        "tampered_request_body",
        "tampered_request_body",
        "A proxy dropped the fingerprint from the request; the genuine answer to its question does not verify against the body the client sent.",
        validate("tampered_request_body"),
        Tamper {
            request_body: Some(json!({ "product": "desktop" }).to_string()),
            ..Tamper::default()
        },
    );
    add(
        "tampered_response_body",
        "tampered_response_body",
        "A NO_ACTIVATION answer rewritten to VALID.",
        validate("tampered_response_body"),
        Tamper {
            response_body: Some(validate_answer("tampered_response_body", false)),
            ..Tamper::default()
        },
    );
    add(
        "tampered_path",
        "tampered_path",
        "An answer for another license's path passed off as this one's.",
        validate("tampered_path"),
        Tamper {
            path: Some("/v1/integration/licenses/CE0HC-V1MS2-213PG-NXN5R-KSZPX/validate".into()),
            ..Tamper::default()
        },
    );
    add(
        "tampered_date",
        "tampered_date",
        "X-Signature-Date moved one second from the signed date (still within the skew).",
        validate("tampered_date"),
        Tamper {
            date: Some(date - Duration::seconds(1)),
            ..Tamper::default()
        },
    );
    add(
        "tampered_nonce",
        "tampered_nonce",
        "A recorded answer to another request (another nonce) replayed.",
        validate("tampered_nonce"),
        Tamper {
            nonce: Some(nonce("a request made earlier")),
            ..Tamper::default()
        },
    );
    add(
        "tampered_tenant",
        "tampered_tenant",
        "Signed (by the pinned key) over another tenant id than the request's.",
        validate("tampered_tenant"),
        Tamper {
            tenant: Some(OTHER_TENANT.into()),
            ..Tamper::default()
        },
    );
    add(
        "unknown_kid",
        "unknown_kid",
        "Signed by key v3, which is not pinned.",
        validate("unknown_kid"),
        Tamper {
            version: Some(UNPINNED),
            ..Tamper::default()
        },
    );
    add(
        "kid_of_another_key",
        "bad_signature",
        "keyid says v2 but v1 signed: the signature does not verify with the key named.",
        validate("kid_of_another_key"),
        Tamper {
            header: Some(|h| Some(h.replace("keyid=\"v1\"", "keyid=\"v2\""))),
            ..Tamper::default()
        },
    );
    add(
        "version_1_header",
        "unsupported_version",
        "A genuine signature with the version parameter removed: version 1 is retired, a header without version=\"2\" is refused.",
        validate("version_1_header"),
        Tamper {
            header: Some(|h| Some(h.replace(" version=\"2\",", ""))),
            ..Tamper::default()
        },
    );
    add(
        "missing_signature",
        "missing_signature",
        "No X-Signature header (a non-5xx answer): refused, never read.",
        validate("missing_signature"),
        Tamper {
            header: Some(|_| None),
            ..Tamper::default()
        },
    );
    add(
        "date_too_old",
        "expired",
        "Genuinely signed, but X-Signature-Date is 5 minutes and 1 millisecond before now.",
        skewed(
            "date_too_old",
            -(Duration::minutes(5) + Duration::milliseconds(1)),
        ),
        Tamper::default(),
    );
    add(
        "date_an_hour_old",
        "expired",
        "Genuinely signed an hour ago (a recorded answer with its own nonce).",
        skewed("date_an_hour_old", -Duration::hours(1)),
        Tamper::default(),
    );
    add(
        "date_too_far_ahead",
        "expired",
        "Genuinely signed, but X-Signature-Date is 5 minutes and 1 millisecond after now.",
        skewed(
            "date_too_far_ahead",
            Duration::minutes(5) + Duration::milliseconds(1),
        ),
        Tamper::default(),
    );
    out
}

/// A bound payload: issued an hour before [`NOW`], valid for a day.
fn payload() -> Value {
    json!({
        "activation": { "fingerprint": FINGERPRINT, "id": ACTIVATION_ID },
        "expires_at": rfc3339(NOW + Duration::hours(23)),
        "format": "licensing-file/v1",
        "issued_at": rfc3339(NOW - Duration::hours(1)),
        "kid": "v1",
        "license": {
            "entitlements": {
                "api-calls": { "limit": 1000, "overage": "deny", "period": "month", "type": "metered" },
                "export-4k": { "type": "boolean" },
            },
            "expires_at": null, "id": LICENSE_ID, "key": LICENSE_KEY, "policy": POLICY_ID,
            "product": "desktop", "seats": { "limit": 3 }, "status": "active",
        },
        "tenant_id": TENANT,
        "ttl_seconds": 86400,
    })
}

fn file_case(
    name: &str,
    reason: &str,
    note: &str,
    certificate: &str,
    fingerprint: Option<&str>,
    tenant: &str,
) -> Value {
    json!({
        "name": name,
        "expect": if reason == "valid" { "valid" } else { "invalid" },
        "reason": reason,
        "note": note,
        "certificate": certificate,
        "fingerprint": fingerprint,
        "tenant": tenant,
    })
}

/// The `payload.signature` text of a certificate (whitespace removed).
fn inner(certificate: &str) -> String {
    certificate
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect()
}

fn armor(inner: &str) -> String {
    let mut out = String::from("-----BEGIN LICENSE FILE-----\n");
    for line in inner.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str("-----END LICENSE FILE-----\n");
    out
}

fn files(keys: &SigningKeys) -> Vec<Value> {
    let sign = |payload: &Value, version: u32| sign_license_file(keys, TENANT, version, payload);
    let with = |edit: &dyn Fn(&mut Value)| {
        let mut p = payload();
        edit(&mut p);
        p
    };
    let good = sign(&payload(), 1);
    let unbound = sign(&with(&|p| p["activation"] = Value::Null), 1);
    let fp = Some(FINGERPRINT);
    let mut out = vec![
        file_case(
            "bound_valid",
            "valid",
            "Bound to this machine, given its fingerprint.",
            &good,
            fp,
            TENANT,
        ),
        file_case(
            "bound_without_fingerprint",
            "valid",
            "A bound file, checked without a fingerprint (an operator's tool): it verifies.",
            &good,
            None,
            TENANT,
        ),
        file_case(
            "unbound_without_fingerprint",
            "valid",
            "An unbound file (activation null; a vendor backend's), checked without a fingerprint.",
            &unbound,
            None,
            TENANT,
        ),
        file_case(
            "unbound_with_fingerprint",
            "unbound_with_fingerprint",
            "An unbound file, checked by an app that gives its fingerprint: refused.",
            &unbound,
            fp,
            TENANT,
        ),
        file_case(
            "wrong_fingerprint",
            "wrong_fingerprint",
            "Bound to another machine.",
            &good,
            Some("0000-bob-desktop"),
            TENANT,
        ),
        file_case(
            "signed_by_v2",
            "valid",
            "Signed by the rotated key v2 (kid v2 in the payload).",
            &sign(&with(&|p| p["kid"] = json!("v2")), 2),
            fp,
            TENANT,
        ),
    ];
    let expired = with(&|p| {
        p["issued_at"] = json!(rfc3339(NOW - Duration::hours(25)));
        p["expires_at"] = json!(rfc3339(NOW - Duration::hours(1)));
    });
    out.push(file_case(
        "expired",
        "expired",
        "expires_at an hour before now.",
        &sign(&expired, 1),
        fp,
        TENANT,
    ));
    let ends_now = with(&|p| {
        p["issued_at"] = json!(rfc3339(NOW - Duration::hours(24)));
        p["expires_at"] = json!(rfc3339(NOW));
    });
    out.push(file_case(
        "expires_exactly_now",
        "expired",
        "expires_at equal to now: expired (valid only while now < expires_at).",
        &sign(&ends_now, 1),
        fp,
        TENANT,
    ));
    let license_expired = with(&|p| {
        p["license"]["expires_at"] = json!(rfc3339(NOW - Duration::minutes(1)));
    });
    out.push(file_case(
        "license_expired",
        "expired",
        "The file runs 23 more hours, but the license inside expired a minute ago.",
        &sign(&license_expired, 1),
        fp,
        TENANT,
    ));

    // Tampered.
    let forged = sign(&with(&|p| p["license"]["seats"]["limit"] = json!(1000)), 1);
    let (forged_payload, _) = inner(&forged).split_once('.').map(own).unwrap_or_default();
    let (_, genuine_signature) = inner(&good).split_once('.').map(own).unwrap_or_default();
    out.push(file_case(
        "tampered_payload",
        "tampered",
        "The payload's seat limit raised to 1000, the genuine signature kept.",
        &armor(&format!("{forged_payload}.{genuine_signature}")),
        fp,
        TENANT,
    ));
    let (payload_b64, _) = inner(&good).split_once('.').map(own).unwrap_or_default();
    let mut flipped = genuine_signature.clone().into_bytes();
    flipped[10] = if flipped[10] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(flipped).unwrap_or_default();
    out.push(file_case(
        "tampered_signature",
        "tampered",
        "One character of the signature changed.",
        &armor(&format!("{payload_b64}.{flipped}")),
        fp,
        TENANT,
    ));
    out.push(file_case(
        "kid_of_another_key",
        "tampered",
        "The payload says kid v2, but v1 signed it.",
        &sign(&with(&|p| p["kid"] = json!("v2")), 1),
        fp,
        TENANT,
    ));
    out.push(file_case(
        "unknown_kid",
        "unknown_kid",
        "Signed by key v3 (kid v3), which is not pinned.",
        &sign(&with(&|p| p["kid"] = json!(kid(UNPINNED))), UNPINNED),
        fp,
        TENANT,
    ));
    out.push(file_case(
        "wrong_tenant_in_payload",
        "wrong_tenant",
        "Signed by a pinned key, but the payload names another tenant.",
        &sign(&with(&|p| p["tenant_id"] = json!(OTHER_TENANT)), 1),
        fp,
        TENANT,
    ));
    out.push(file_case(
        "wrong_tenant_for_verifier",
        "wrong_tenant",
        "A genuine file of tenant acme, checked by a verifier for another tenant.",
        &good,
        fp,
        OTHER_TENANT,
    ));
    out.push(file_case(
        "issued_in_the_future",
        "not_yet_valid",
        "issued_at 5 minutes and 1 second after now (a clock set back).",
        &sign(
            &with(&|p| p["issued_at"] = json!(rfc3339(NOW + Duration::seconds(301)))),
            1,
        ),
        fp,
        TENANT,
    ));
    out.push(file_case(
        "issued_5_minutes_ahead",
        "valid",
        "issued_at exactly 5 minutes after now: tolerated (the machine's clock may lag).",
        &sign(
            &with(&|p| p["issued_at"] = json!(rfc3339(NOW + Duration::minutes(5)))),
            1,
        ),
        fp,
        TENANT,
    ));
    out.push(file_case(
        "unsupported_format",
        "unsupported_format",
        "format licensing-file/v2: refused.",
        &sign(&with(&|p| p["format"] = json!("licensing-file/v2")), 1),
        fp,
        TENANT,
    ));
    out.push(file_case(
        "malformed_no_end_line",
        "malformed",
        "The END line is missing.",
        &good.replace("-----END LICENSE FILE-----\n", ""),
        fp,
        TENANT,
    ));

    // Armor variants of the good file.
    out.push(file_case(
        "armor_crlf",
        "valid",
        "CRLF line ends.",
        &good.replace('\n', "\r\n"),
        fp,
        TENANT,
    ));
    let indented: String = good
        .lines()
        .map(|l| format!("  \t{l} \n"))
        .collect::<String>();
    out.push(file_case(
        "armor_with_text_around",
        "valid",
        "Pasted into an e-mail: text before the BEGIN line and after the END line, lines indented, trailing spaces.",
        &format!("Hello Ann,\n\nyour license file:\n\n{indented}\nBest regards,\nAcme support\n"),
        fp,
        TENANT,
    ));
    out.push(file_case(
        "armor_one_line",
        "valid",
        "The payload.signature text on one line, not wrapped at 64, no final newline.",
        &format!(
            "-----BEGIN LICENSE FILE-----\n{}\n-----END LICENSE FILE-----",
            inner(&good)
        ),
        fp,
        TENANT,
    ));
    out
}

fn own((a, b): (&str, &str)) -> (String, String) {
    (a.to_owned(), b.to_owned())
}

/// Keys in this order first (the rest sorted), so the file reads top-down:
/// the document's, then a case's and its parts'.
const TOP_ORDER: &[&str] = &[
    "format",
    "generator",
    "now",
    "max_clock_skew_seconds",
    "tenant",
    "keys",
    "answers",
    "files",
];
const CASE_ORDER: &[&str] = &[
    "name",
    "expect",
    "reason",
    "note",
    "request",
    "response",
    "method",
    "path",
    "tenant",
    "nonce",
    "status",
    "headers",
    "x-signature",
    "x-signature-date",
    "body",
    "fingerprint",
    "certificate",
];

/// Pretty JSON, two-space indent, objects' keys in [`TOP_ORDER`] or
/// [`CASE_ORDER`].
fn write_pretty(out: &mut String, value: &Value, indent: usize) {
    let pad = |n: usize| "  ".repeat(n);
    match value {
        Value::Object(map) if !map.is_empty() => {
            let order = if map.contains_key("format") {
                TOP_ORDER
            } else {
                CASE_ORDER
            };
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort_by_key(|k| {
                let at = order.iter().position(|o| o == k);
                (at.unwrap_or(order.len()), k.to_string())
            });
            out.push_str("{\n");
            for (i, k) in keys.iter().enumerate() {
                out.push_str(&pad(indent + 1));
                out.push_str(&Value::String((*k).clone()).to_string());
                out.push_str(": ");
                write_pretty(out, &map[*k], indent + 1);
                if i + 1 < keys.len() {
                    out.push(',');
                }
                out.push('\n');
            }
            out.push_str(&pad(indent));
            out.push('}');
        }
        Value::Array(items) if !items.is_empty() => {
            out.push_str("[\n");
            for (i, item) in items.iter().enumerate() {
                out.push_str(&pad(indent + 1));
                write_pretty(out, item, indent + 1);
                if i + 1 < items.len() {
                    out.push(',');
                }
                out.push('\n');
            }
            out.push_str(&pad(indent));
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The committed file is exactly what the generator writes: run
    /// `cargo run -p licensing-admin -- conformance` after changing either.
    #[test]
    fn the_committed_cases_are_what_the_generator_writes() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../clients/conformance/cases.json"
        );
        let committed = std::fs::read_to_string(path).expect("clients/conformance/cases.json");
        assert!(
            committed == cases_json(),
            "{PATH} is stale: regenerate it with `cargo run -p licensing-admin -- conformance`"
        );
    }

    #[test]
    fn output_is_deterministic_and_parses() {
        let text = cases_json();
        assert_eq!(text, cases_json());
        let doc: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(doc["format"], FORMAT);
        assert!(doc["answers"].as_array().unwrap().len() >= 20);
        assert!(doc["files"].as_array().unwrap().len() >= 15);
    }

    #[test]
    fn base64_matches_the_documented_test_vector() {
        let keys = SigningKeys::new(b"example-master-secret-do-not-use".to_vec());
        assert_eq!(
            b64(&keys.public_key("acme", 1)),
            "cA2/b97JDlhwYg+C6BEKhY4kD7xZO6FQ32s7CxhvIV0="
        );
        assert_eq!(b64(b"ab"), "YWI=");
        assert_eq!(b64(b"a"), "YQ==");
    }
}
