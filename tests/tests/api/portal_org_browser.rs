//! A customer organization's portal in headless Chromium: the admin signs
//! in by e-mailed link, creates an app key bound to a host name in the
//! page, an app checks a license out with it, and the pool page shows the
//! checkout — on a desktop window and on a phone-sized one, without
//! horizontal overflow.

use super::portal_browser::{browser, el, shot, sign_in, text_of};
use super::portal_org::{checkout, grant};
use fantoccini::{Client, Locator};
use harness::Env;

async fn click(c: &Client, css: &str) {
    el(c, Locator::Css(css))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

async fn type_in(c: &Client, id: &str, text: &str) {
    el(c, Locator::Id(id))
        .await
        .unwrap()
        .send_keys(text)
        .await
        .unwrap();
}

/// No horizontal scroll bar: the page fits the window's width.
async fn fits(c: &Client) {
    let v = c
        .execute(
            "return [document.documentElement.scrollWidth, window.innerWidth];",
            vec![],
        )
        .await
        .unwrap();
    let (w, inner) = (v[0].as_i64().unwrap(), v[1].as_i64().unwrap());
    let url = c.current_url().await.unwrap();
    assert!(w <= inner, "{url}: scrollWidth {w} > innerWidth {inner}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn org_admin_makes_a_key_and_sees_the_checkout_in_chromium() {
    let env = Env::start().await;
    let org = env.customer_org("chrome").await;
    let vendor = env.tenant("chromevend").await;
    grant(&env, &vendor, &org, "cad", 2, 1).await;
    let base = env.base.clone();
    let (_driver, c) = browser(1100, 900).await;

    sign_in(&c, &base, &org.id, &org.admin_email, false).await;
    assert!(text_of(&c, "#pool").await.contains("Active licenses"));
    shot(&c, "org-1-home").await;

    // Create a key bound to host ws-7.
    c.goto(&format!("{base}/portal/{}/api-keys", org.id))
        .await
        .unwrap();
    type_in(&c, "app_name", "CAD desktop").await;
    type_in(&c, "allowed_hostnames", "ws-7").await;
    click(&c, "#create-key button[type=submit]").await;
    let shown = text_of(&c, "#new-key code").await;
    assert!(!shown.is_empty());
    shot(&c, "org-2-api-keys").await;

    // An app uses it: the binding is honoured.
    let wrong = checkout(&env, &shown, "ws-8", "cad", "erin").await;
    assert_eq!((wrong.status, wrong.code()), (403, "KEY_BINDING_MISMATCH"));
    let r = checkout(&env, &shown, "ws-7", "cad", "erin").await;
    assert_eq!(r.status, 201, "{r:?}");

    // The pool page shows it.
    c.goto(&format!("{base}/portal/{}/pool", org.id))
        .await
        .unwrap();
    assert_eq!(text_of(&c, "#checkouts td.user").await, "erin");
    assert_eq!(text_of(&c, "#checkouts td.host").await, "ws-7");
    shot(&c, "org-3-pool").await;
    fits(&c).await;

    // On a phone: still there, and no horizontal overflow.
    c.set_window_size(390, 844).await.unwrap();
    c.goto(&format!("{base}/portal/{}/pool", org.id))
        .await
        .unwrap();
    let user = el(&c, Locator::Css("#checkouts td.user")).await.unwrap();
    assert!(user.is_displayed().await.unwrap());
    assert!(user.text().await.unwrap().contains("erin"));
    fits(&c).await;
    shot(&c, "org-4-pool-phone").await;
    for page in [
        "/",
        "/licenses",
        "/api-keys",
        "/members",
        "/audit",
        "/costs",
    ] {
        c.goto(&format!("{base}/portal/{}{page}", org.id))
            .await
            .unwrap();
        el(&c, Locator::Css("main h1")).await.unwrap();
        fits(&c).await;
    }
    c.close().await.unwrap();
}
