//! Many requests at once; exact counts afterwards.

use harness::Env;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn forty_activations_on_five_seats() {
    let env = Env::start().await;
    let t = env.tenant("race").await;
    let (_, lic) = env.license(&t, 5, json!({})).await;
    let key = lic["key"].as_str().unwrap().to_string();
    let results = futures::future::join_all((0..40).map(|i| {
        let fp = format!("machine-{i}");
        let (env, t, key) = (&env, &t, &key);
        async move { env.activate(t, key, &fp).await }
    }))
    .await;
    let created = results.iter().filter(|r| r.status == 201).count();
    let refused = results
        .iter()
        .filter(|r| r.status == 409 && r.code() == "TOO_MANY_ACTIVATIONS")
        .count();
    assert_eq!(
        (created, refused),
        (5, 35),
        "{:?}",
        results.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    let l = env
        .get(
            &format!("/v1/manage/licenses/{}", lic["id"].as_str().unwrap()),
            &t.admin,
        )
        .await;
    assert_eq!(l.data()["seats"]["used"], 5);
    let acts = env
        .get(
            &format!(
                "/v1/manage/licenses/{}/activations",
                lic["id"].as_str().unwrap()
            ),
            &t.admin,
        )
        .await;
    assert_eq!(acts.data().as_array().unwrap().len(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_activations_of_one_fingerprint() {
    let env = Env::start().await;
    let t = env.tenant("samefp").await;
    let (_, lic) = env.license(&t, 5, json!({})).await;
    let key = lic["key"].as_str().unwrap().to_string();
    let results = futures::future::join_all((0..20).map(|_| {
        let (env, t, key) = (&env, &t, &key);
        async move { env.activate(t, key, "the-one").await }
    }))
    .await;
    assert_eq!(results.iter().filter(|r| r.status == 201).count(), 1);
    assert_eq!(results.iter().filter(|r| r.status == 200).count(), 19);
    let ids: std::collections::HashSet<_> = results
        .iter()
        .map(|r| r.data()["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 1, "one activation id");
    let l = env
        .get(
            &format!("/v1/manage/licenses/{}", lic["id"].as_str().unwrap()),
            &t.admin,
        )
        .await;
    assert_eq!(l.data()["seats"]["used"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_patches_of_different_features_all_land() {
    let env = Env::start().await;
    let t = env.tenant("patches").await;
    let (_, lic) = env.license(&t, 1, json!({})).await;
    let id = lic["id"].as_str().unwrap().to_string();
    let results = futures::future::join_all((0..10).map(|i| {
        let env = &env;
        let (admin, id) = (t.admin.clone(), id.clone());
        async move {
            env.patch(
                &format!("/v1/manage/licenses/{id}"),
                &admin,
                json!({ "entitlements": { format!("f{i}"): { "type": "boolean" } } }),
            )
            .await
        }
    }))
    .await;
    assert!(results.iter().all(|r| r.status == 200), "{results:?}");
    let l = env
        .get(&format!("/v1/manage/licenses/{id}"), &t.admin)
        .await;
    let granted = l.data()["entitlements"].as_object().unwrap();
    assert_eq!(granted.len(), 10, "no PATCH overwrote another: {l:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_deactivations_free_one_seat() {
    let env = Env::start().await;
    let t = env.tenant("deact").await;
    let (_, lic) = env.license(&t, 2, json!({})).await;
    let key = lic["key"].as_str().unwrap().to_string();
    for fp in ["a", "b"] {
        assert_eq!(env.activate(&t, &key, fp).await.status, 201);
    }
    let results = futures::future::join_all((0..10).map(|_| {
        let (env, t, key) = (&env, &t, &key);
        async move { env.deactivate(t, key, "a").await }
    }))
    .await;
    assert!(results.iter().all(|r| r.status == 200), "{results:?}");
    let l = env
        .get(
            &format!("/v1/manage/licenses/{}", lic["id"].as_str().unwrap()),
            &t.admin,
        )
        .await;
    assert_eq!(l.data()["seats"]["used"], 1);
}
