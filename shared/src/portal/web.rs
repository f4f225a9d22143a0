//! HTTP details of the portal: cookies, form bodies, the CSRF and Origin
//! checks, security headers.

use crate::crypto::constant_time_eq;
use crate::domain::Session;
use crate::error::Error;
use std::collections::HashMap;

/// The session cookie's name. Scoped to `/portal/{tenant}`, so a browser
/// never sends one tenant's session to another's pages.
pub const COOKIE: &str = "portal_session";

/// The Content-Security-Policy of every page: no script at all, styles and
/// images from the portal only (SVG charts are inline markup, not images).
pub const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self' data:; \
     form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Headers every portal answer carries.
pub fn security_headers() -> [(&'static str, &'static str); 6] {
    [
        ("content-security-policy", CSP),
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        // A sign-in link carries its token in the URL: never pass it to
        // another site. (Not `no-referrer`: under it browsers send
        // `Origin: null` with a form post, and the Origin check refuses it.)
        ("referrer-policy", "same-origin"),
        ("cache-control", "no-store"),
        ("cross-origin-opener-policy", "same-origin"),
    ]
}

/// The session cookie as `Set-Cookie` writes it.
pub fn session_cookie(tenant: &str, id: &str, max_age: i64) -> String {
    format!(
        "{COOKIE}={id}; Path=/portal/{tenant}; Max-Age={max_age}; HttpOnly; Secure; SameSite=Strict"
    )
}

pub fn clear_cookie(tenant: &str) -> String {
    session_cookie(tenant, "", 0)
}

/// The value of `name` in a `Cookie` header (the first one).
pub fn cookie<'a>(header: Option<&'a str>, name: &str) -> Option<&'a str> {
    header?.split(';').find_map(|part| {
        let (k, v) = part.trim().split_once('=')?;
        (k == name).then_some(v)
    })
}

/// An `application/x-www-form-urlencoded` body.
pub struct Form(HashMap<String, String>);

impl Form {
    pub fn parse(body: &[u8]) -> Form {
        Form(form_urlencoded::parse(body).into_owned().collect())
    }
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }
    pub fn text(&self, name: &str) -> &str {
        self.get(name).map(str::trim).unwrap_or("")
    }
}

pub fn csrf_refused() -> Error {
    Error::denied(
        "CSRF_FAILED",
        "This form did not come from this portal page, or the page is too old. \
         Nothing was changed. Go back, reload the page and try again.",
    )
}

/// A state-changing request must come from a page of this portal: its
/// `Origin` (or, without one, its `Referer`) is the portal's own origin.
pub fn check_origin(
    origin: Option<&str>,
    referer: Option<&str>,
    base_url: &str,
) -> Result<(), Error> {
    let ok = match (origin, referer) {
        (Some(o), _) => o == base_url,
        (None, Some(r)) => r == base_url || r.starts_with(&format!("{base_url}/")),
        (None, None) => false,
    };
    if ok {
        Ok(())
    } else {
        Err(csrf_refused())
    }
}

/// The form's `csrf` field is this session's token.
pub fn check_csrf(form: &Form, session: &Session) -> Result<(), Error> {
    match form.get("csrf") {
        Some(t) if constant_time_eq(t.as_bytes(), session.csrf.as_bytes()) => Ok(()),
        _ => Err(csrf_refused()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_read_by_name() {
        let h = Some("a=1; portal_session=abc; b=2");
        assert_eq!(cookie(h, COOKIE), Some("abc"));
        assert_eq!(cookie(Some("portal_sessionx=1"), COOKIE), None);
        assert_eq!(cookie(None, COOKIE), None);
    }

    #[test]
    fn the_session_cookie_is_locked_down() {
        let c = session_cookie("acme", "s1", 60);
        for part in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/portal/acme"] {
            assert!(c.contains(part), "{c}");
        }
    }

    #[test]
    fn origin_must_be_the_portal() {
        let base = "https://portal.example.com";
        assert!(check_origin(Some(base), None, base).is_ok());
        assert!(check_origin(Some("https://evil.example"), None, base).is_err());
        assert!(check_origin(None, Some("https://portal.example.com/portal/a"), base).is_ok());
        assert!(check_origin(None, Some("https://portal.example.com.evil.io/"), base).is_err());
        assert!(check_origin(None, None, base).is_err());
    }
}
