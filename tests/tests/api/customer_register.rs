//! Customer organizations register, prove their domain with a DNS TXT record
//! served by a real DNS server on loopback, and their admin signs in.

use harness::{last_link, sent_mail, DnsStub, Env, Visitor};
use serde_json::{json, Value};

fn registration(id: &str, domain: &str, admin: &str) -> Value {
    json!({
        "company": { "name": "Stern Motors AG", "domain": domain, "country": "de", "tax_id": "DE123456789" },
        "customer_id": id,
        "admin": { "email": admin, "name": "Ann Admin" },
    })
}

async fn register(env: &Env, body: Value) -> harness::Resp {
    env.send("POST", "/v1/public/customers/register", None, Some(&body))
        .await
}

async fn verify(env: &Env, id: &str) -> harness::Resp {
    env.send(
        "POST",
        &format!("/v1/public/customers/{id}/verify"),
        None,
        None,
    )
    .await
}

fn suffix() -> String {
    ulid::Ulid::new().to_string().to_lowercase()[20..].to_string()
}

#[tokio::test]
async fn an_organization_proves_its_domain_and_its_admin_signs_in() {
    let dns = DnsStub::start();
    let env = Env::with_dns(&dns).await;
    let s = suffix();
    let (id, domain) = (format!("stern-{s}"), format!("stern-{s}.example"));
    let admin = format!("ann@it.{domain}");
    let r = register(&env, registration(&id, &domain, &admin)).await;
    assert_eq!(r.status, 202, "{r:?}");
    assert_eq!(r.data()["status"], "pending_verification");
    let rec = &r.data()["verification"]["dns_record"];
    assert_eq!(rec["type"], "TXT");
    assert_eq!(rec["name"], format!("_licensing-verify.{domain}"));
    let value = rec["value"].as_str().unwrap().to_string();
    assert!(value.starts_with("licensing-verify="), "{value}");
    // The id is taken now, whoever asks.
    let again = register(&env, registration(&id, &domain, &admin)).await;
    assert_eq!(
        (again.status, again.code()),
        (409, "CUSTOMER_EXISTS"),
        "{again:?}"
    );

    // No record yet; then a wrong one: not verified, nothing mailed.
    let r = verify(&env, &id).await;
    assert_eq!((r.status, r.code()), (409, "DOMAIN_NOT_VERIFIED"), "{r:?}");
    let name = format!("_licensing-verify.{domain}");
    dns.set_txt(&name, &["licensing-verify=somebody-else", "v=spf1 -all"]);
    let r = verify(&env, &id).await;
    assert_eq!((r.status, r.code()), (409, "DOMAIN_NOT_VERIFIED"), "{r:?}");
    assert!(sent_mail(&admin).await.is_empty());
    // Before verification, the organization's portal and API are closed.
    let page = Visitor::new(&env, &id).get("/login").await;
    assert_eq!(page.status, 404, "{page:?}");

    // The right record: verified, and the admin is mailed a sign-in link.
    dns.set_txt(&name, &["v=spf1 -all", &value]);
    let r = verify(&env, &id).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.data()["status"], "verified");
    let link = last_link(&admin).await.expect("a sign-in e-mail");
    assert!(
        link.contains(&format!("/portal/{id}/auth?token=")),
        "{link}"
    );
    // Verifying again changes nothing and mails nothing more.
    let r = verify(&env, &id).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(sent_mail(&admin).await.len(), 1);

    // The link signs the admin in: the page cookie and the API cookie.
    let v = Visitor::new(&env, &id);
    let token = link.split("token=").nth(1).unwrap();
    let confirm = v.get(&format!("/auth?token={token}")).await;
    assert_eq!(confirm.status, 200, "{confirm:?}");
    let signed = v
        .http
        .post(v.url("/auth"))
        .header("origin", &env.base)
        .form(&[("token", token)])
        .send()
        .await
        .unwrap();
    assert_eq!(signed.status(), 303);
    let cookies: Vec<String> = signed
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|c| c.to_str().unwrap().split(';').next().unwrap().to_string())
        .collect();
    let api = cookies
        .iter()
        .find(|c| c.starts_with("customer_session="))
        .expect("the API cookie")
        .clone();
    let page = cookies
        .iter()
        .find(|c| c.starts_with("portal_session="))
        .expect("the page cookie");
    let home = v
        .http
        .get(v.url("/"))
        .header("cookie", page)
        .send()
        .await
        .unwrap();
    let html = home.text().await.unwrap();
    assert!(
        html.contains("Stern Motors AG") && html.contains("admin"),
        "{html}"
    );
    let who = env
        .send_raw(
            "GET",
            "/v1/customer/session",
            &[("cookie", &api)],
            Vec::new(),
        )
        .await;
    assert_eq!(who.status, 200, "{who:?}");
    assert_eq!(who.data()["email"], admin.as_str());
    assert_eq!(who.data()["role"], "admin");
    // The link works once.
    let replay = v
        .http
        .post(v.url("/auth"))
        .header("origin", &env.base)
        .form(&[("token", token)])
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), 403);

    // A second organization cannot verify the same domain.
    let id2 = format!("stern2-{s}");
    let r = register(&env, registration(&id2, &domain, &format!("bob@{domain}"))).await;
    assert_eq!(r.status, 202, "{r:?}");
    let value2 = r.data()["verification"]["dns_record"]["value"]
        .as_str()
        .unwrap()
        .to_string();
    dns.set_txt(&name, &[&value, &value2]);
    let r = verify(&env, &id2).await;
    assert_eq!(
        (r.status, r.code()),
        (409, "DOMAIN_ALREADY_CLAIMED"),
        "{r:?}"
    );
    assert!(sent_mail(&format!("bob@{domain}")).await.is_empty());
    // Unknown organizations are 404.
    let r = verify(&env, "no-such-org").await;
    assert_eq!((r.status, r.code()), (404, "CUSTOMER_NOT_FOUND"), "{r:?}");
}

#[tokio::test]
async fn registrations_are_checked_and_rate_limited_per_address() {
    let env = Env::start().await;
    let s = suffix();
    let domain = format!("acme-{s}.example");
    // The limit counts per clock minute: start early in one, so the six
    // requests below are counted in the same window even on a slow machine
    // (a CI run straddled a minute boundary and the sixth got through).
    while time::OffsetDateTime::now_utc().second() > 30 {
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    let cases = [
        (
            registration("x", &domain, &format!("a@{domain}")),
            422,
            "VALIDATION_ERROR",
        ),
        (
            registration(&format!("a-{s}"), "not a domain", "a@b.example"),
            422,
            "VALIDATION_ERROR",
        ),
        (
            registration(&format!("b-{s}"), &domain, "a@gmail.example"),
            422,
            "ADMIN_EMAIL_DOMAIN_MISMATCH",
        ),
        (
            json!({"company": {"name": "x", "domain": domain, "country": "Germany"}, "customer_id": format!("c-{s}"), "admin": {"email": format!("a@{domain}")}}),
            422,
            "VALIDATION_ERROR",
        ),
        (
            json!({"customer_id": format!("d-{s}")}),
            422,
            "VALIDATION_ERROR",
        ),
    ];
    for (body, status, code) in cases {
        let r = register(&env, body.clone()).await;
        assert_eq!((r.status, r.code()), (status, code), "{body} → {r:?}");
    }
    // Five a minute from one address: the sixth is refused.
    let r = register(
        &env,
        registration(&format!("e-{s}"), &domain, &format!("a@{domain}")),
    )
    .await;
    assert_eq!((r.status, r.code()), (429, "RATE_LIMITED"), "{r:?}");
    assert!(r.header("retry-after").is_some());
}
