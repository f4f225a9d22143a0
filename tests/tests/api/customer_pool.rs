//! Customer organizations, part B: grants, the catalog, and the pool of
//! floating seats the organization's apps borrow by product and user.

use harness::{Env, Org, Resp, Tenant};
use serde_json::{json, Value};

/// A floating policy of `seats` + `max_overage` on a new product `code` of
/// vendor `t`, and a license of it issued to `org` (by id).
async fn grant(env: &Env, t: &Tenant, org: &Org, code: &str, seats: u32, overage: u32) -> String {
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
            json!({ "policy": p.data()["id"], "customer": { "id": org.id },
                    "crm_opportunity_id": "opp-1" }),
        )
        .await;
    assert_eq!(l.status, 201, "{l:?}");
    assert_eq!(l.data()["customer_email"], org.admin_email.as_str());
    l.data()["id"].as_str().unwrap().to_string()
}

async fn checkout(env: &Env, key: &str, host: &str, body: Value) -> Resp {
    let b = body.to_string().into_bytes();
    let h = [
        ("x-api-key", key),
        ("x-hostname", host),
        ("content-type", "application/json"),
    ];
    env.send_raw("POST", "/v1/customer/checkouts", &h, b).await
}

async fn app_key(env: &Env, org: &Org, bindings: Value) -> String {
    let mut body = json!({
        "app_name": "CAD fleet", "app_type": "desktop",
        "scopes": ["license:checkout", "license:return", "license:read"],
    });
    for (k, v) in bindings.as_object().unwrap() {
        body[k] = v.clone();
    }
    let r = env
        .org_send("POST", "/v1/customer/api-keys", &org.session, Some(&body))
        .await;
    assert_eq!(r.status, 201, "{r:?}");
    r.data()["key"].as_str().unwrap().to_string()
}

/// A GET with a hostname-bound key (it sends `X-Hostname: ws-1`).
async fn get_on_ws1(env: &Env, path: &str, key: &str) -> Resp {
    let h = [("x-api-key", key), ("x-hostname", "ws-1")];
    env.send_raw("GET", path, &h, Vec::new()).await
}

fn list(r: &Resp) -> Vec<Value> {
    assert_eq!(r.status, 200, "{r:?}");
    r.data().as_array().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_vendors_grant_and_the_org_borrows_exactly_its_seats() {
    let env = Env::start().await;
    let org = env.customer_org("pool").await;
    let (vx, vy) = (env.tenant("vendorx").await, env.tenant("vendory").await);
    let lx = grant(&env, &vx, &org, "cad", 5, 2).await;
    let ly = grant(&env, &vy, &org, "sim", 3, 0).await;

    // The catalog: both vendors' licenses, live.
    let cat = list(&env.get("/v1/customer/catalog", &org.admin_key).await);
    assert_eq!(cat.len(), 2, "{cat:?}");
    let x = cat.iter().find(|e| e["license_id"] == lx.as_str()).unwrap();
    assert_eq!(x["vendor"]["id"], vx.id.as_str());
    assert_eq!(x["product"]["code"], "cad");
    assert_eq!(x["status"], "active");
    assert_eq!(
        x["seats"],
        json!({ "total": 5, "in_use": 0, "available": 5 })
    );
    assert_eq!(x["overage"]["max"], 2);
    assert!(cat.iter().any(|e| e["license_id"] == ly.as_str()));

    // An app key bound to a hostname and a CIDR (the dev server passes loopback).
    let key = app_key(
        &env,
        &org,
        json!({ "allowed_hostnames": ["ws-1"], "allowed_cidrs": ["127.0.0.0/8", "::1/128"] }),
    )
    .await;
    let wrong = checkout(&env, &key, "ws-2", json!({ "product": "cad", "user": "u" })).await;
    assert_eq!((wrong.status, wrong.code()), (403, "KEY_BINDING_MISMATCH"));

    // 30 users at once on 5 + 2 seats: exactly 7 leases, 2 of them overage.
    let all = futures::future::join_all((0..30).map(|i| {
        let (env, key) = (&env, &key);
        async move {
            let body = json!({ "product": "cad", "user": format!("user{i}") });
            checkout(env, key, "ws-1", body).await
        }
    }))
    .await;
    let ok: Vec<&Resp> = all.iter().filter(|r| r.status == 201).collect();
    let refused = all
        .iter()
        .filter(|r| r.status == 409 && r.code() == "LICENSE_UNAVAILABLE")
        .count();
    assert_eq!(
        (ok.len(), refused),
        (7, 23),
        "{:?}",
        all.iter().map(|r| (r.status, r.code())).collect::<Vec<_>>()
    );
    let overage = ok.iter().filter(|r| r.data()["overage"] == true).count();
    assert_eq!(overage, 2);
    assert!(ok.iter().all(|r| r.data()["license_id"] == lx.as_str()));

    // Who holds what; the catalog counts them; the vendor sees the users.
    let held = list(&get_on_ws1(&env, "/v1/customer/checkouts", &key).await);
    assert_eq!(held.len(), 7);
    assert!(held
        .iter()
        .all(|h| h["hostname"] == "ws-1" && h["user"].is_string()));
    let cat = list(&get_on_ws1(&env, "/v1/customer/catalog", &key).await);
    let x = cat.iter().find(|e| e["license_id"] == lx.as_str()).unwrap();
    assert_eq!(x["seats"]["in_use"], 5);
    assert_eq!(x["overage"]["in_use"], 2);
    let acts = env
        .get(&format!("/v1/manage/licenses/{lx}/activations"), &vx.admin)
        .await;
    let acts = list(&acts);
    assert_eq!(acts.len(), 7);
    assert!(acts
        .iter()
        .all(|a| a["user"].is_string() && a["hostname"] == "ws-1"));

    // The same user on the same host holds one seat: it renews.
    let first = ok[0].data();
    let again = checkout(
        &env,
        &key,
        "ws-1",
        json!({ "product": "cad", "user": first["user"] }),
    )
    .await;
    assert_eq!(again.status, 201, "{again:?}");
    assert_eq!(again.data()["id"], first["id"]);
    assert_eq!(
        list(&get_on_ws1(&env, "/v1/customer/checkouts", &key).await).len(),
        7
    );

    // Heartbeat and return work; a returned seat is free again.
    let id = first["id"].as_str().unwrap();
    let hb = env
        .send_raw(
            "POST",
            &format!("/v1/customer/checkouts/{id}/heartbeat"),
            &[("x-api-key", &key), ("x-hostname", "ws-1")],
            Vec::new(),
        )
        .await;
    assert_eq!(hb.status, 200, "{hb:?}");
    assert!(hb.data()["lease_expires_at"].is_string());
    let back = env
        .send_raw(
            "DELETE",
            &format!("/v1/customer/checkouts/{id}"),
            &[("x-api-key", &key), ("x-hostname", "ws-1")],
            Vec::new(),
        )
        .await;
    assert_eq!(back.status, 200, "{back:?}");
    let next = checkout(
        &env,
        &key,
        "ws-1",
        json!({ "product": "cad", "user": "late" }),
    )
    .await;
    assert_eq!(next.status, 201, "{next:?}");

    // The other vendor's product, named by vendor.
    let sim = checkout(
        &env,
        &key,
        "ws-1",
        json!({ "vendor": vy.id, "product": "sim", "user": "u1" }),
    )
    .await;
    assert_eq!(sim.status, 201, "{sim:?}");
    assert_eq!(sim.data()["license_id"], ly.as_str());
    let none = checkout(
        &env,
        &key,
        "ws-1",
        json!({ "vendor": vx.id, "product": "sim", "user": "u1" }),
    )
    .await;
    assert_eq!((none.status, none.code()), (404, "LICENSE_NOT_FOUND"));

    // The vendor suspends: checkouts are refused at once.
    let s = env
        .post(
            &format!("/v1/manage/licenses/{ly}/suspend"),
            &vy.admin,
            json!({}),
        )
        .await;
    assert_eq!(s.status, 200, "{s:?}");
    let r = checkout(
        &env,
        &key,
        "ws-1",
        json!({ "product": "sim", "user": "u2" }),
    )
    .await;
    assert_eq!((r.status, r.code()), (403, "LICENSE_NOT_ACTIVE"), "{r:?}");
    let cat = list(&get_on_ws1(&env, "/v1/customer/catalog", &key).await);
    let y = cat.iter().find(|e| e["license_id"] == ly.as_str()).unwrap();
    assert_eq!(y["status"], "suspended");

    // The org's audit trail has the checkouts.
    let audit = env
        .org_send(
            "GET",
            "/v1/customer/audit-events?limit=100",
            &org.session,
            None,
        )
        .await;
    let codes: Vec<Value> = list(&audit).iter().map(|e| e["code"].clone()).collect();
    assert!(codes.contains(&json!("ACTIVATION.CREATED")), "{codes:?}");
    assert!(codes.contains(&json!("ACTIVATION.DELETED")), "{codes:?}");
}

#[tokio::test]
async fn the_orgs_overage_cap_stops_checkouts_before_the_licenses_max() {
    let env = Env::start().await;
    let org = env.customer_org("cap").await;
    let v = env.tenant("capvendor").await;
    let lic = grant(&env, &v, &org, "cad", 1, 3).await;
    let patch = |limit: Value| {
        let (env, org, lic) = (&env, &org, &lic);
        async move {
            let body = json!({ "overage_limit": limit });
            let path = format!("/v1/customer/licenses/{lic}");
            env.org_send("PATCH", &path, &org.session, Some(&body))
                .await
        }
    };
    let r = patch(json!(4)).await;
    assert_eq!((r.status, r.code()), (422, "VALIDATION_ERROR"), "{r:?}");
    let r = patch(json!(1)).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.data()["overage"]["limit"], 1);
    assert_eq!(r.data()["overage"]["cap"], 1);
    // An app key may not change the cap.
    let by_key = env
        .patch(
            &format!("/v1/customer/licenses/{lic}"),
            &org.admin_key,
            json!({ "overage_limit": 2 }),
        )
        .await;
    assert_eq!(by_key.status, 403, "{by_key:?}");

    let go = |user: &str| {
        let body = json!({ "product": "cad", "user": user });
        let (env, key) = (&env, &org.admin_key);
        async move { env.post("/v1/customer/checkouts", key, body).await }
    };
    let a = go("a").await;
    assert_eq!((a.status, a.data()["overage"].clone()), (201, json!(false)));
    let b = go("b").await;
    assert_eq!((b.status, b.data()["overage"].clone()), (201, json!(true)));
    let c = go("c").await;
    assert_eq!((c.status, c.code()), (409, "OVERAGE_MAX_EXCEEDED"), "{c:?}");
    assert!(c.text.contains("license admin"));
    // Raising the cap lets the next one through.
    assert_eq!(patch(json!(2)).await.status, 200);
    assert_eq!(go("c").await.status, 201);
    let audit = env
        .org_send("GET", "/v1/customer/audit-events", &org.session, None)
        .await;
    assert!(audit.text.contains("GRANT.UPDATED"), "{audit:?}");

    // The home page's figures: one license in force, 2 overage leases, 3 checkouts this month.
    let org_id = shared::ids::TenantId::parse(org.id.as_str()).unwrap();
    let store = &env.app.store;
    let f = shared::usecases::pool::figures(store, &store.tenant(&org_id), env.app.now())
        .await
        .unwrap();
    assert_eq!(
        (f.active_licenses, f.overage_in_use, f.checkouts_this_month),
        (1, 2, 3)
    );
}

#[tokio::test]
async fn the_pick_is_oldest_grant_first_committed_before_overage() {
    let env = Env::start().await;
    let org = env.customer_org("pick").await;
    let (v1, v2) = (env.tenant("pickone").await, env.tenant("picktwo").await);
    let first = grant(&env, &v1, &org, "cad", 1, 1).await;
    let second = grant(&env, &v2, &org, "cad", 1, 1).await;
    let mut got = Vec::new();
    for u in ["a", "b", "c", "d"] {
        let r = env
            .post(
                "/v1/customer/checkouts",
                &org.admin_key,
                json!({ "product": "cad", "user": u }),
            )
            .await;
        assert_eq!(r.status, 201, "{r:?}");
        got.push((
            r.data()["license_id"].as_str().unwrap().to_string(),
            r.data()["overage"].as_bool().unwrap(),
        ));
    }
    assert_eq!(
        got,
        [
            (first.clone(), false),
            (second.clone(), false),
            (first, true),
            (second, true)
        ]
    );
    let r = env
        .post(
            "/v1/customer/checkouts",
            &org.admin_key,
            json!({ "product": "cad", "user": "e" }),
        )
        .await;
    assert_eq!((r.status, r.code()), (409, "LICENSE_UNAVAILABLE"));
}

#[tokio::test]
async fn orgs_and_vendors_see_only_what_was_granted_to_them() {
    let env = Env::start().await;
    let (a, b) = (
        env.customer_org("orga").await,
        env.customer_org("orgb").await,
    );
    let (vx, vy) = (env.tenant("isox").await, env.tenant("isoy").await);
    let la = grant(&env, &vx, &a, "cad", 2, 0).await;
    let lb = grant(&env, &vy, &b, "cad", 2, 0).await;
    let ra = env
        .post(
            "/v1/customer/checkouts",
            &a.admin_key,
            json!({ "product": "cad", "user": "ann" }),
        )
        .await;
    assert_eq!(ra.status, 201, "{ra:?}");
    let rb = env
        .post(
            "/v1/customer/checkouts",
            &b.admin_key,
            json!({ "product": "cad", "user": "bob" }),
        )
        .await;
    assert_eq!(rb.status, 201, "{rb:?}");
    assert_eq!(rb.data()["license_id"], lb.as_str());
    let b_lease = rb.data()["id"].as_str().unwrap().to_string();

    // A sees its catalog and checkouts only.
    let cat = env.get("/v1/customer/catalog", &a.admin_key).await;
    assert!(cat.text.contains(&la) && !cat.text.contains(&lb), "{cat:?}");
    let held = env.get("/v1/customer/checkouts", &a.admin_key).await;
    assert!(!held.text.contains("bob") && held.text.contains("ann"));

    // B's lease and license are "not found" for A, exactly as unknown ones.
    let unknown = "act_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123";
    for id in [b_lease.as_str(), unknown] {
        for (m, p) in [
            ("POST", format!("/v1/customer/checkouts/{id}/heartbeat")),
            ("DELETE", format!("/v1/customer/checkouts/{id}")),
        ] {
            let r = env
                .send_raw(m, &p, &[("x-api-key", &a.admin_key)], Vec::new())
                .await;
            assert_eq!(
                (r.status, r.code()),
                (404, "CHECKOUT_NOT_FOUND"),
                "{m} {p}: {r:?}"
            );
        }
    }
    for id in [lb.as_str(), "lic_0123456789abcdef0123456789abcdef"] {
        let r = env
            .org_send(
                "PATCH",
                &format!("/v1/customer/licenses/{id}"),
                &a.session,
                Some(&json!({ "overage_limit": 0 })),
            )
            .await;
        assert_eq!((r.status, r.code()), (404, "LICENSE_NOT_FOUND"), "{r:?}");
    }
    // B's lease is still held.
    let held = env.get("/v1/customer/checkouts", &b.admin_key).await;
    assert!(held.text.contains(&b_lease));

    // Vendor X sees its own license at A, never vendor Y's.
    let r = env
        .get(&format!("/v1/manage/licenses/{lb}"), &vx.admin)
        .await;
    assert_eq!((r.status, r.code()), (404, "LICENSE_NOT_FOUND"));
    let r = env
        .get(&format!("/v1/manage/licenses/{lb}/activations"), &vx.admin)
        .await;
    assert_eq!((r.status, r.code()), (404, "LICENSE_NOT_FOUND"));

    // A license cannot be issued to an organization that is not verified or
    // does not exist.
    let p = env
        .post(
            "/v1/manage/policies",
            &vx.admin,
            json!({ "product": "cad", "name": "P2", "max_activations": 1 }),
        )
        .await;
    let r = env
        .post(
            "/v1/manage/licenses",
            &vx.admin,
            json!({ "policy": p.data()["id"], "customer": { "id": "no-such-org" } }),
        )
        .await;
    assert_eq!((r.status, r.code()), (422, "CUSTOMER_NOT_FOUND"), "{r:?}");
    // A vendor's own tenant id is no organization either.
    let r = env
        .post(
            "/v1/manage/licenses",
            &vx.admin,
            json!({ "policy": p.data()["id"], "customer": { "id": vy.id } }),
        )
        .await;
    assert_eq!((r.status, r.code()), (422, "CUSTOMER_NOT_FOUND"), "{r:?}");
}

/// A grant e-mails every admin of the organization (naming the vendor and
/// the product), and no manager or viewer.
#[tokio::test]
async fn a_grant_is_e_mailed_to_the_organizations_admins() {
    use harness::sent_mail;
    let env = Env::start().await;
    let vendor = env.tenant("mail-vendor").await;
    let org = env.customer_org("mailco").await;
    let second = format!("second-admin@{}", org.domain);
    let viewer = format!("viewer@{}", org.domain);
    for (email, role) in [(&second, "admin"), (&viewer, "viewer")] {
        let r = env
            .org_send(
                "POST",
                "/v1/customer/members",
                &org.session,
                Some(&json!({ "email": email, "role": role })),
            )
            .await;
        assert_eq!(r.status, 201, "{r:?}");
    }
    let before = |v: Vec<String>| v.len();
    let (a0, s0, v0) = (
        before(sent_mail(&org.admin_email).await),
        before(sent_mail(&second).await),
        before(sent_mail(&viewer).await),
    );
    let lic = grant(&env, &vendor, &org, "mail-cad", 2, 0).await;
    for to in [&org.admin_email, &second] {
        let mail = sent_mail(to).await;
        let last = mail.last().unwrap();
        assert!(
            last.contains("granted your organization a license for mail-cad"),
            "{last}"
        );
        assert!(last.contains(&lic), "{last}");
    }
    assert_eq!(sent_mail(&org.admin_email).await.len(), a0 + 1);
    assert_eq!(sent_mail(&second).await.len(), s0 + 1);
    assert_eq!(sent_mail(&viewer).await.len(), v0, "a viewer is not told");
}
