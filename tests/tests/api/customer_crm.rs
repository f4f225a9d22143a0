//! Customer organizations as vendors find them: the directory search (by
//! domain, name prefix, the vendor's own CRM id) and per-vendor CRM links.

use harness::Env;
use serde_json::{json, Value};

fn ids(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn vendors_find_verified_organizations_by_public_fields_and_link_their_crm() {
    let env = Env::start().await;
    let x = env.tenant("crmx").await;
    let y = env.tenant("crmy").await;
    let suffix = &ulid::Ulid::new().to_string().to_lowercase()[20..];
    let name = format!("Zeppelin Works {suffix}");
    let org = env
        .customer_org_at(
            &format!("zep-{suffix}"),
            &name,
            &format!("zep-{suffix}.example"),
        )
        .await;

    // An organization that registered but never proved its domain.
    let pending_domain = format!("pend-{suffix}.example");
    let reg = shared::domain::Registration {
        customer_id: shared::ids::TenantId::parse(format!("pend-{suffix}")).unwrap(),
        name: format!("Zeppelin Pending {suffix}"),
        domain: shared::ids::Domain::normalise(&pending_domain).unwrap(),
        country: None,
        tax_id: None,
        region: None,
        admin_email: shared::ids::Email::normalise(&format!("a@{pending_domain}")).unwrap(),
        admin_name: None,
    };
    shared::usecases::customers::create(&env.app.store, reg, "req_test", env.app.now())
        .await
        .unwrap();

    // By domain (any case): the public fields only.
    let r = env
        .get(
            &format!(
                "/v1/manage/customers/search?domain={}",
                org.domain.to_uppercase()
            ),
            &x.admin,
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        r.data(),
        &json!([{ "id": org.id, "name": name, "domain": org.domain, "country": "DE",
                  "crm_account_id": null }])
    );
    let text = r.json.to_string();
    assert!(!text.contains(&org.admin_email), "{text}");

    // By name prefix, case-insensitive: the verified one, never the pending one.
    let r = env
        .get("/v1/manage/customers/search?name=zeppelin%20", &x.admin)
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    let found = ids(r.data());
    assert!(found.contains(&org.id), "{found:?}");
    assert!(!found.iter().any(|i| i.starts_with("pend-")), "{found:?}");
    let r = env
        .get(
            &format!("/v1/manage/customers/search?domain={pending_domain}"),
            &x.admin,
        )
        .await;
    assert_eq!(r.data(), &json!([]));

    // Exactly one filter.
    let r = env
        .get("/v1/manage/customers/search?domain=a.com&name=a", &x.admin)
        .await;
    assert_eq!(r.status, 422, "{r:?}");
    let r = env.get("/v1/manage/customers/search", &x.admin).await;
    assert_eq!(r.status, 422, "{r:?}");

    // Linking: unknown and unverified organizations are not found.
    let path = format!("/v1/manage/customers/{}/crm", org.id);
    let body = json!({ "crm_account_id": "ACC-1" });
    let r = env
        .send(
            "PUT",
            &format!("/v1/manage/customers/pend-{suffix}/crm"),
            Some(&x.admin),
            Some(&body),
        )
        .await;
    assert_eq!((r.status, r.code()), (404, "CUSTOMER_NOT_FOUND"), "{r:?}");
    let r = env
        .send(
            "PUT",
            "/v1/manage/customers/no-such-org/crm",
            Some(&x.admin),
            Some(&body),
        )
        .await;
    assert_eq!((r.status, r.code()), (404, "CUSTOMER_NOT_FOUND"), "{r:?}");

    let r = env.send("PUT", &path, Some(&x.admin), Some(&body)).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.data()["crm_account_id"], "ACC-1");
    // Again: the same.
    let r = env.send("PUT", &path, Some(&x.admin), Some(&body)).await;
    assert_eq!(r.status, 200, "{r:?}");

    // X finds it by its CRM id; Y neither by X's id nor sees X's link.
    let r = env
        .get("/v1/manage/customers/search?crm_account_id=ACC-1", &x.admin)
        .await;
    assert_eq!(ids(r.data()), vec![org.id.clone()]);
    assert_eq!(r.data()[0]["crm_account_id"], "ACC-1");
    let r = env
        .get("/v1/manage/customers/search?crm_account_id=ACC-1", &y.admin)
        .await;
    assert_eq!(r.data(), &json!([]));
    let r = env
        .get(
            &format!("/v1/manage/customers/search?domain={}", org.domain),
            &y.admin,
        )
        .await;
    assert_eq!(r.data()[0]["crm_account_id"], Value::Null);
    // Y may use the same CRM id for its own link.
    let r = env.send("PUT", &path, Some(&y.admin), Some(&body)).await;
    assert_eq!(r.status, 200, "{r:?}");

    // X re-links: the old id is freed, the new one found.
    let r = env
        .send(
            "PUT",
            &path,
            Some(&x.admin),
            Some(&json!({ "crm_account_id": "ACC-2" })),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    let r = env
        .get("/v1/manage/customers/search?crm_account_id=ACC-1", &x.admin)
        .await;
    assert_eq!(r.data(), &json!([]));
    let r = env
        .get("/v1/manage/customers/search?crm_account_id=ACC-2", &x.admin)
        .await;
    assert_eq!(ids(r.data()), vec![org.id.clone()]);
    let ts = env
        .app
        .store
        .tenant(&shared::ids::TenantId::parse(x.id.as_str()).unwrap());
    let crm = shared::ids::CrmAccountId::parse("ACC-2".to_string()).unwrap();
    assert_eq!(
        ts.customer_by_crm(&crm)
            .await
            .unwrap()
            .map(|t| t.to_string()),
        Some(org.id.clone())
    );

    // A CRM id already linked to another organization: 409.
    let other = env.customer_org("zother").await;
    let r = env
        .send(
            "PUT",
            &format!("/v1/manage/customers/{}/crm", other.id),
            Some(&x.admin),
            Some(&json!({ "crm_account_id": "ACC-2" })),
        )
        .await;
    assert_eq!((r.status, r.code()), (409, "CRM_ID_IN_USE"), "{r:?}");

    // The vendor's audit trail has the links.
    let r = env.get("/v1/manage/audit-events", &x.admin).await;
    let linked = r
        .data()
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["code"] == "CUSTOMER.CRM_LINKED")
        .count();
    assert_eq!(linked, 2, "{r:?}");
}
