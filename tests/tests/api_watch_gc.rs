//! Watches (resume from a resourceVersion, 410 Gone when too old, selector transitions) and
//! ownerReference garbage collection (background, foreground, orphan, namespaces).

use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret};
use k8up_tests::api::{ApiConfig, ApiServer};
use kube::api::{DeleteParams, ObjectMeta, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use kube::{Api, Resource, ResourceExt};
use serde_json::json;

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

async fn next_event(
    stream: &mut (impl futures::Stream<Item = kube::Result<WatchEvent<ConfigMap>>> + Unpin),
) -> Result<WatchEvent<ConfigMap>> {
    let ev = tokio::time::timeout(Duration::from_secs(10), stream.next()).await?;
    Ok(ev.ok_or("watch ended")??)
}

/// Wait (bounded) until `check` holds; the GC runs asynchronously like the real one.
async fn eventually<F, Fut>(mut check: F) -> Result
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..200 {
        if check().await {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    Err("condition not reached".into())
}

#[tokio::test]
async fn a_watch_resumes_from_a_resource_version_and_sees_later_changes_in_order() -> Result {
    let server = ApiServer::new(ApiConfig::default())?;
    let cms: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    let a = cms.create(&PostParams::default(), &cm("a")).await?;
    let rv = a.resource_version().ok_or("no rv")?;
    cms.create(&PostParams::default(), &cm("b")).await?;
    cms.patch(
        "a",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"x": "1"}})),
    )
    .await?;
    cms.delete("b", &DeleteParams::default()).await?;
    let mut stream = cms.watch(&WatchParams::default(), &rv).await?.boxed();
    let mut seen = Vec::new();
    for _ in 0..3 {
        match next_event(&mut stream).await? {
            WatchEvent::Added(o) => seen.push(format!("ADDED {}", o.name_any())),
            WatchEvent::Modified(o) => seen.push(format!("MODIFIED {}", o.name_any())),
            WatchEvent::Deleted(o) => seen.push(format!("DELETED {}", o.name_any())),
            other => seen.push(format!("{other:?}")),
        }
    }
    assert_eq!(seen, vec!["ADDED b", "MODIFIED a", "DELETED b"]);
    cms.create(&PostParams::default(), &cm("c")).await?;
    match next_event(&mut stream).await? {
        WatchEvent::Added(o) => assert_eq!(o.name_any(), "c"),
        other => panic!("unexpected {other:?}"),
    }
    Ok(())
}

#[tokio::test]
async fn a_watch_from_a_resource_version_older_than_the_history_gets_410_gone() -> Result {
    let server = ApiServer::new(ApiConfig {
        watch_history: 5,
        ..Default::default()
    })?;
    let cms: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    let first = cms.create(&PostParams::default(), &cm("first")).await?;
    for i in 0..10 {
        cms.create(&PostParams::default(), &cm(&format!("n{i}"))).await?;
    }
    let mut stream = cms
        .watch(&WatchParams::default(), &first.resource_version().ok_or("no rv")?)
        .await?
        .boxed();
    match next_event(&mut stream).await? {
        WatchEvent::Error(e) => {
            assert_eq!(e.code, 410);
            assert_eq!(e.reason, "Expired");
        }
        other => panic!("expected 410, got {other:?}"),
    }
    Ok(())
}

#[tokio::test]
async fn a_selector_watch_reports_objects_leaving_the_selector_as_deleted_and_sends_bookmarks() -> Result {
    let server = ApiServer::new(ApiConfig {
        bookmark_interval: Duration::from_millis(100),
        ..Default::default()
    })?;
    let cms: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    let mut c = cm("sel");
    c.metadata.labels = Some([("app".to_string(), "x".to_string())].into());
    let created = cms.create(&PostParams::default(), &c).await?;
    let mut wp = WatchParams::default().labels("app=x");
    wp.bookmarks = true;
    let mut stream = cms
        .watch(&wp, &created.resource_version().ok_or("no rv")?)
        .await?
        .boxed();
    cms.patch(
        "sel",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"app": "y"}}})),
    )
    .await?;
    let mut got_deleted = false;
    let mut got_bookmark = false;
    for _ in 0..5 {
        match next_event(&mut stream).await? {
            WatchEvent::Deleted(o) => {
                assert_eq!(o.name_any(), "sel");
                got_deleted = true;
            }
            WatchEvent::Bookmark(_) => got_bookmark = true,
            other => panic!("unexpected {other:?}"),
        }
        if got_deleted && got_bookmark {
            break;
        }
    }
    assert!(got_deleted && got_bookmark);
    Ok(())
}

fn owned_secret(name: &str, owner: &ConfigMap) -> Result<Secret> {
    let oref = owner.controller_owner_ref(&()).ok_or("owner has no uid")?;
    Ok(Secret {
        metadata: ObjectMeta {
            name: Some(name.into()),
            owner_references: Some(vec![oref]),
            ..Default::default()
        },
        ..Default::default()
    })
}

#[tokio::test]
async fn deleting_an_owner_in_background_deletes_its_dependents() -> Result {
    let server = ApiServer::new(ApiConfig::default())?;
    let cms: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    let secrets: Api<Secret> = Api::namespaced(server.client(), "default");
    let owner = cms.create(&PostParams::default(), &cm("owner")).await?;
    secrets
        .create(&PostParams::default(), &owned_secret("dep", &owner)?)
        .await?;
    secrets.create(&PostParams::default(), &cm_secret("free")).await?;
    cms.delete("owner", &DeleteParams::background()).await?;
    eventually(|| async { secrets.get_opt("dep").await.ok().flatten().is_none() }).await?;
    assert!(
        secrets.get_opt("free").await?.is_some(),
        "objects without owners stay"
    );
    Ok(())
}

fn cm_secret(name: &str) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        ..Default::default()
    }
}

#[tokio::test]
async fn foreground_deletion_keeps_the_owner_until_dependents_with_finalizers_are_gone() -> Result {
    let server = ApiServer::new(ApiConfig::default())?;
    let cms: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    let secrets: Api<Secret> = Api::namespaced(server.client(), "default");
    let owner = cms.create(&PostParams::default(), &cm("owner")).await?;
    let mut dep = owned_secret("dep", &owner)?;
    dep.metadata.finalizers = Some(vec!["example.com/hold".into()]);
    secrets.create(&PostParams::default(), &dep).await?;
    cms.delete("owner", &DeleteParams::foreground()).await?;
    eventually(|| async {
        secrets
            .get_opt("dep")
            .await
            .ok()
            .flatten()
            .is_some_and(|s| s.metadata.deletion_timestamp.is_some())
    })
    .await?;
    let held = cms.get("owner").await?;
    assert!(held.metadata.deletion_timestamp.is_some());
    assert!(held.finalizers().iter().any(|f| f == "foregroundDeletion"));
    secrets
        .patch(
            "dep",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": null}})),
        )
        .await?;
    eventually(|| async { cms.get_opt("owner").await.ok().flatten().is_none() }).await?;
    assert!(secrets.get_opt("dep").await?.is_none());
    Ok(())
}

#[tokio::test]
async fn orphan_deletion_keeps_dependents_and_removes_their_owner_reference() -> Result {
    let server = ApiServer::new(ApiConfig::default())?;
    let cms: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    let secrets: Api<Secret> = Api::namespaced(server.client(), "default");
    let owner = cms.create(&PostParams::default(), &cm("owner")).await?;
    secrets
        .create(&PostParams::default(), &owned_secret("dep", &owner)?)
        .await?;
    cms.delete("owner", &DeleteParams::orphan()).await?;
    eventually(|| async { cms.get_opt("owner").await.ok().flatten().is_none() }).await?;
    let dep = secrets.get("dep").await?;
    assert!(dep.owner_references().is_empty());
    Ok(())
}

#[tokio::test]
async fn deleting_a_namespace_removes_its_contents_then_the_namespace() -> Result {
    let server = ApiServer::new(ApiConfig::default())?;
    let nss: Api<Namespace> = Api::all(server.client());
    let ns = Namespace {
        metadata: ObjectMeta {
            name: Some("gone".into()),
            ..Default::default()
        },
        ..Default::default()
    };
    nss.create(&PostParams::default(), &ns).await?;
    let cms: Api<ConfigMap> = Api::namespaced(server.client(), "gone");
    cms.create(&PostParams::default(), &cm("x")).await?;
    nss.delete("gone", &DeleteParams::default()).await?;
    eventually(|| async { nss.get_opt("gone").await.ok().flatten().is_none() }).await?;
    let all: Api<ConfigMap> = Api::all(server.client());
    let left: Vec<_> = all
        .list(&Default::default())
        .await?
        .items
        .into_iter()
        .filter(|c| c.namespace().as_deref() == Some("gone"))
        .collect();
    assert!(left.is_empty());
    Ok(())
}
