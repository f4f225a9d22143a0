//! The portal pages of a customer organization (`/portal/{customer_id}/...`)
//! and the vendor staff's Customers page, through `Visitor` (no browser):
//! each page, its forms, and the RBAC refusals the API makes too.

use harness::{Env, Org, Tenant, Visitor};
use serde_json::json;

/// A floating license of `seats` + `overage` on product `code` of vendor
/// `t`, granted to `org`; its id.
pub async fn grant(
    env: &Env,
    t: &Tenant,
    org: &Org,
    code: &str,
    seats: u32,
    overage: u32,
) -> String {
    let r = env
        .post(
            "/v1/manage/products",
            &t.admin,
            json!({ "code": code, "name": format!("{code} suite") }),
        )
        .await;
    assert!(r.status == 201 || r.status == 409, "{r:?}");
    let p = env
        .post(
            "/v1/manage/policies",
            &t.admin,
            json!({ "product": code, "name": "Pool", "max_activations": seats,
                    "activation_mode": "floating", "lease_seconds": 600, "max_overage": overage }),
        )
        .await;
    assert_eq!(p.status, 201, "{p:?}");
    let l = env
        .post(
            "/v1/manage/licenses",
            &t.admin,
            json!({ "policy": p.data()["id"], "customer": { "id": org.id } }),
        )
        .await;
    assert_eq!(l.status, 201, "{l:?}");
    l.data()["id"].as_str().unwrap().to_string()
}

/// A checkout with an app key from host `host`.
pub async fn checkout(
    env: &Env,
    key: &str,
    host: &str,
    product: &str,
    user: &str,
) -> harness::Resp {
    let body = json!({ "product": product, "user": user })
        .to_string()
        .into_bytes();
    let h = [
        ("x-api-key", key),
        ("x-hostname", host),
        ("content-type", "application/json"),
    ];
    env.send_raw("POST", "/v1/customer/checkouts", &h, body)
        .await
}

/// A visitor signed in as the organization's admin (the harness's session).
fn admin(env: &Env, org: &Org) -> Visitor {
    let mut v = Visitor::new(env, &org.id);
    v.cookie = Some(org.session.portal_cookie.clone());
    v
}

/// A member with `role` (added through the admin's API session) and their visitor.
async fn member(env: &Env, org: &Org, local: &str, role: &str) -> Visitor {
    let email = format!("{local}@{}", org.domain);
    let r = env
        .org_send(
            "POST",
            "/v1/customer/members",
            &org.session,
            Some(&json!({ "email": email, "role": role })),
        )
        .await;
    assert_eq!(r.status, 201, "{r:?}");
    let s = env.org_session(&org.id, &email).await;
    let mut v = Visitor::new(env, &org.id);
    v.cookie = Some(s.portal_cookie);
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pages_show_the_pool_and_the_admin_works_it() {
    let env = Env::start().await;
    let org = env.customer_org("porg").await;
    let (vx, vy) = (env.tenant("pvendx").await, env.tenant("pvendy").await);
    let lx = grant(&env, &vx, &org, "cad", 1, 2).await;
    let ly = grant(&env, &vy, &org, "sim", 3, 0).await;
    let v = admin(&env, &org);

    // Unsigned: home goes to sign-in; a page is a 401.
    let anon = Visitor::new(&env, &org.id);
    assert_eq!(anon.get("/").await.status, 303);
    assert_eq!(anon.get("/licenses").await.status, 401);

    // Two checkouts: the second takes an overage seat.
    for u in ["ann", "bob"] {
        let r = checkout(&env, &org.admin_key, "ws-1", "cad", u).await;
        assert_eq!(r.status, 201, "{r:?}");
    }
    let home = v.get("/").await;
    assert_eq!(home.status, 200, "{home:?}");
    assert!(home.html.contains(&org.name));
    assert!(
        home.html.contains(r#"<dd id="active-licenses">2</dd>"#),
        "{}",
        home.html
    );
    assert!(
        home.html.contains(r#"<dd id="overage-now">1</dd>"#),
        "{}",
        home.html
    );
    assert!(
        home.html.contains(r#"<dd id="overage-month">1</dd>"#),
        "{}",
        home.html
    );

    // The catalog: both vendors, seats and overage, the cap form for the admin.
    let cat = v.get("/licenses").await;
    assert_eq!(cat.status, 200);
    assert!(cat.html.contains(&format!("data-license=\"{lx}\"")));
    assert!(cat.html.contains(&format!("data-license=\"{ly}\"")));
    assert!(cat.html.contains("1 of 1"), "seats in use: {}", cat.html);
    assert!(cat
        .html
        .contains(&format!("action=\"/portal/{}/licenses/{lx}\"", org.id)));
    let csrf = cat.csrf().unwrap().to_string();
    let set = v
        .post(
            &format!("/licenses/{lx}"),
            &[("csrf", &csrf), ("overage_limit", "1")],
        )
        .await;
    assert_eq!(set.status, 303, "{set:?}");
    let api = env.get("/v1/customer/catalog", &org.admin_key).await;
    let x = api
        .data()
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["license_id"] == lx.as_str())
        .unwrap()
        .clone();
    assert_eq!(x["overage"]["limit"], 1);
    // Over the vendor's maximum: the API's refusal, nothing changed.
    let over = v
        .post(
            &format!("/licenses/{lx}"),
            &[("csrf", &csrf), ("overage_limit", "9")],
        )
        .await;
    assert_eq!((over.status, over.code()), (422, Some("VALIDATION_ERROR")));
    // Without the CSRF token: refused.
    let forged = v
        .post(&format!("/licenses/{lx}"), &[("overage_limit", "0")])
        .await;
    assert_eq!((forged.status, forged.code()), (403, Some("CSRF_FAILED")));

    // The live pool: both users, the overage one marked, reloading itself.
    let pool = v.get("/pool").await;
    assert_eq!(pool.status, 200);
    assert!(pool.html.contains("http-equiv=\"refresh\""));
    assert!(
        pool.html.contains(">ann<") && pool.html.contains(">bob<"),
        "{}",
        pool.html
    );
    assert!(pool.html.contains("ws-1"));
    assert_eq!(pool.html.matches(">yes<").count(), 1, "{}", pool.html);

    // API keys: create (shown once), list, revoke.
    let keys = v.get("/api-keys").await;
    assert_eq!(keys.status, 200);
    let made = v
        .post(
            "/api-keys",
            &[
                ("csrf", &csrf),
                ("action", "create"),
                ("app_name", "Render farm"),
                ("app_type", "ci_cd"),
                ("scope_read", "on"),
                ("expires_in_days", "30"),
                ("allowed_hostnames", "farm-1, farm-2"),
            ],
        )
        .await;
    assert_eq!(made.status, 200, "{made:?}");
    let at = made
        .html
        .find("id=\"new-key\"")
        .expect("the new key is shown");
    let key = made.html[at..]
        .split("<code>")
        .nth(1)
        .unwrap()
        .split("</code>")
        .next()
        .unwrap()
        .to_string();
    let cat = env
        .send_raw(
            "GET",
            "/v1/customer/catalog",
            &[("x-api-key", &key), ("x-hostname", "farm-2")],
            Vec::new(),
        )
        .await;
    assert_eq!(cat.status, 200, "{cat:?}");
    let wrong_host = env
        .send_raw(
            "GET",
            "/v1/customer/catalog",
            &[("x-api-key", &key), ("x-hostname", "ws-9")],
            Vec::new(),
        )
        .await;
    assert_eq!(
        (wrong_host.status, wrong_host.code()),
        (403, "KEY_BINDING_MISMATCH")
    );
    let listed = v.get("/api-keys").await;
    assert!(listed.html.contains("Render farm") && listed.html.contains("hosts farm-1, farm-2"));
    assert!(!listed.html.contains(&key), "a key is shown once only");
    let key_id = listed
        .html
        .split("data-key=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string();
    let revoked = v
        .post(
            "/api-keys",
            &[("csrf", &csrf), ("action", "revoke"), ("key", &key_id)],
        )
        .await;
    assert_eq!(revoked.status, 303, "{revoked:?}");
    let after = env
        .send_raw(
            "GET",
            "/v1/customer/catalog",
            &[("x-api-key", &key), ("x-hostname", "farm-2")],
            Vec::new(),
        )
        .await;
    assert_eq!(after.status, 401, "{after:?}");

    // Members: invite (an e-mail), change the role, remove; the last admin stays.
    let carol = format!("carol@{}", org.domain);
    let inv = v
        .post(
            "/members",
            &[
                ("csrf", &csrf),
                ("action", "invite"),
                ("email", &carol),
                ("role", "viewer"),
            ],
        )
        .await;
    assert_eq!(inv.status, 303, "{inv:?}");
    assert!(
        harness::last_link(&carol).await.is_some(),
        "the invitation e-mail"
    );
    let role = v
        .post(
            "/members",
            &[
                ("csrf", &csrf),
                ("action", "role"),
                ("email", &carol),
                ("role", "manager"),
            ],
        )
        .await;
    assert_eq!(role.status, 303, "{role:?}");
    let page = v.get("/members").await;
    assert!(page.html.contains(&format!("data-email=\"{carol}\"")));
    let row = page
        .html
        .split(&format!("data-email=\"{carol}\""))
        .nth(1)
        .unwrap();
    assert!(
        row.split("</tr>")
            .next()
            .unwrap()
            .contains("value=\"manager\" selected"),
        "{row}"
    );
    let demote = v
        .post(
            "/members",
            &[
                ("csrf", &csrf),
                ("action", "role"),
                ("email", &org.admin_email),
                ("role", "viewer"),
            ],
        )
        .await;
    assert_eq!((demote.status, demote.code()), (409, Some("LAST_ADMIN")));
    let last = v
        .post(
            "/members",
            &[
                ("csrf", &csrf),
                ("action", "remove"),
                ("email", &org.admin_email),
            ],
        )
        .await;
    assert_eq!((last.status, last.code()), (409, Some("LAST_ADMIN")));
    let gone = v
        .post(
            "/members",
            &[("csrf", &csrf), ("action", "remove"), ("email", &carol)],
        )
        .await;
    assert_eq!(gone.status, 303, "{gone:?}");
    assert!(!v.get("/members").await.html.contains(&carol));

    // Audit: newest first, with what the pages did.
    let audit = v.get("/audit").await;
    assert_eq!(audit.status, 200);
    let removed = audit.html.find("MEMBER.REMOVED").expect("the removal");
    let added = audit.html.find("MEMBER.ADDED").expect("the invitation");
    assert!(removed < added, "newest first");
    assert!(audit.html.contains("GRANT.UPDATED") && audit.html.contains("APIKEY.CREATED"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_trail_is_paged() {
    let env = Env::start().await;
    let org = env.customer_org("paudit").await;
    // 60 events: key creations through the API.
    for i in 0..60 {
        let r = env
            .org_send(
                "POST",
                "/v1/customer/api-keys",
                &org.session,
                Some(
                    &json!({ "app_name": format!("app{i}"), "app_type": "desktop",
                              "scopes": ["license:read"] }),
                ),
            )
            .await;
        assert_eq!(r.status, 201, "{r:?}");
    }
    let v = admin(&env, &org);
    let first = v.get("/audit").await;
    assert_eq!(
        first.html.matches("<tr>").count(),
        50 + 1,
        "header + 50 rows"
    );
    let href = first
        .html
        .split("id=\"older\" href=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    let path = href
        .trim_start_matches(&format!("/portal/{}", org.id))
        .replace("&amp;", "&");
    let second = v.get(&path).await;
    assert_eq!(second.status, 200, "{second:?}");
    assert!(
        second.html.matches("<tr>").count() >= 11,
        "the rest: {}",
        second.html
    );
    let name = |i: u32| format!("&quot;app{i}&quot;");
    assert!(first.html.contains(&name(59)) && !first.html.contains(&name(0)));
    assert!(
        second.html.contains(&name(0)),
        "newest first: the oldest on the second page"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_and_organizations_are_enforced() {
    let env = Env::start().await;
    let (a, b) = (
        env.customer_org("prbaca").await,
        env.customer_org("prbacb").await,
    );
    let viewer = member(&env, &a, "vera", "viewer").await;
    let manager = member(&env, &a, "mia", "manager").await;

    // A viewer reads the catalog, pool, members and audit, not the keys.
    for page in ["/", "/licenses", "/pool", "/members", "/audit"] {
        assert_eq!(viewer.get(page).await.status, 200, "{page}");
    }
    let keys = viewer.get("/api-keys").await;
    assert_eq!((keys.status, keys.code()), (403, Some("FORBIDDEN")));
    let csrf = viewer.get("/members").await.csrf().unwrap().to_string();
    let create = viewer
        .post(
            "/api-keys",
            &[
                ("csrf", &csrf),
                ("action", "create"),
                ("app_name", "x"),
                ("app_type", "desktop"),
                ("scope_read", "on"),
            ],
        )
        .await;
    assert_eq!((create.status, create.code()), (403, Some("FORBIDDEN")));
    let list = env
        .org_send("GET", "/v1/customer/api-keys", &a.session, None)
        .await;
    assert_eq!(
        list.data().as_array().unwrap().len(),
        1,
        "only the harness's key"
    );
    // The viewer sees no member forms, and may not invite.
    let members = viewer.get("/members").await;
    assert!(!members.html.contains("id=\"invite\""));
    let inv = viewer
        .post(
            "/members",
            &[
                ("csrf", &csrf),
                ("action", "invite"),
                ("email", "x@prbaca.example"),
                ("role", "admin"),
            ],
        )
        .await;
    assert_eq!((inv.status, inv.code()), (403, Some("FORBIDDEN")));

    // A manager manages keys but not members.
    let mcsrf = manager.get("/api-keys").await.csrf().unwrap().to_string();
    let made = manager
        .post(
            "/api-keys",
            &[
                ("csrf", &mcsrf),
                ("action", "create"),
                ("app_name", "m"),
                ("app_type", "desktop"),
                ("scope_read", "on"),
            ],
        )
        .await;
    assert_eq!(made.status, 200, "{made:?}");
    let inv = manager
        .post(
            "/members",
            &[
                ("csrf", &mcsrf),
                ("action", "invite"),
                ("email", "y@x.example"),
                ("role", "viewer"),
            ],
        )
        .await;
    assert_eq!((inv.status, inv.code()), (403, Some("FORBIDDEN")));

    // Org A's member cannot see org B's pages: A's cookie means nothing there.
    let mut cross = Visitor::new(&env, &b.id);
    cross.cookie = Some(a.session.portal_cookie.clone());
    assert_eq!(cross.get("/").await.status, 303, "to B's sign-in");
    for page in ["/licenses", "/pool", "/api-keys", "/members", "/audit"] {
        assert_eq!(cross.get(page).await.status, 401, "{page}");
    }
    // A vendor's portal has none of these pages, nor an organization the staff pages.
    let t = env.tenant("prbacv").await;
    let vendor = Visitor::new(&env, &t.id);
    assert_eq!(vendor.get("/pool").await.status, 404);
    assert_eq!(admin(&env, &a).get("/staff/customers").await.status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_vendor_customers_page_finds_links_and_shows_only_its_licenses() {
    let env = Env::start().await;
    let org = env.customer_org("pcust").await;
    let (v1, v2) = (env.tenant("pcustone").await, env.tenant("pcusttwo").await);
    let mine = grant(&env, &v1, &org, "cad", 2, 0).await;
    let theirs = grant(&env, &v2, &org, "sim", 2, 0).await;
    let admin_email = format!("ops@{}.example", v1.id.rsplit_once('-').unwrap().0);
    let mut staff = Visitor::new(&env, &v1.id);
    assert_eq!(staff.sign_in(&admin_email).await.status, 303);

    let nav = staff.get("/staff").await;
    assert!(
        nav.html
            .contains(&format!("/portal/{}/staff/customers", v1.id)),
        "in the navigation"
    );
    let found = staff
        .get(&format!("/staff/customers?by=domain&q={}", org.domain))
        .await;
    assert_eq!(found.status, 200, "{found:?}");
    assert!(
        found
            .html
            .contains(&format!("data-customer=\"{}\"", org.id)),
        "{}",
        found.html
    );
    let by_name = staff.get("/staff/customers?by=name&q=pcust").await;
    assert!(by_name.html.contains(&org.id));
    let bad = staff
        .get("/staff/customers?by=domain&q=not%20a%20domain")
        .await;
    assert_eq!(bad.status, 200);
    assert!(bad.html.contains("id=\"error\""));

    let page = staff.get(&format!("/staff/customers/{}", org.id)).await;
    assert_eq!(page.status, 200, "{page:?}");
    assert!(page.html.contains(&format!("data-license=\"{mine}\"")));
    assert!(
        !page.html.contains(&theirs),
        "another vendor's license is not shown"
    );
    let csrf = page.csrf().unwrap().to_string();
    let linked = staff
        .post(
            &format!("/staff/customers/{}", org.id),
            &[("csrf", &csrf), ("crm_account_id", "ACC-42")],
        )
        .await;
    assert_eq!(linked.status, 303, "{linked:?}");
    let by_crm = staff.get("/staff/customers?by=crm&q=ACC-42").await;
    assert!(by_crm.html.contains(&org.id), "{}", by_crm.html);
    // The other vendor sees its own license only, and not the CRM id.
    let mut other = Visitor::new(&env, &v2.id);
    let e2 = format!("ops@{}.example", v2.id.rsplit_once('-').unwrap().0);
    other.sign_in(&e2).await;
    let p2 = other.get(&format!("/staff/customers/{}", org.id)).await;
    assert!(p2.html.contains(&theirs) && !p2.html.contains(&mine));
    assert!(!p2.html.contains("ACC-42"));
    // Unknown organization: 404; a customer of the vendor (no staff): 401.
    assert_eq!(staff.get("/staff/customers/nobody-here").await.status, 404);
    assert_eq!(
        Visitor::new(&env, &v1.id)
            .get("/staff/customers")
            .await
            .status,
        401
    );
}
