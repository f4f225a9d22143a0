//! The portal over HTTP (no browser): sign-in by one-time link through the
//! emulator's SES, the refusals (reused, expired, forged links; another
//! tenant's cookie; a missing CSRF token or foreign Origin), the per-address
//! rate limit, staff actions seen by the API, and customer self-service.
//! The browser flows are in `portal_browser`.

use harness::{sent_mail, Env, Visitor};
use serde_json::json;

fn unique(name: &str) -> String {
    format!(
        "{name}-{}@example.com",
        ulid::Ulid::new().to_string().to_lowercase()
    )
}

/// A license for `email` under a fresh product and policy (`extra` merges
/// into the policy body). Returns (license id, license key).
pub async fn license_for(
    env: &Env,
    t: &harness::Tenant,
    email: &str,
    seats: u32,
    extra: serde_json::Value,
) -> (String, String) {
    let product = format!("p{}", &ulid::Ulid::new().to_string().to_lowercase()[16..]);
    let r = env
        .post(
            "/v1/manage/products",
            &t.admin,
            json!({ "code": product, "name": "App" }),
        )
        .await;
    assert_eq!(r.status, 201, "{r:?}");
    let mut body = json!({ "product": product, "name": "Pro", "max_activations": seats });
    if let (Some(b), Some(x)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(x.clone());
    }
    let p = env.post("/v1/manage/policies", &t.admin, body).await;
    assert_eq!(p.status, 201, "{p:?}");
    let l = env
        .post(
            "/v1/manage/licenses",
            &t.admin,
            json!({ "policy": p.data()["id"], "customer_email": email }),
        )
        .await;
    assert_eq!(l.status, 201, "{l:?}");
    (
        l.data()["id"].as_str().unwrap().to_string(),
        l.data()["key"].as_str().unwrap().to_string(),
    )
}

pub async fn activate(env: &Env, t: &harness::Tenant, key: &str, fp: &str) -> String {
    let a = env
        .activate_with(t, key, fp, json!({ "name": format!("{fp} laptop") }))
        .await;
    assert_eq!(a.status, 201, "{a:?}");
    a.data()["id"].as_str().unwrap().to_string()
}

fn admin_email(t: &harness::Tenant) -> String {
    // Env::tenant makes `ops@<name>.example`; the tenant id is `<name>-<suffix>`.
    let name = t.id.rsplit_once('-').unwrap().0;
    format!("ops@{name}.example")
}

#[tokio::test]
async fn staff_sign_in_find_and_suspend_is_seen_by_the_api() {
    let env = Env::start().await;
    let t = env.tenant("vendor").await;
    let customer = unique("buyer");
    let (lid, key) = license_for(&env, &t, &customer, 2, json!({})).await;

    let mut staff = Visitor::new(&env, &t.id);
    let done = staff.sign_in(&admin_email(&t)).await;
    assert_eq!(done.status, 303, "{done:?}");
    assert_eq!(
        done.location.as_deref(),
        Some(format!("/portal/{}/", t.id).as_str())
    );
    let cookie = done.set_cookie.unwrap();
    for part in [
        "HttpOnly",
        "Secure",
        "SameSite=Strict",
        &format!("Path=/portal/{}", t.id),
    ] {
        assert!(cookie.contains(part), "{cookie}");
    }
    assert_eq!(
        staff.get("/").await.location.as_deref(),
        Some(format!("/portal/{}/staff", t.id).as_str())
    );

    let found = staff.get(&format!("/staff?q={customer}")).await;
    assert_eq!(found.status, 200);
    assert!(found.html.contains(&lid), "{}", found.html);
    assert!(
        !found.html.contains(&key),
        "a page shows the full license key"
    );
    let csp = found.headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("default-src 'none'") && !csp.contains("script-src"),
        "{csp}"
    );

    let page = staff.get(&format!("/staff/licenses/{lid}")).await;
    let csrf = page.csrf().unwrap().to_string();
    let r = staff
        .post(
            &format!("/staff/licenses/{lid}"),
            &[("csrf", &csrf), ("action", "suspend")],
        )
        .await;
    assert_eq!(r.status, 303, "{r:?}");
    let v = env.validate(&t, &key, json!({})).await;
    assert_eq!(v.data()["code"], "SUSPENDED", "{v:?}");

    // Audited with the staff member as the actor.
    let audit = env.get("/v1/manage/audit-events", &t.admin).await;
    let ev = audit
        .data()
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["code"] == "LICENSE.SUSPENDED")
        .cloned()
        .unwrap();
    assert_eq!(ev["actor"], format!("staff:{}", admin_email(&t)));
    assert_eq!(ev["target_id"], lid);
    let page = staff
        .get(&format!("/staff/licenses/{lid}?done=suspended"))
        .await;
    assert!(page.html.contains("License suspended."));
    assert!(
        page.html.contains("LICENSE.SUSPENDED"),
        "the audit trail lists it"
    );

    // Resume and renew from the page, too.
    for (action, extra) in [("resume", None), ("renew", Some(("days", "30")))] {
        let mut f = vec![("csrf", csrf.as_str()), ("action", action)];
        f.extend(extra);
        let r = staff.post(&format!("/staff/licenses/{lid}"), &f).await;
        assert_eq!(r.status, 303, "{action}: {r:?}");
    }
    let l = env
        .get(&format!("/v1/manage/licenses/{lid}"), &t.admin)
        .await;
    assert_eq!(l.data()["status"], "active");
    assert!(l.data()["expires_at"].is_string(), "{l:?}");

    // Sign out ends the session server-side.
    let out = staff.post("/logout", &[("csrf", &csrf)]).await;
    assert_eq!(out.status, 303);
    assert_eq!(staff.get("/staff").await.status, 401);
}

#[tokio::test]
async fn a_link_works_once_and_reused_expired_or_forged_ones_are_refused() {
    let env = Env::with_clock(time::macros::datetime!(2026-05-01 09:00 UTC)).await;
    let t = env.tenant("links").await;
    let customer = unique("c");
    license_for(&env, &t, &customer, 1, json!({})).await;
    let v = Visitor::new(&env, &t.id);

    // Used once, then refused.
    v.post("/login", &[("email", &customer)]).await;
    let link = harness::last_link(&customer).await.unwrap();
    let token = link.split("token=").nth(1).unwrap().to_string();
    let confirm = v.get(&format!("/auth?token={token}")).await;
    assert_eq!(
        confirm.status, 200,
        "opening the link alone does not spend it"
    );
    let ok = v.post("/auth", &[("token", &token)]).await;
    assert_eq!(ok.status, 303, "{ok:?}");
    let again = v.post("/auth", &[("token", &token)]).await;
    assert_eq!((again.status, again.code()), (403, Some("LINK_INVALID")));
    assert!(again.set_cookie.is_none());

    // Expired: 15 minutes by the app's clock.
    v.post("/login", &[("email", &customer)]).await;
    let link = harness::last_link(&customer).await.unwrap();
    let token = link.split("token=").nth(1).unwrap().to_string();
    env.clock().advance(time::Duration::minutes(15));
    let late = v.post("/auth", &[("token", &token)]).await;
    assert_eq!((late.status, late.code()), (403, Some("LINK_INVALID")));

    // Forged: a well-formed token nobody issued, an empty one, junk.
    for forged in ["A".repeat(43).as_str(), "", "<script>"] {
        let r = v.post("/auth", &[("token", forged)]).await;
        assert_eq!(
            (r.status, r.code()),
            (403, Some("LINK_INVALID")),
            "{forged}"
        );
        assert!(r.html.contains("Ask for a new one"));
    }
    // A link posted from another site is refused before it is spent.
    v.post("/login", &[("email", &customer)]).await;
    let link = harness::last_link(&customer).await.unwrap();
    let token = link.split("token=").nth(1).unwrap().to_string();
    let cross = v
        .post_from(Some("https://evil.example"), "/auth", &[("token", &token)])
        .await;
    assert_eq!((cross.status, cross.code()), (403, Some("CSRF_FAILED")));
    assert_eq!(v.post("/auth", &[("token", &token)]).await.status, 303);
}

#[tokio::test]
async fn unknown_addresses_get_the_same_answer_and_no_mail() {
    let env = Env::start().await;
    let t = env.tenant("quiet").await;
    let known = unique("known");
    license_for(&env, &t, &known, 1, json!({})).await;
    let stranger = unique("stranger");
    let v = Visitor::new(&env, &t.id);
    let a = v.post("/login", &[("email", &known)]).await;
    let b = v.post("/login", &[("email", &stranger)]).await;
    assert_eq!((a.status, &a.html), (b.status, &b.html));
    assert_eq!(sent_mail(&known).await.len(), 1);
    assert_eq!(sent_mail(&stranger).await.len(), 0);
    // A customer of another tenant is a stranger here.
    let other = env.tenant("other").await;
    let theirs = unique("theirs");
    license_for(&env, &other, &theirs, 1, json!({})).await;
    v.post("/login", &[("email", &theirs)]).await;
    assert_eq!(sent_mail(&theirs).await.len(), 0);
}

#[tokio::test]
async fn fifty_sign_in_requests_for_one_address_are_rate_limited() {
    let env = Env::start().await;
    let t = env.tenant("flood").await;
    let email = unique("flood");
    license_for(&env, &t, &email, 1, json!({})).await;
    let v = Visitor::new(&env, &t.id);
    let fields = [("email", email.as_str())];
    let answers = futures::future::join_all((0..50).map(|_| v.post("/login", &fields))).await;
    let ok = answers.iter().filter(|p| p.status == 200).count();
    let limited: Vec<_> = answers.iter().filter(|p| p.status == 429).collect();
    let limit = shared::domain::portal::LINK_REQUESTS_PER_WINDOW as usize;
    assert_eq!((ok, limited.len()), (limit, 50 - limit));
    assert!(limited
        .iter()
        .all(|p| p.code() == Some("RATE_LIMITED") && p.headers.contains_key("retry-after")));
    assert_eq!(
        sent_mail(&email).await.len(),
        limit,
        "exactly one e-mail per admitted request"
    );
    // The limit is per address: another one still gets through.
    assert_eq!(
        v.post("/login", &[("email", &unique("x"))]).await.status,
        200
    );
}

#[tokio::test]
async fn another_tenants_cookie_and_missing_csrf_change_nothing() {
    let env = Env::start().await;
    let a = env.tenant("alpha").await;
    let b = env.tenant("beta").await;
    let customer = unique("b");
    let (lid, key) = license_for(&env, &b, &customer, 2, json!({})).await;

    let mut staff_a = Visitor::new(&env, &a.id);
    assert_eq!(staff_a.sign_in(&admin_email(&a)).await.status, 303);
    // Tenant A's session cookie presented to tenant B's portal.
    let mut stolen = Visitor::new(&env, &b.id);
    stolen.cookie = staff_a.cookie.clone();
    let r = stolen.get(&format!("/staff/licenses/{lid}")).await;
    assert_eq!(
        (r.status, r.code()),
        (401, Some("UNAUTHENTICATED")),
        "{r:?}"
    );
    assert!(r.html.contains("Sign in"));
    let r = stolen
        .post(&format!("/staff/licenses/{lid}"), &[("action", "suspend")])
        .await;
    assert_eq!(r.status, 401);
    // Nor does A's staff see B's license through A's portal.
    let r = staff_a.get(&format!("/staff/licenses/{lid}")).await;
    assert_eq!((r.status, r.code()), (404, Some("LICENSE_NOT_FOUND")));

    // B's own staff, without the CSRF token, with a wrong one, from another origin.
    let mut staff_b = Visitor::new(&env, &b.id);
    staff_b.sign_in(&admin_email(&b)).await;
    let csrf = staff_b
        .get(&format!("/staff/licenses/{lid}"))
        .await
        .csrf()
        .unwrap()
        .to_string();
    let path = format!("/staff/licenses/{lid}");
    let refused = [
        staff_b.post(&path, &[("action", "suspend")]).await,
        staff_b
            .post(&path, &[("action", "suspend"), ("csrf", "nope")])
            .await,
        staff_b
            .post(
                &path,
                &[
                    ("action", "suspend"),
                    ("csrf", &staff_a_csrf(&staff_a).await),
                ],
            )
            .await,
        staff_b
            .post_from(
                Some("https://evil.example"),
                &path,
                &[("action", "suspend"), ("csrf", &csrf)],
            )
            .await,
        staff_b
            .post_from(None, &path, &[("action", "suspend"), ("csrf", &csrf)])
            .await,
    ];
    for r in &refused {
        assert_eq!((r.status, r.code()), (403, Some("CSRF_FAILED")), "{r:?}");
        assert!(r.html.contains("Nothing was changed"));
    }
    let v = env.validate(&b, &key, json!({})).await;
    assert_eq!(v.data()["code"], "VALID", "nothing changed");
    let audit = env.get("/v1/manage/audit-events", &b.admin).await;
    assert!(!audit.text.contains("LICENSE.SUSPENDED"));
}

async fn staff_a_csrf(v: &Visitor) -> String {
    v.get("/staff").await.csrf().unwrap().to_string()
}

#[tokio::test]
async fn a_customer_frees_a_seat_within_the_churn_limit() {
    let env = Env::start().await;
    let t = env.tenant("selfserve").await;
    let me = unique("me");
    let churn = json!({ "max_deactivations": { "count": 1, "period": "day" } });
    let (lid, key) = license_for(&env, &t, &me, 2, churn).await;
    let old = activate(&env, &t, &key, "old-laptop").await;
    let other = activate(&env, &t, &key, "desktop").await;
    let someone = unique("someone");
    let (their_lid, their_key) = license_for(&env, &t, &someone, 1, json!({})).await;
    let theirs = activate(&env, &t, &their_key, "their-box").await;

    let mut v = Visitor::new(&env, &t.id);
    assert_eq!(v.sign_in(&me).await.status, 303);
    assert_eq!(
        v.get("/").await.location.as_deref(),
        Some(format!("/portal/{}/me", t.id).as_str())
    );
    let page = v.get("/me").await;
    assert!(page.html.contains("old-laptop") && page.html.contains(&lid));
    assert!(!page.html.contains(&their_lid), "only my licenses");
    assert_eq!(
        v.get("/staff").await.status,
        404,
        "customers have no staff pages"
    );
    let csrf = page.csrf().unwrap().to_string();

    let r = v
        .post(
            &format!("/me/licenses/{lid}"),
            &[
                ("csrf", &csrf),
                ("action", "deactivate"),
                ("activation", &old),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{r:?}");
    let v_api = env.validate(&t, &key, json!({})).await;
    assert_eq!(v_api.data()["license"]["seats"]["used"], 1, "{v_api:?}");
    // The freed seat takes a new machine.
    activate(&env, &t, &key, "new-laptop").await;

    // The churn limit (1 a day) holds in the portal as in the API.
    let r = v
        .post(
            &format!("/me/licenses/{lid}"),
            &[
                ("csrf", &csrf),
                ("action", "deactivate"),
                ("activation", &other),
            ],
        )
        .await;
    assert_eq!(
        (r.status, r.code()),
        (429, Some("DEACTIVATION_LIMIT_REACHED")),
        "{r:?}"
    );

    // Another customer's machine: not found, whichever license it is posted under.
    for path in [
        format!("/me/licenses/{their_lid}"),
        format!("/me/licenses/{lid}"),
    ] {
        let r = v
            .post(
                &path,
                &[
                    ("csrf", &csrf),
                    ("action", "deactivate"),
                    ("activation", &theirs),
                ],
            )
            .await;
        assert_eq!(r.status, 404, "{path}: {r:?}");
    }
    let acts = env
        .get(
            &format!("/v1/manage/licenses/{their_lid}/activations"),
            &t.admin,
        )
        .await;
    assert_eq!(acts.data()[0]["status"], "active");

    let audit = env.get("/v1/manage/audit-events", &t.admin).await;
    let ev = audit
        .data()
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["code"] == "ACTIVATION.DELETED")
        .cloned()
        .unwrap();
    assert_eq!(ev["actor"], format!("customer:{me}"));
}

#[tokio::test]
async fn staff_invite_staff_and_manage_api_keys() {
    let env = Env::start().await;
    let t = env.tenant("team").await;
    let mut admin = Visitor::new(&env, &t.id);
    admin.sign_in(&admin_email(&t)).await;
    let csrf = admin.get("/staff/team").await.csrf().unwrap().to_string();
    let colleague = unique("colleague");
    let r = admin
        .post("/staff/team", &[("csrf", &csrf), ("email", &colleague)])
        .await;
    assert_eq!(r.status, 303, "{r:?}");
    let again = admin
        .post("/staff/team", &[("csrf", &csrf), ("email", &colleague)])
        .await;
    assert_eq!((again.status, again.code()), (409, Some("STAFF_EXISTS")));
    let mut c = Visitor::new(&env, &t.id);
    c.sign_in(&colleague).await;
    assert_eq!(
        c.get("/staff").await.status,
        200,
        "an invited colleague is staff"
    );

    let ccsrf = c.get("/staff/api-keys").await.csrf().unwrap().to_string();
    let made = c
        .post(
            "/staff/api-keys",
            &[
                ("csrf", &ccsrf),
                ("action", "create"),
                ("name", "ci"),
                ("scope", "integration"),
            ],
        )
        .await;
    assert_eq!(made.status, 200, "{made:?}");
    let at = made.html.find("lk_").unwrap();
    let key: String = made.html[at..]
        .chars()
        .take_while(|ch| *ch != '<')
        .collect();
    let ok = env
        .post(
            "/v1/integration/entitlements/check",
            &key,
            json!({ "license_key": "NOPE-NOPE-NOPE", "feature": "x" }),
        )
        .await;
    assert_ne!(ok.status, 401, "the new key authenticates: {ok:?}");
    let id = key.split('_').nth(2).map(|u| format!("key_{u}")).unwrap();
    let r = c
        .post(
            "/staff/api-keys",
            &[("csrf", &ccsrf), ("action", "revoke"), ("key", &id)],
        )
        .await;
    assert_eq!(r.status, 303, "{r:?}");
    let audit = env.get("/v1/manage/audit-events", &t.admin).await;
    let codes: Vec<_> = audit
        .data()
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["code"].as_str().unwrap().to_string(),
                e["actor"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(
        codes.contains(&("APIKEY.CREATED".into(), format!("staff:{colleague}"))),
        "{codes:?}"
    );
    assert!(codes.contains(&("APIKEY.REVOKED".into(), format!("staff:{colleague}"))));
    assert!(codes.contains(&("STAFF.INVITED".into(), format!("staff:{}", admin_email(&t)))));
}

#[tokio::test]
async fn staff_issue_a_license_the_api_validates() {
    let env = Env::start().await;
    let t = env.tenant("issuer").await;
    let first = unique("first");
    let (lid, _) = license_for(&env, &t, &first, 2, json!({})).await;
    let policy = env
        .get(&format!("/v1/manage/licenses/{lid}"), &t.admin)
        .await
        .data()["policy"]
        .as_str()
        .unwrap()
        .to_string();
    let mut staff = Visitor::new(&env, &t.id);
    staff.sign_in(&admin_email(&t)).await;
    let page = staff.get("/staff").await;
    assert!(
        page.html.contains(&policy),
        "the issue form offers the policy"
    );
    let csrf = page.csrf().unwrap().to_string();
    let buyer = unique("buyer");
    let r = staff
        .post(
            "/staff/licenses",
            &[("csrf", &csrf), ("policy", &policy), ("email", &buyer)],
        )
        .await;
    assert_eq!(r.status, 303, "{r:?}");
    let new_id = r
        .location
        .unwrap()
        .split('/')
        .nth(5)
        .unwrap()
        .split('?')
        .next()
        .unwrap()
        .to_string();
    let l = env
        .get(&format!("/v1/manage/licenses/{new_id}"), &t.admin)
        .await;
    assert_eq!(
        (l.status, l.data()["customer_email"].as_str()),
        (200, Some(buyer.as_str()))
    );
    let key = l.data()["key"].as_str().unwrap();
    let v = env.validate(&t, key, json!({})).await;
    assert_eq!(v.data()["code"], "VALID");
    let audit = env.get("/v1/manage/audit-events", &t.admin).await;
    let ev = audit
        .data()
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["code"] == "LICENSE.CREATED" && e["target_id"] == new_id.as_str())
        .cloned()
        .unwrap();
    assert_eq!(ev["actor"], format!("staff:{}", admin_email(&t)));
    // Without the CSRF token nothing is issued.
    let other = unique("other");
    let r = staff
        .post("/staff/licenses", &[("policy", &policy), ("email", &other)])
        .await;
    assert_eq!(r.status, 403);
    let none = env
        .get(&format!("/v1/manage/licenses?email={other}"), &t.admin)
        .await;
    assert_eq!(none.data().as_array().map(Vec::len), Some(0));
}

#[tokio::test]
async fn a_customer_downloads_a_signed_license_file_of_their_own_license_only() {
    use licensing_client::{verify_license_file, PinnedKeys};
    let env = Env::start().await;
    let t = env.tenant("selffile").await;
    let me = unique("me");
    let (lid, key) = license_for(&env, &t, &me, 2, json!({})).await;
    activate(&env, &t, &key, "laptop").await;
    let (their_lid, _) = license_for(&env, &t, &unique("else"), 1, json!({})).await;

    let mut v = Visitor::new(&env, &t.id);
    assert_eq!(v.sign_in(&me).await.status, 303);
    let page = v.get("/me").await;
    assert!(
        page.html.contains(&format!("/me/licenses/{lid}/file")),
        "a download link"
    );

    let file = v
        .get(&format!("/me/licenses/{lid}/file?fingerprint=laptop"))
        .await;
    assert_eq!(file.status, 200, "{file:?}");
    let disposition = file.headers["content-disposition"].to_str().unwrap();
    assert_eq!(disposition, format!("attachment; filename=\"{lid}.lic\""));
    // It verifies offline against the tenant's published key, bound to the machine.
    let keys_r = env
        .send(
            "GET",
            &format!("/v1/public/tenants/{}/signing-keys", t.id),
            None,
            None,
        )
        .await;
    let mut keys = PinnedKeys::new();
    for k in keys_r.data()["keys"].as_array().unwrap() {
        keys.pin(
            k["kid"].as_str().unwrap(),
            k["public_key"].as_str().unwrap(),
        )
        .unwrap();
    }
    let now = time::OffsetDateTime::now_utc();
    let f = verify_license_file(&file.html, &keys, &t.id, Some("laptop"), now).expect("verifies");
    assert_eq!(f.license.id, lid);
    assert!(verify_license_file(&file.html, &keys, &t.id, Some("other-box"), now).is_err());

    // A machine that is not activated, and another customer's license: refused.
    let unbound = v
        .get(&format!("/me/licenses/{lid}/file?fingerprint=nope"))
        .await;
    assert_eq!(unbound.status, 409, "{unbound:?}");
    let theirs = v.get(&format!("/me/licenses/{their_lid}/file")).await;
    assert_eq!(theirs.status, 404, "{theirs:?}");
    // Signed out: no file.
    let anon = Visitor::new(&env, &t.id);
    let r = anon.get(&format!("/me/licenses/{lid}/file")).await;
    assert_ne!(r.status, 200);
}

#[tokio::test]
async fn a_removed_staff_members_session_stops_at_the_next_request() {
    let env = Env::start().await;
    let t = env.tenant("offboard").await;
    let mut admin = Visitor::new(&env, &t.id);
    admin.sign_in(&admin_email(&t)).await;
    let csrf = admin.get("/staff/team").await.csrf().unwrap().to_string();
    let (leaver, other) = (unique("leaver"), unique("other"));
    for who in [&leaver, &other] {
        let r = admin
            .post("/staff/team", &[("csrf", &csrf), ("email", who)])
            .await;
        assert_eq!(r.status, 303, "{r:?}");
    }
    let mut l = Visitor::new(&env, &t.id);
    l.sign_in(&leaver).await;
    let lcsrf = l.get("/staff/api-keys").await.csrf().unwrap().to_string();
    assert_eq!(l.get("/staff").await.status, 200);

    // Removed through the Management API (the path's e-mail percent-encoded,
    // any case): the very next request of their live session is refused,
    // and they cannot mint a key with it.
    let path = format!(
        "/v1/manage/staff/{}",
        leaver.to_uppercase().replace('@', "%40")
    );
    let r = env.delete(&path, &t.admin).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.data()["email"], leaver.as_str());
    assert_eq!(r.data()["removed"], true);
    let page = l.get("/staff").await;
    assert_eq!(page.status, 401, "{page:?}");
    let made = l
        .post(
            "/staff/api-keys",
            &[
                ("csrf", &lcsrf),
                ("action", "create"),
                ("name", "backdoor"),
                ("scope", "admin"),
            ],
        )
        .await;
    assert_eq!(made.status, 401, "{made:?}");
    assert!(!made.html.contains("lk_"), "no key was shown");
    let keys = env.get("/v1/manage/api-keys", &t.admin).await;
    assert!(!keys.text.contains("backdoor"), "no key was made: {keys:?}");
    // No new link is sent to them either.
    let mails = sent_mail(&leaver).await.len();
    let again = l.post("/login", &[("email", &leaver)]).await;
    assert_eq!(again.status, 200);
    assert_eq!(sent_mail(&leaver).await.len(), mails);
    // Removing again, the admin e-mail, or a non-address.
    let r = env.delete(&path, &t.admin).await;
    assert_eq!((r.status, r.code()), (404, "STAFF_NOT_FOUND"), "{r:?}");
    let r = env
        .delete(
            &format!("/v1/manage/staff/{}", admin_email(&t).replace('@', "%40")),
            &t.admin,
        )
        .await;
    assert_eq!(
        (r.status, r.code()),
        (409, "STAFF_IS_TENANT_ADMIN"),
        "{r:?}"
    );
    let r = env
        .delete("/v1/manage/staff/not-an-address", &t.admin)
        .await;
    assert_eq!((r.status, r.code()), (404, "STAFF_NOT_FOUND"), "{r:?}");
    let r = env.delete(&path, &t.integration).await;
    assert_eq!(r.status, 403, "an integration key may not: {r:?}");

    // Removed from the portal's team page by a staff member.
    let mut o = Visitor::new(&env, &t.id);
    o.sign_in(&other).await;
    assert_eq!(o.get("/staff").await.status, 200);
    let team = admin.get("/staff/team").await;
    assert!(team.html.contains(&other), "listed with a remove button");
    let r = admin
        .post(
            "/staff/team",
            &[("csrf", &csrf), ("action", "remove"), ("email", &other)],
        )
        .await;
    assert_eq!(r.status, 303, "{r:?}");
    assert_eq!(o.get("/staff").await.status, 401);
    let team = admin.get("/staff/team?done=removed").await;
    assert!(!team.html.contains(&other), "{}", team.html);

    let audit = env.get("/v1/manage/audit-events", &t.admin).await;
    let removed: Vec<(String, String)> = audit
        .data()
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["code"] == "STAFF.REMOVED")
        .map(|e| {
            (
                e["target_id"].as_str().unwrap().to_string(),
                e["actor"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(removed.len(), 2, "{removed:?}");
    assert!(removed.contains(&(other.clone(), format!("staff:{}", admin_email(&t)))));
    assert!(removed
        .iter()
        .any(|(who, actor)| who == &leaver && actor.starts_with("key_")));
}

#[tokio::test]
async fn full_keys_appear_only_in_the_customers_own_license_file() {
    let env = Env::start().await;
    let t = env.tenant("keyshow").await;
    let me = unique("me");
    let (lid, key) = license_for(&env, &t, &me, 2, json!({})).await;
    activate(&env, &t, &key, "laptop").await;
    let last4: String = key[key.len() - 4..].to_string();

    let mut staff = Visitor::new(&env, &t.id);
    staff.sign_in(&admin_email(&t)).await;
    // Search results name the license by id, with no key at all.
    let found = staff.get(&format!("/staff?q={me}")).await;
    assert!(found.html.contains(&lid));
    assert!(!found.html.contains(&key), "a full key in the results");
    let page = staff.get(&format!("/staff/licenses/{lid}")).await;
    assert_eq!(page.status, 200);
    assert!(page.html.contains(&last4), "the last four");
    assert!(!page.html.contains(&key), "a full key on the license page");
    let mut c = Visitor::new(&env, &t.id);
    c.sign_in(&me).await;
    let page = c.get("/me").await;
    assert!(page.html.contains(&last4));
    assert!(
        !page.html.contains(&key),
        "the customer's page shows no full key"
    );
    // The customer's own license file is the license: it carries the key.
    let file = c.get(&format!("/me/licenses/{lid}/file")).await;
    assert_eq!(file.status, 200);
    let f = licensing_client::verify_license_file(
        &file.html,
        &{
            let r = env
                .send(
                    "GET",
                    &format!("/v1/public/tenants/{}/signing-keys", t.id),
                    None,
                    None,
                )
                .await;
            let mut keys = licensing_client::PinnedKeys::new();
            for k in r.data()["keys"].as_array().unwrap() {
                keys.pin(
                    k["kid"].as_str().unwrap(),
                    k["public_key"].as_str().unwrap(),
                )
                .unwrap();
            }
            keys
        },
        &t.id,
        None,
        time::OffsetDateTime::now_utc(),
    )
    .expect("verifies");
    assert_eq!(f.license.key, key);
    assert_eq!(file.headers["cache-control"], "no-store");
}
