//! Every case of `clients/conformance/cases.json`, judged through the C ABI
//! (`licensing_verify_answer`, `licensing_verify_license_file`) with the file's `now` as the
//! clock: the test fails if any verdict differs from `expect`, or if the failure's reason code
//! is not the one the case's `reason` maps to (reasons this test does not know are only
//! compared by verdict).

use std::ffi::{c_char, CStr, CString};
use std::ptr;

use licensing::licensing_status_t::*;
use licensing::*;
use serde_json::Value;

fn c(text: &str) -> CString {
    CString::new(text).unwrap()
}

fn opt(text: &Option<CString>) -> *const c_char {
    text.as_ref().map_or(ptr::null(), |t| t.as_ptr())
}

fn last_code() -> Option<String> {
    let code = licensing_last_error_code();
    (!code.is_null()).then(|| unsafe { CStr::from_ptr(code) }.to_str().unwrap().to_owned())
}

fn last_message() -> String {
    unsafe { CStr::from_ptr(licensing_last_error_message()) }
        .to_string_lossy()
        .into_owned()
}

/// The code `licensing_last_error_code()` must give for a case's reason, if this test knows it.
fn expected_code(reason: &str) -> Option<&'static str> {
    Some(match reason {
        "tampered_request_body"
        | "tampered_response_body"
        | "tampered_path"
        | "tampered_date"
        | "tampered_nonce"
        | "tampered_tenant"
        | "bad_signature"
        | "tampered" => "bad_signature",
        "unsupported_version" | "malformed" => "malformed",
        "missing_signature" => "unsigned",
        "unknown_kid" => "unknown_kid",
        "expired" => "expired",
        "wrong_fingerprint" => "wrong_fingerprint",
        "unbound_with_fingerprint" => "unbound",
        "wrong_tenant" => "wrong_tenant",
        "not_yet_valid" => "not_yet_valid",
        "unsupported_format" => "unsupported_format",
        _ => return None,
    })
}

/// Compares a verdict with the case; a description of the disagreement, if any.
fn judge(
    kind: &str,
    case: &Value,
    status: licensing_status_t,
    failed: licensing_status_t,
) -> Option<String> {
    let name = case["name"].as_str().unwrap();
    let expect = case["expect"].as_str().unwrap();
    let reason = case["reason"].as_str().unwrap_or("");
    let got = if status == LICENSING_OK {
        "valid"
    } else {
        "invalid"
    };
    if status != LICENSING_OK && status != failed {
        return Some(format!(
            "{kind} {name}: status {status:?}: {}",
            last_message()
        ));
    }
    if got != expect {
        let why = if status == LICENSING_OK {
            String::new()
        } else {
            last_message()
        };
        return Some(format!(
            "{kind} {name}: expected {expect} ({reason}), got {got} {why}"
        ));
    }
    if status != LICENSING_OK {
        if let Some(code) = expected_code(reason) {
            if last_code().as_deref() != Some(code) {
                return Some(format!(
                    "{kind} {name}: reason {reason} should be code {code}, got {:?}: {}",
                    last_code(),
                    last_message()
                ));
            }
        }
    }
    None
}

#[test]
fn every_conformance_case_is_judged_as_expected() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../conformance/cases.json");
    let text = std::fs::read_to_string(path).expect("clients/conformance/cases.json");
    let cases: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(cases["format"], "licensing-conformance/v1");
    let now = c(cases["now"].as_str().unwrap());

    let keys = licensing_keys_new();
    for (kid, key) in cases["keys"].as_object().unwrap() {
        let (kid, key) = (c(kid), c(key.as_str().unwrap()));
        assert_eq!(
            unsafe { licensing_keys_pin(keys, kid.as_ptr(), key.as_ptr()) },
            LICENSING_OK
        );
    }

    let mut disagreements = Vec::new();
    let answers = cases["answers"].as_array().unwrap();
    for case in answers {
        let request = &case["request"];
        let response = &case["response"];
        let field = |v: &Value| c(v.as_str().unwrap());
        let method = field(&request["method"]);
        let path = field(&request["path"]);
        let tenant = field(&request["tenant"]);
        let nonce = request["nonce"].as_str().filter(|n| !n.is_empty()).map(c);
        let sent = request["body"].as_str().unwrap().as_bytes();
        let signature = response["headers"]["x-signature"].as_str().map(c);
        let date = response["headers"]["x-signature-date"].as_str().map(c);
        let body = response["body"].as_str().unwrap().as_bytes();
        let status = unsafe {
            licensing_verify_answer(
                keys,
                method.as_ptr(),
                path.as_ptr(),
                tenant.as_ptr(),
                opt(&nonce),
                sent.as_ptr(),
                sent.len(),
                opt(&signature),
                opt(&date),
                body.as_ptr(),
                body.len(),
                now.as_ptr(),
            )
        };
        disagreements.extend(judge("answer", case, status, LICENSING_ERR_UNVERIFIED));
    }

    let files = cases["files"].as_array().unwrap();
    for case in files {
        let certificate = c(case["certificate"].as_str().unwrap());
        let tenant = c(case["tenant"].as_str().unwrap());
        let fingerprint = case["fingerprint"].as_str().map(c);
        let mut out: *mut c_char = ptr::null_mut();
        let status = unsafe {
            licensing_verify_license_file(
                keys,
                certificate.as_ptr(),
                tenant.as_ptr(),
                opt(&fingerprint),
                now.as_ptr(),
                &mut out,
            )
        };
        if status == LICENSING_OK {
            // The JSON result is the verified payload.
            let json = unsafe { CStr::from_ptr(out) }.to_str().unwrap().to_owned();
            unsafe { licensing_string_free(out) };
            let file: Value = serde_json::from_str(&json).unwrap();
            assert_eq!(file["format"], "licensing-file/v1");
            assert_eq!(file["tenant_id"], case["tenant"]);
        } else {
            assert!(out.is_null());
        }
        disagreements.extend(judge("file", case, status, LICENSING_ERR_FILE));
    }
    unsafe { licensing_keys_free(keys) };

    assert!(!answers.is_empty() && !files.is_empty());
    println!("{} answers and {} files judged", answers.len(), files.len());
    assert!(disagreements.is_empty(), "{}", disagreements.join("\n"));
}
