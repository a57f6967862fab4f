//! Fault injection and client resilience on the sandbox API server: injected errors carry real
//! `Status` codes, the RNG is seeded (same seed, same faults), watches get dropped, and
//! kube-runtime's watcher still converges through all of it.

use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use k8up_tests::api::{ApiConfig, ApiServer, FaultConfig};
use kube::Api;
use kube::api::{DeleteParams, ListParams, ObjectMeta, PostParams};
use kube::runtime::{WatchStreamExt, reflector, watcher};

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

fn cm(name: &str) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        ..Default::default()
    }
}

async fn codes(server: &ApiServer, api: &Api<ConfigMap>, seed: u64) -> Vec<u16> {
    server.faults().set(FaultConfig {
        seed,
        error_rate: 0.5,
        ..Default::default()
    });
    let mut out = Vec::new();
    for _ in 0..40 {
        out.push(match api.list(&ListParams::default()).await {
            Ok(_) => 200,
            Err(kube::Error::Api(s)) => s.code,
            Err(_) => 0,
        });
    }
    server.faults().disable();
    out
}

#[tokio::test]
async fn injected_errors_are_seeded_statuses_and_off_by_default() -> Result {
    let server = ApiServer::new(ApiConfig::default())?;
    let api: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    for _ in 0..20 {
        api.list(&ListParams::default()).await?;
    }
    assert_eq!(server.faults().injected(), 0);
    let first = codes(&server, &api, 7).await;
    let again = codes(&server, &api, 7).await;
    assert_eq!(first, again, "the same seed injects the same faults");
    assert!(
        first.contains(&200) && first.contains(&500) && first.contains(&429),
        "{first:?}"
    );
    assert!(!first.contains(&409), "reads are never answered with a conflict");
    assert!(server.faults().injected() > 0);
    Ok(())
}

#[tokio::test]
async fn a_reflector_converges_through_dropped_watches_and_failing_requests() -> Result {
    let server = ApiServer::new(ApiConfig::default())?;
    let client = server.client();
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    server.faults().set(FaultConfig {
        seed: 3,
        error_rate: 0.2,
        error_codes: vec![429, 500],
        watch_drop_rate: 0.5,
        watch_drop_after: Duration::from_millis(200),
        ..Default::default()
    });
    let (reader, writer) = reflector::store::<ConfigMap>();
    let stream = reflector(writer, watcher(api.clone(), watcher::Config::default()))
        .default_backoff()
        .applied_objects()
        .for_each(|_| async {});
    let handle = tokio::spawn(stream);
    let admin: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    let mut created = 0;
    let mut i = 0;
    while created < 20 {
        i += 1;
        if admin
            .create(&PostParams::default(), &cm(&format!("c{i}")))
            .await
            .is_ok()
        {
            created += 1;
        }
    }
    let _ = admin.delete("c1", &DeleteParams::default()).await;
    server.faults().disable();
    let expected: Vec<String> = {
        let mut names: Vec<String> = admin
            .list(&ListParams::default())
            .await?
            .items
            .into_iter()
            .filter_map(|c| c.metadata.name)
            .collect();
        names.sort();
        names
    };
    let mut seen = Vec::new();
    for _ in 0..400 {
        seen = reader
            .state()
            .iter()
            .filter_map(|c| c.metadata.name.clone())
            .collect();
        seen.sort();
        if seen == expected {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(seen, expected);
    assert!(server.faults().injected() > 0);
    handle.abort();
    Ok(())
}

#[tokio::test]
async fn a_streaming_list_watcher_gets_initial_events_then_changes() -> Result {
    let server = ApiServer::new(ApiConfig::default())?;
    let api: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    for n in ["a", "b"] {
        api.create(&PostParams::default(), &cm(n)).await?;
    }
    let (reader, writer) = reflector::store::<ConfigMap>();
    let stream = reflector(
        writer,
        watcher(api.clone(), watcher::Config::default().streaming_lists()),
    )
    .applied_objects()
    .for_each(|_| async {});
    let handle = tokio::spawn(stream);
    api.create(&PostParams::default(), &cm("c")).await?;
    let mut seen = Vec::new();
    for _ in 0..400 {
        seen = reader
            .state()
            .iter()
            .filter_map(|c| c.metadata.name.clone())
            .collect();
        seen.sort();
        if seen.len() == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(seen, vec!["a", "b", "c"]);
    handle.abort();
    Ok(())
}
