//! The organization's app keys: the page of `/v1/customer/api-keys`
//! (managers and admins). A new key is shown once, on the answer to its
//! form, never again.

use super::{OrgReq, Reply};
use crate::clock::rfc3339;
use crate::domain::{parse_bindings, AppType, CustomerKeyRecord, CustomerScope, Permission};
use crate::error::Error;
use crate::ids::ApiKeyId;
use crate::portal::pages::{csrf, layout, PageCtx};
use crate::portal::web::Form;
use crate::usecases::customers::keys::{self, NewKey};
use maud::{html, Markup};
use time::OffsetDateTime;

/// The app types of the form, as the API spells them.
const APP_TYPES: [(&str, &str); 3] = [
    ("desktop", "Desktop app"),
    ("ci_cd", "CI/CD"),
    ("cloud_service", "Cloud service"),
];

/// The scope check boxes: field name and scope.
const SCOPES: [(&str, CustomerScope); 3] = [
    ("scope_checkout", CustomerScope::LicenseCheckout),
    ("scope_return", CustomerScope::LicenseReturn),
    ("scope_read", CustomerScope::LicenseRead),
];

/// `GET /portal/{org}/api-keys` (and the answer to a create, with its key).
pub(super) async fn page(r: &OrgReq<'_>, new_key: Option<&str>) -> Result<Reply, Error> {
    r.member(Permission::ManageKeys)?;
    let list = keys::list(&r.store).await?;
    let ctx = r.ctx();
    Ok(Reply::page(keys_page(
        &ctx,
        &list,
        new_key,
        r.done(),
        r.now,
    )))
}

/// `POST /portal/{org}/api-keys`: `action` = `create` or `revoke` (`key`).
pub(super) async fn action(r: &OrgReq<'_>) -> Result<Reply, Error> {
    let (form, _) = r.form_for(Permission::ManageKeys)?;
    let actor = r.actor()?;
    match form.text("action") {
        "create" => {
            let new = new_key(&form)?;
            let pepper = r.app.keys.pepper()?;
            let (_, key) = keys::create(pepper, &r.store, &actor, new, r.now).await?;
            // Shown once, on this answer only (not a redirect that could be replayed).
            page(r, Some(&key)).await
        }
        "revoke" => {
            let id = ApiKeyId::parse(form.text("key")).map_err(|_| Error::ApiKeyNotFound)?;
            keys::revoke(&r.store, &actor, &id, r.now).await?;
            Ok(Reply::see_other(format!(
                "{}/api-keys?done=revoked",
                r.base()
            )))
        }
        _ => Err(Error::validation("unknown action")),
    }
}

/// A list field: entries split by commas, spaces or new lines.
fn entries(s: &str) -> Option<Vec<String>> {
    let v: Vec<String> = s
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|e| !e.is_empty())
        .map(str::to_string)
        .collect();
    (!v.is_empty()).then_some(v)
}

/// The form's key, checked as the API's body is.
fn new_key(form: &Form) -> Result<NewKey, Error> {
    let app_type: AppType = serde_json::from_value(serde_json::json!(form.text("app_type")))
        .map_err(|_| Error::validation("app_type is desktop, ci_cd or cloud_service"))?;
    let scopes = SCOPES
        .iter()
        .filter(|(name, _)| !form.text(name).is_empty())
        .map(|(_, s)| *s)
        .collect();
    let expires_in_days = match form.text("expires_in_days") {
        "" => None,
        d => Some(
            d.parse::<u32>()
                .map_err(|_| Error::validation("expires_in_days must be a whole number"))?,
        ),
    };
    let cert = Some(form.text("client_cert_sha256"))
        .filter(|c| !c.is_empty())
        .map(str::to_string);
    let bindings = parse_bindings(
        entries(form.text("allowed_hostnames")),
        entries(form.text("allowed_cidrs")),
        cert,
    )?;
    Ok(NewKey {
        app_name: form.text("app_name").to_string(),
        app_type,
        scopes,
        expires_in_days,
        bindings,
    })
}

fn bindings_of(k: &CustomerKeyRecord) -> String {
    let b = &k.bindings;
    let mut parts = Vec::new();
    if !b.allowed_hostnames.is_empty() {
        parts.push(format!("hosts {}", b.allowed_hostnames.join(", ")));
    }
    if !b.allowed_cidrs.is_empty() {
        let nets: Vec<String> = b.allowed_cidrs.iter().map(|n| n.to_string()).collect();
        parts.push(format!("from {}", nets.join(", ")));
    }
    if let Some(c) = &b.client_cert_sha256 {
        parts.push(format!("cert {}…", &c[..c.len().min(12)]));
    }
    if parts.is_empty() {
        "none".into()
    } else {
        parts.join("; ")
    }
}

fn day(t: Option<OffsetDateTime>, none: &str) -> String {
    t.map(|t| rfc3339(t)[..10].to_string())
        .unwrap_or_else(|| none.into())
}

fn create_form(ctx: &PageCtx<'_>) -> Markup {
    let base = ctx.base();
    html! {
        form #create-key method="post" action={(base) "/api-keys"} {
            (csrf(ctx))
            input type="hidden" name="action" value="create";
            label for="app_name" { "App name" }
            input #app_name name="app_name" required maxlength="200";
            label for="app_type" { "App type" }
            select #app_type name="app_type" {
                @for (v, l) in APP_TYPES { option value=(v) { (l) } }
            }
            fieldset {
                legend { "Scopes" }
                @for (name, s) in SCOPES {
                    label.check {
                        input type="checkbox" name=(name) value="on" id=(name) checked;
                        " " (s.as_str())
                    }
                }
            }
            label for="expires_in_days" { "Expires in days (empty: never)" }
            input #expires_in_days type="number" name="expires_in_days" min="1";
            label for="allowed_hostnames" { "Allowed host names (X-Hostname; comma-separated)" }
            input #allowed_hostnames name="allowed_hostnames" placeholder="ws-1, ws-2";
            label for="allowed_cidrs" { "Allowed source networks (CIDR; comma-separated)" }
            input #allowed_cidrs name="allowed_cidrs" placeholder="203.0.113.0/24";
            label for="client_cert_sha256" { "Client certificate SHA-256 (mutual TLS)" }
            input #client_cert_sha256 name="client_cert_sha256" maxlength="64";
            p { button type="submit" { "Create key" } }
        }
    }
}

fn keys_page(
    ctx: &PageCtx<'_>,
    list: &[CustomerKeyRecord],
    new_key: Option<&str>,
    done: Option<&str>,
    now: OffsetDateTime,
) -> Markup {
    let base = ctx.base();
    layout(
        ctx,
        "API keys",
        html! {
            h1 { "API keys" }
            @if let Some(d) = done { p.flash #flash { (d) } }
            @if let Some(k) = new_key {
                p.flash #new-key { "New key (shown once, copy it now): " code { (k) } }
            }
            p.muted { "Keys let your organization's apps check licenses out of the pool \
                       (POST /v1/customer/checkouts). Bind a key to host names, networks or a \
                       client certificate so it only works from there." }
            (create_form(ctx))
            h2 { "Keys" }
            table.stack #keys {
                thead { tr {
                    th { "App" } th { "Id" } th { "Scopes" } th { "Bound to" } th { "Expires" }
                    th { "Last used" } th { "State" } th { "" }
                } }
                tbody {
                    @for k in list {
                        tr data-key=(k.id) {
                            td data-label="App" { (k.app_name) " "
                                span.muted { (serde_json::to_value(k.app_type).ok()
                                    .and_then(|v| v.as_str().map(str::to_string))
                                    .unwrap_or_default()) } }
                            td data-label="Id" { code { (k.id) } }
                            td data-label="Scopes" { (k.scopes.iter().map(|s| s.as_str())
                                .collect::<Vec<_>>().join(", ")) }
                            td data-label="Bound to" { (bindings_of(k)) }
                            td data-label="Expires" { (day(k.expires_at, "never")) }
                            td data-label="Last used" { (day(k.last_used_at, "never")) }
                            td.state data-label="State" {
                                @if k.usable_at(now) { "active" }
                                @else if k.revoked_at.is_some() { "revoked" }
                                @else { "expired" }
                            }
                            td {
                                @if k.usable_at(now) {
                                    form.inline method="post" action={(base) "/api-keys"} {
                                        (csrf(ctx))
                                        input type="hidden" name="action" value="revoke";
                                        input type="hidden" name="key" value=(k.id);
                                        button.danger type="submit" { "Revoke" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_fields_split_on_commas_and_spaces() {
        assert_eq!(entries(""), None);
        assert_eq!(
            entries("ws-1, ws-2\nws-3"),
            Some(vec!["ws-1".into(), "ws-2".into(), "ws-3".into()])
        );
    }

    #[test]
    fn the_form_is_checked_as_the_api_body() {
        let f = Form::parse(b"app_name=CAD&app_type=ci_cd&scope_read=on&allowed_hostnames=WS-1");
        let k = new_key(&f).unwrap();
        assert_eq!(k.app_type, AppType::CiCd);
        assert_eq!(k.scopes, vec![CustomerScope::LicenseRead]);
        assert_eq!(k.bindings.allowed_hostnames, vec!["ws-1".to_string()]);
        assert!(new_key(&Form::parse(b"app_name=x&app_type=robot")).is_err());
        let bad_net = b"app_name=x&app_type=desktop&allowed_cidrs=nonsense";
        assert!(new_key(&Form::parse(bad_net)).is_err());
    }
}
