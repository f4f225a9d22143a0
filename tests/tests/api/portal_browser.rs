//! The portal in a real headless Chromium (Debian's `chromium` through
//! `chromedriver`, which `make test` installs): one browser session through
//! the flows a person follows. A vendor's staff member signs in with the
//! link captured from the emulator's SES, finds a license, suspends it, and
//! the API's validate answers `SUSPENDED`; then a customer signs in and
//! deactivates a machine, and the API shows the seat free.
//!
//! With `PORTAL_SCREENSHOTS=<dir>` (`make screenshots`) it writes a PNG of
//! each main page there.

use super::portal::{activate, license_for};
use fantoccini::{Client, ClientBuilder, Locator};
use harness::{last_link, Env};
use serde_json::json;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};

/// chromedriver, stopped when dropped, with the Chromium it started:
/// chromedriver runs in a process group of its own, and the whole group is
/// killed (killing chromedriver alone left each test's browser running,
/// ~1 GB apiece, until the machine ran low).
pub(crate) struct Driver {
    child: Child,
    port: u16,
    _profile: TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        // The group's id is chromedriver's pid (`process_group(0)` below).
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A fresh Chromium profile directory, removed when dropped.
struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn which(var: &str, default: &str) -> String {
    let path = std::env::var(var).unwrap_or_else(|_| default.to_string());
    assert!(
        std::path::Path::new(&path).exists(),
        "{path} not found: the browser tests need Debian's chromium and chromium-driver \
         (`make test` installs them: scripts/lib.sh ensure_chromium), or set {var}"
    );
    path
}

pub(crate) async fn browser(width: u32, height: u32) -> (Driver, Client) {
    let driver = which("CHROMEDRIVER", "/usr/bin/chromedriver");
    let chromium = which("CHROMIUM", "/usr/bin/chromium");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(driver)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .expect("start chromedriver");
    let profile = TempDir(std::env::temp_dir().join(format!(
        "portal-chromium-{}",
        ulid::Ulid::new().to_string().to_lowercase()
    )));
    let driver = Driver {
        child,
        port,
        _profile: profile,
    };
    // Without the networking flags Chromium stalls on a closed network.
    let args = [
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        &format!("--window-size={width},{height}"),
        &format!("--user-data-dir={}", driver._profile.0.display()),
    ];
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({ "binary": chromium, "args": args }),
    );
    let url = format!("http://127.0.0.1:{}", driver.port);
    let mut last = None;
    for _ in 0..100 {
        match ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps.clone())
            .connect(&url)
            .await
        {
            Ok(c) => return (driver, c),
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("cannot start a Chromium session through chromedriver: {last:?}");
}

pub(crate) async fn shot(c: &Client, name: &str) {
    let Ok(dir) = std::env::var("PORTAL_SCREENSHOTS") else {
        return;
    };
    std::fs::create_dir_all(&dir).unwrap();
    let png = c.screenshot().await.expect("screenshot");
    std::fs::write(format!("{dir}/{name}.png"), png).unwrap();
}

/// The element `l`, waiting up to 10 s for it to appear (a click that
/// submits a form may return before the next page is in).
pub(crate) async fn el(
    c: &Client,
    l: Locator<'_>,
) -> Result<fantoccini::elements::Element, fantoccini::error::CmdError> {
    c.wait()
        .at_most(std::time::Duration::from_secs(10))
        .for_element(l)
        .await
}

/// The text of `css`, waiting up to 10 s for it to appear.
pub(crate) async fn text_of(c: &Client, css: &str) -> String {
    let found = c
        .wait()
        .at_most(std::time::Duration::from_secs(10))
        .for_element(Locator::Css(css))
        .await;
    match found {
        Ok(e) => e.text().await.unwrap(),
        Err(e) => panic!(
            "{css}: {e}\non {:?}:\n{}",
            c.current_url().await.map(|u| u.to_string()),
            c.source().await.unwrap_or_default()
        ),
    }
}

/// Wait (up to 10 s) until `css` reads `want`: a click that submits a form
/// may return before the next page is in.
async fn wait_text(c: &Client, css: &str, want: &str) {
    for _ in 0..100 {
        if let Ok(e) = c.find(Locator::Css(css)).await {
            // (a stale element of the previous page reads as an error)
            if e.text().await.is_ok_and(|t| t == want) {
                return;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(text_of(c, css).await, want);
}

/// The whole sign-in as a person does it: type the address, open the
/// link from the e-mail, press "Sign in".
pub(crate) async fn sign_in(c: &Client, base: &str, tenant: &str, email: &str, shots: bool) {
    c.goto(&format!("{base}/portal/{tenant}/")).await.unwrap();
    let field = el(c, Locator::Id("email")).await.unwrap();
    field.send_keys(email).await.unwrap();
    if shots {
        shot(c, "1-sign-in").await;
    }
    el(c, Locator::Css("button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    assert!(text_of(c, "#sent")
        .await
        .contains("sign-in link is on its way"));
    let link = last_link(email)
        .await
        .expect("the sign-in e-mail reached SES");
    c.goto(&link).await.unwrap();
    el(c, Locator::Id("confirm"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

async fn validate(env: &Env, t: &harness::Tenant, key: &str) -> serde_json::Value {
    let v = env
        .post(
            &format!("/v1/integration/licenses/{key}/validate"),
            &t.integration,
            json!({}),
        )
        .await;
    v.data().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_suspend_and_customer_deactivate_in_chromium() {
    let env = Env::start().await;
    let t = env.tenant("demo").await;
    let customer = format!(
        "dana-{}@example.com",
        &ulid::Ulid::new().to_string().to_lowercase()[20..]
    );
    let meter = json!({ "entitlements": {
        "api-calls": { "type": "metered", "limit": 5000, "period": "month", "overage": "deny" }
    } });
    let (lid, key) = license_for(&env, &t, &customer, 3, meter).await;
    activate(&env, &t, &key, "old-laptop").await;
    activate(&env, &t, &key, "workstation").await;
    // Some usage over the last days, for the chart.
    let now = time::OffsetDateTime::now_utc();
    for (days_ago, q) in [(6, 120), (5, 340), (3, 90), (2, 410), (1, 260), (0, 180)] {
        let at = now - time::Duration::days(days_ago);
        let r = env
            .post(
                "/v1/integration/usage/record",
                &t.integration,
                json!({ "license_key": key, "metric": "api-calls", "quantity": q,
                        "timestamp": shared::clock::rfc3339(at) }),
            )
            .await;
        assert_eq!(r.status, 201, "{r:?}");
    }
    let base = env.base.clone();
    let admin = format!("ops@{}.example", t.id.rsplit_once('-').unwrap().0);

    let (_driver, c) = browser(1100, 900).await;

    // ---- staff: sign in, find, suspend
    sign_in(&c, &base, &t.id, &admin, true).await;
    el(&c, Locator::Id("q")).await.unwrap(); // the search page is in
    let url = c.current_url().await.unwrap();
    assert!(url.path().ends_with("/staff"), "{url}");
    // The session cookie is there, and locked down, on http://127.0.0.1
    // (a secure context for Chromium).
    let cookies = c.get_all_cookies().await.unwrap();
    let session = cookies
        .iter()
        .find(|k| k.name() == "portal_session")
        .expect("the session cookie");
    assert_eq!(
        (session.secure(), session.http_only()),
        (Some(true), Some(true))
    );

    el(&c, Locator::Id("q"))
        .await
        .unwrap()
        .send_keys(&customer)
        .await
        .unwrap();
    el(&c, Locator::Css("form.search button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    shot(&c, "2-staff-search").await;
    el(&c, Locator::LinkText(&lid))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    assert!(text_of(&c, "#seats").await.starts_with("2 of 3"));
    let chart = text_of(&c, "figure.chart figcaption").await;
    assert_eq!(
        chart, "1400 in the last 30 days",
        "the chart sums the recorded usage"
    );
    c.set_window_size(1100, 1500).await.unwrap(); // the whole page, chart and trail
    shot(&c, "3-staff-license").await;
    c.set_window_size(1100, 900).await.unwrap();
    el(&c, Locator::Css("button[value=suspend]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_text(&c, "#flash", "License suspended.").await;
    assert_eq!(validate(&env, &t, &key).await["code"], "SUSPENDED");
    el(&c, Locator::Css("button[value=resume]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_text(&c, "#flash", "License resumed.").await;
    assert_eq!(validate(&env, &t, &key).await["code"], "VALID");

    // ---- a forged link: a clear page, no session
    c.delete_all_cookies().await.unwrap();
    c.goto(&format!("{base}/portal/{}/auth?token=forged", t.id))
        .await
        .unwrap();
    el(&c, Locator::Id("confirm"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    assert!(text_of(&c, "#error").await.contains("not valid"));
    shot(&c, "5-refused-link").await;

    // ---- customer on a phone-sized window: free the old laptop's seat
    c.set_window_size(390, 844).await.unwrap();
    sign_in(&c, &base, &t.id, &customer, false).await;
    el(&c, Locator::Css("section.license")).await.unwrap();
    assert!(c.current_url().await.unwrap().path().ends_with("/me"));
    assert_eq!(
        validate(&env, &t, &key).await["license"]["seats"]["used"],
        2
    );
    shot(&c, "4-customer-machines").await;
    el(&c, Locator::Css("button[data-fingerprint=old-laptop]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_text(&c, "#flash", "Machine deactivated; its seat is free.").await;
    assert_eq!(
        validate(&env, &t, &key).await["license"]["seats"]["used"],
        1
    );
    c.close().await.unwrap();
}

/// The staff's Billing page: the month picker shows what each license with
/// commercial terms bills, and its export links download the CSV, JSON and
/// PDF under the staff session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_billing_page_in_chromium() {
    let env = Env::start().await;
    let t = env.tenant("billpage").await;
    let lic = super::billing::floating_license(
        &env,
        &t,
        "cfo@buyer.example",
        Some(super::billing::terms("CRM-PORTAL")),
    )
    .await;
    let key = lic["key"].as_str().unwrap();
    for i in 0..7 {
        let r = env.activate(&t, key, &format!("ws-{i}")).await;
        assert_eq!(r.status, 201, "{r:?}");
    }
    let base = env.base.clone();
    let admin = format!("ops@{}.example", t.id.rsplit_once('-').unwrap().0);
    let (_driver, c) = browser(1100, 900).await;
    sign_in(&c, &base, &t.id, &admin, false).await;
    el(&c, Locator::Id("q")).await.unwrap();
    el(&c, Locator::LinkText("Billing"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    // The current month is picked by default; pick it explicitly too.
    let now = time::OffsetDateTime::now_utc();
    let month = format!("{:04}-{:02}", now.year(), u8::from(now.month()));
    c.goto(&format!(
        "{base}/portal/{}/staff/billing?period={month}",
        t.id
    ))
    .await
    .unwrap();
    assert_eq!(text_of(&c, "#billing td.overage").await, "2");
    assert_eq!(text_of(&c, "#billing td.total").await, "6000.00 EUR");
    assert!(text_of(&c, "#billing").await.contains("CRM-PORTAL"));
    shot(&c, "billing").await;

    // The export links work with the staff session (and only with it).
    let cookie = c
        .get_all_cookies()
        .await
        .unwrap()
        .into_iter()
        .find(|k| k.name() == "portal_session")
        .expect("the session cookie");
    let cookie = format!("portal_session={}", cookie.value());
    for (id, want) in [
        ("export-csv", "text/csv"),
        ("export-json", "application/json"),
        ("export-pdf", "application/pdf"),
    ] {
        let href = el(&c, Locator::Id(id))
            .await
            .unwrap()
            .attr("href")
            .await
            .unwrap()
            .expect("an href");
        assert!(href.contains(&format!("period={month}")), "{href}");
        let r = env
            .http
            .get(format!("{base}{href}"))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{href}");
        let ct = r.headers()["content-type"].to_str().unwrap().to_string();
        assert!(ct.starts_with(want), "{href}: {ct}");
        let body = r.bytes().await.unwrap();
        match id {
            "export-csv" => {
                let text = String::from_utf8(body.to_vec()).unwrap();
                assert!(text.contains(&format!(",2,1000.00,EUR,{month}")), "{text}");
            }
            "export-pdf" => assert!(body.starts_with(b"%PDF-")),
            _ => {
                let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
                assert_eq!(v["total_billable"], "6000.00");
            }
        }
        let anonymous = env.http.get(format!("{base}{href}")).send().await.unwrap();
        assert_ne!(anonymous.status(), 200, "{href} without a session");
    }
}
