//! The portal's pages, as compile-checked `maud` markup. Every value is
//! escaped by maud; no page carries a script, a secret or a session id.

use crate::clock::rfc3339;
use crate::domain::*;
use maud::{html, Markup, DOCTYPE};
use time::OffsetDateTime;

/// The stylesheet, served at [`CSS_PATH`] (the CSP allows styles from the portal only).
pub const CSS: &str = include_str!("portal.css");
pub const CSS_PATH: &str = "/portal/assets/portal.css";

/// What every page knows: whose portal, and who is signed in.
pub struct PageCtx<'a> {
    pub tenant_id: &'a str,
    pub tenant_name: &'a str,
    pub session: Option<&'a Session>,
}

impl PageCtx<'_> {
    pub fn base(&self) -> String {
        format!("/portal/{}", self.tenant_id)
    }
}

pub fn csrf(ctx: &PageCtx<'_>) -> Markup {
    html! {
        @if let Some(s) = ctx.session {
            input type="hidden" name="csrf" value=(s.csrf);
        }
    }
}

pub fn layout(ctx: &PageCtx<'_>, title: &str, content: Markup) -> Markup {
    layout_with(ctx, title, html! {}, content)
}

/// [`layout`] with more in the page's `head` (a `meta` refresh, say).
pub fn layout_with(ctx: &PageCtx<'_>, title: &str, head: Markup, content: Markup) -> Markup {
    let base = ctx.base();
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · " (ctx.tenant_name) }
                link rel="stylesheet" href=(CSS_PATH);
                (head)
            }
            body {
                header {
                    a.brand href={(base) "/"} { (ctx.tenant_name) " portal" }
                    @if let Some(s) = ctx.session {
                        nav {
                            @if s.role == Role::Member {
                                a href={(base) "/"} { "Home" }
                                a href={(base) "/licenses"} { "Licenses" }
                                a href={(base) "/pool"} { "Pool" }
                                a href={(base) "/api-keys"} { "API keys" }
                                a href={(base) "/members"} { "Members" }
                                a href={(base) "/audit"} { "Audit" }
                                a href={(base) "/costs"} { "Costs" }
                            } @else if s.role == Role::Staff {
                                a href={(base) "/staff"} { "Licenses" }
                                a href={(base) "/staff/api-keys"} { "API keys" }
                                a href={(base) "/staff/customers"} { "Customers" }
                                a href={(base) "/staff/team"} { "Team" }
                                a href={(base) "/staff/billing"} { "Billing" }
                            } @else {
                                a href={(base) "/me"} { "My licenses" }
                            }
                            form.inline method="post" action={(base) "/logout"} {
                                (csrf(ctx))
                                button.link type="submit" { "Sign out " (s.email) }
                            }
                        }
                    }
                }
                main { (content) }
            }
        }
    }
}

pub fn login(ctx: &PageCtx<'_>) -> Markup {
    let base = ctx.base();
    layout(
        ctx,
        "Sign in",
        html! {
            h1 { "Sign in" }
            p { "Enter your e-mail address. If it belongs to this portal, we send you a link \
                 that signs you in (it works once, within 15 minutes)." }
            form method="post" action={(base) "/login"} {
                label for="email" { "E-mail" }
                input #email type="email" name="email" required autocomplete="email";
                button type="submit" { "E-mail me a sign-in link" }
            }
        },
    )
}

pub fn link_sent(ctx: &PageCtx<'_>) -> Markup {
    layout(
        ctx,
        "Check your e-mail",
        html! {
            h1 { "Check your e-mail" }
            p #sent { "If that address belongs to this portal, a sign-in link is on its way. \
                 It works once, within 15 minutes." }
        },
    )
}

/// The page a sign-in link opens: one button, so a mail scanner that
/// follows links does not spend the link.
pub fn confirm(ctx: &PageCtx<'_>, token: &str) -> Markup {
    let base = ctx.base();
    layout(
        ctx,
        "Sign in",
        html! {
            h1 { "Sign in to " (ctx.tenant_name) }
            form method="post" action={(base) "/auth"} {
                input type="hidden" name="token" value=(token);
                button #confirm type="submit" { "Sign in" }
            }
        },
    )
}

/// The page a public trial's verification link opens: one button, like the
/// sign-in link's.
pub fn verify_confirm(ctx: &PageCtx<'_>, token: &str) -> Markup {
    let base = ctx.base();
    layout(
        ctx,
        "Confirm your e-mail",
        html! {
            h1 { "Confirm your e-mail" }
            p { "Confirm that this address is yours, to see your trial in " (ctx.tenant_name) "'s portal." }
            form method="post" action={(base) "/verify"} {
                input type="hidden" name="token" value=(token);
                button #confirm type="submit" { "Confirm" }
            }
        },
    )
}

/// After a verification link was followed.
pub fn verified(ctx: &PageCtx<'_>) -> Markup {
    let base = ctx.base();
    layout(
        ctx,
        "E-mail confirmed",
        html! {
            h1 { "E-mail confirmed" }
            p #verified { "Thank you. You can now sign in with this address to see your trial." }
            p { a href={(base) "/login"} { "Sign in" } }
        },
    )
}

pub fn error(ctx: &PageCtx<'_>, status: u16, code: &str, message: &str) -> Markup {
    let base = ctx.base();
    let title = match status {
        401 => "Please sign in",
        403 => "Refused",
        404 => "Not found",
        429 => "Too many requests",
        _ if status >= 500 => "Something went wrong",
        _ => "Cannot do that",
    };
    layout(
        ctx,
        title,
        html! {
            h1 { (title) }
            p.error #error data-code=(code) { (message) }
            p.muted { "Code: " code { (code) } }
            @if status == 401 {
                p { a href={(base) "/login"} { "Sign in" } }
            }
        },
    )
}

fn status_badge(l: &License, now: OffsetDateTime) -> Markup {
    let expired = l.expires_at.is_some_and(|e| e <= now) && l.status == LicenseStatus::Active;
    let s = if expired {
        "expired"
    } else {
        l.status.as_str()
    };
    html! { span class={"badge " (s)} { (s) } }
}

fn when(t: Option<OffsetDateTime>) -> String {
    t.map(|t| rfc3339(t)[..10].to_string())
        .unwrap_or_else(|| "never".into())
}

fn key_hint(l: &License) -> String {
    let k = l.key.as_str();
    let tail: String = k
        .chars()
        .rev()
        .take(4)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!("…{tail}")
}

fn flash(done: Option<&str>) -> Markup {
    html! {
        @if let Some(d) = done {
            p.flash #flash role="status" { (d) }
        }
    }
}

pub fn license_table(ctx: &PageCtx<'_>, licenses: &[License], now: OffsetDateTime) -> Markup {
    let base = ctx.base();
    html! {
        table.licenses {
            thead { tr { th { "License" } th { "Customer" } th { "Product" } th { "Status" }
                th { "Seats" } th { "Expires" } } }
            tbody {
                @for l in licenses {
                    tr {
                        td { a.license href={(base) "/staff/licenses/" (l.id)} { (l.id) } }
                        td { (l.customer_email) }
                        td { (l.product) }
                        td { (status_badge(l, now)) }
                        td { (l.seats_used) " / " (l.max_activations) }
                        td { (when(l.expires_at)) }
                    }
                }
            }
        }
    }
}

pub fn staff_search(
    ctx: &PageCtx<'_>,
    q: &str,
    results: Result<&[License], String>,
    policies: &[Policy],
    now: OffsetDateTime,
) -> Markup {
    let base = ctx.base();
    layout(
        ctx,
        "Licenses",
        html! {
            h1 { "Licenses" }
            form.search method="get" action={(base) "/staff"} {
                label for="q" { "Customer e-mail, license id or license key" }
                input #q type="search" name="q" value=(q) required;
                button type="submit" { "Find" }
            }
            @match results {
                Ok(found) if !q.is_empty() => {
                    p.muted { (found.len()) " found" }
                    (license_table(ctx, found, now))
                }
                Ok(_) => {}
                Err(msg) => { p.error { (msg) } }
            }
            @if !policies.is_empty() {
                h2 { "Issue a license" }
                form.issue method="post" action={(base) "/staff/licenses"} {
                    (csrf(ctx))
                    label for="policy" { "Policy" }
                    select #policy name="policy" {
                        @for p in policies {
                            option value=(p.id) { (p.product) " · " (p.name) " (" (p.max_activations) " seats)" }
                        }
                    }
                    label for="new-email" { "Customer e-mail" }
                    input #new-email type="email" name="email" required;
                    button type="submit" { "Issue" }
                }
            }
        },
    )
}

/// Everything the license page shows.
pub struct LicensePage<'a> {
    pub license: &'a License,
    pub policy: Option<&'a Policy>,
    pub activations: &'a [Activation],
    pub counters: &'a [UsageCounter],
    /// Daily totals of every metric, oldest first (the last 30 days).
    pub daily: &'a [(String, u64)],
    pub audit: &'a [AuditEvent],
    pub done: Option<&'a str>,
    pub now: OffsetDateTime,
}

fn machines(ctx: &PageCtx<'_>, action: &str, acts: &[Activation], now: OffsetDateTime) -> Markup {
    html! {
        @if acts.is_empty() {
            p.muted { "No machines." }
        } @else {
            table.machines {
                thead { tr { th { "Machine" } th { "Fingerprint" } th { "Since" } th { "" } } }
                tbody {
                    @for a in acts {
                        tr {
                            td { (a.name.as_deref().or(a.hostname.as_deref()).unwrap_or("—")) }
                            td { code { (a.fingerprint) } }
                            td { (when(Some(a.created_at))) }
                            td {
                                @if a.deactivated_at.is_none() && a.holds_seat(now) {
                                    form.inline method="post" action=(action) {
                                        (csrf(ctx))
                                        input type="hidden" name="action" value="deactivate";
                                        input type="hidden" name="activation" value=(a.id);
                                        button.danger type="submit" data-fingerprint=(a.fingerprint) {
                                            "Deactivate"
                                        }
                                    }
                                } @else {
                                    span.muted { "inactive" }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

pub fn license(ctx: &PageCtx<'_>, p: &LicensePage<'_>) -> Markup {
    let l = p.license;
    let action = format!("{}/staff/licenses/{}", ctx.base(), l.id);
    let button = |what: &str, label: &str, class: &str| {
        html! {
            form.inline method="post" action=(action) {
                (csrf(ctx))
                input type="hidden" name="action" value=(what);
                button class=(class) type="submit" name="go" value=(what) { (label) }
            }
        }
    };
    layout(
        ctx,
        l.id.as_str(),
        html! {
            (flash(p.done))
            h1 { "License " code { (l.id) } " " (status_badge(l, p.now)) }
            dl.facts {
                dt { "Customer" } dd { (l.customer_email) }
                dt { "Product" } dd { (l.product) }
                dt { "Policy" } dd { (p.policy.map(|p| p.name.as_str()).unwrap_or("—")) }
                dt { "Key" } dd { code { (key_hint(l)) } }
                dt { "Seats" } dd #seats { (l.seats_used) " of " (l.max_activations) " in use" }
                dt { "Expires" } dd { (when(l.expires_at)) }
            }
            section.actions {
                h2 { "Actions" }
                @if l.status == LicenseStatus::Suspended {
                    (button("resume", "Resume", ""))
                } @else if l.status != LicenseStatus::Cancelled {
                    (button("suspend", "Suspend", "danger"))
                }
                @if l.status != LicenseStatus::Cancelled {
                    (button("cancel", "Cancel", "danger"))
                }
                form.inline method="post" action=(action) {
                    (csrf(ctx))
                    input type="hidden" name="action" value="renew";
                    label for="days" { "Renew by days" }
                    input #days type="number" name="days" min="1" max="36500" value="365";
                    button type="submit" { "Renew" }
                }
            }
            section {
                h2 { "Machines" }
                (machines(ctx, &action, p.activations, p.now))
            }
            section {
                h2 { "Usage" }
                @if p.counters.is_empty() {
                    p.muted { "No usage recorded." }
                } @else {
                    table.usage {
                        thead { tr { th { "Metric" } th { "Period" } th { "Used" } th { "Quota" } } }
                        tbody {
                            @for c in p.counters {
                                tr {
                                    td { (c.metric) } td { (c.period) } td { (c.used) }
                                    td { (quota_bar(c.used, c.limit)) }
                                }
                            }
                        }
                    }
                }
                h3 { "Per day, last 30 days" }
                (super::chart::daily(p.daily))
            }
            section {
                h2 { "Audit trail" }
                @if p.audit.is_empty() {
                    p.muted { "Nothing recorded for this license yet." }
                } @else {
                    table.audit {
                        thead { tr { th { "When" } th { "Event" } th { "By" } } }
                        tbody {
                            @for e in p.audit {
                                tr {
                                    td { (rfc3339(e.at)) }
                                    td { code { (serde_json::to_value(e.code).ok()
                                        .and_then(|v| v.as_str().map(str::to_owned))
                                        .unwrap_or_default()) } }
                                    td { (e.actor) }
                                }
                            }
                        }
                    }
                }
            }
        },
    )
}

fn quota_bar(used: u64, limit: Option<u64>) -> Markup {
    match limit {
        None => html! { span.muted { "no limit" } },
        Some(limit) => {
            let pct = used
                .saturating_mul(100)
                .checked_div(limit)
                .unwrap_or(100)
                .min(100);
            html! {
                svg.bar width="120" height="10" viewBox="0 0 100 10" role="img"
                    aria-label={(used) " of " (limit)} {
                    rect x="0" y="0" width="100" height="10" fill="#e5e7eb" {}
                    rect x="0" y="0" width=(pct) height="10"
                        fill=(if pct >= 100 { "#dc2626" } else { "#2563eb" }) {}
                }
                " " (used) " / " (limit)
            }
        }
    }
}

/// A customer's licenses with their machines.
pub fn my_licenses(
    ctx: &PageCtx<'_>,
    licenses: &[(License, Vec<Activation>)],
    done: Option<&str>,
    now: OffsetDateTime,
) -> Markup {
    let base = ctx.base();
    layout(
        ctx,
        "My licenses",
        html! {
            (flash(done))
            h1 { "My licenses" }
            @if licenses.is_empty() {
                p.muted { "No licenses." }
            }
            @for (l, acts) in licenses {
                section.license id=(l.id) {
                    h2 { (l.product) " " (status_badge(l, now)) }
                    p.muted { code { (l.id) } " · key " code { (key_hint(l)) }
                        " · expires " (when(l.expires_at)) }
                    p.seats { (l.seats_used) " of " (l.max_activations) " seats in use" }
                    p {
                        a.file href={(base) "/me/licenses/" (l.id) "/file"} download {
                            "Download a license file (offline use, 30 days)"
                        }
                    }
                    (machines(ctx, &format!("{base}/me/licenses/{}", l.id), acts, now))
                }
            }
        },
    )
}

pub fn api_keys(
    ctx: &PageCtx<'_>,
    keys: &[ApiKeyRecord],
    new_key: Option<&str>,
    now: OffsetDateTime,
) -> Markup {
    let base = ctx.base();
    layout(
        ctx,
        "API keys",
        html! {
            h1 { "API keys" }
            @if let Some(k) = new_key {
                p.flash #new-key { "New key (shown once, copy it now): " code { (k) } }
            }
            form method="post" action={(base) "/staff/api-keys"} {
                (csrf(ctx))
                input type="hidden" name="action" value="create";
                label for="name" { "Name" }
                input #name name="name" required maxlength="200";
                label for="scope" { "Scope" }
                select #scope name="scope" {
                    option value="integration" { "integration" }
                    option value="admin" { "admin" }
                }
                button type="submit" { "Create key" }
            }
            table.keys {
                thead { tr { th { "Name" } th { "Id" } th { "Scopes" } th { "State" } th { "" } } }
                tbody {
                    @for k in keys {
                        tr {
                            td { (k.name) }
                            td { code { (k.id) } }
                            td { (k.scopes.iter().map(|s| format!("{s:?}").to_lowercase())
                                .collect::<Vec<_>>().join(", ")) }
                            td { @if k.usable_at(now) { "active" } @else { "revoked or expired" } }
                            td {
                                @if k.usable_at(now) {
                                    form.inline method="post" action={(base) "/staff/api-keys"} {
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

pub fn team(ctx: &PageCtx<'_>, admin: &str, staff: &[StaffMember], done: Option<&str>) -> Markup {
    let base = ctx.base();
    layout(
        ctx,
        "Team",
        html! {
            (flash(done))
            h1 { "Team" }
            p { "Staff sign in with a link sent to their address, like customers. Removing someone ends their sessions at their next request; API keys they created stay until revoked." }
            ul {
                li { (admin) " (admin)" }
                @for m in staff {
                    li {
                        (m.email) " (invited by " (m.invited_by) ") "
                        form.inline method="post" action={(base) "/staff/team"} {
                            (csrf(ctx))
                            input type="hidden" name="action" value="remove";
                            input type="hidden" name="email" value=(m.email);
                            button type="submit" { "Remove" }
                        }
                    }
                }
            }
            form method="post" action={(base) "/staff/team"} {
                (csrf(ctx))
                label for="email" { "Invite by e-mail" }
                input #email type="email" name="email" required;
                button type="submit" { "Invite" }
            }
        },
    )
}
