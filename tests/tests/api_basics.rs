//! The sandbox API server's storage semantics through kube-rs: CRUD, optimistic concurrency,
//! selectors, generation, status subresource, and the namespace rules of a real cluster.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod};
use k8up_tests::api::{ApiConfig, ApiServer};
use kube::Api;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

fn cm(name: &str, labels: &[(&str, &str)]) -> ConfigMap {
    let mut c = ConfigMap::default();
    c.metadata.name = Some(name.to_string());
    c.metadata.labels = Some(
        labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>(),
    );
    c.data = Some([("k".to_string(), "v".to_string())].into());
    c
}

fn api_code(e: &kube::Error) -> Option<u16> {
    match e {
        kube::Error::Api(s) => Some(s.code),
        _ => None,
    }
}

#[tokio::test]
async fn created_objects_get_identity_and_can_be_read_listed_and_deleted() -> Result {
    let server = ApiServer::new(ApiConfig::default())?;
    let cms: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    let created = cms
        .create(&PostParams::default(), &cm("one", &[("app", "a")]))
        .await?;
    assert!(created.metadata.uid.is_some());
    assert!(created.metadata.creation_timestamp.is_some());
    assert!(created.metadata.resource_version.is_some());
    let got = cms.get("one").await?;
    assert_eq!(got.data, created.data);
    let dup = cms.create(&PostParams::default(), &cm("one", &[])).await.err();
    assert_eq!(dup.as_ref().and_then(api_code), Some(409));
    cms.delete("one", &DeleteParams::default()).await?;
    let missing = cms.get("one").await.err();
    assert_eq!(missing.as_ref().and_then(api_code), Some(404));
    Ok(())
}

#[tokio::test]
async fn an_update_with_a_stale_resource_version_gets_409_conflict() -> Result {
    let server = ApiServer::new(ApiConfig::default())?;
    let cms: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    let first = cms.create(&PostParams::default(), &cm("c", &[])).await?;
    let mut a = first.clone();
    a.data = Some([("k".to_string(), "a".to_string())].into());
    let updated = cms.replace("c", &PostParams::default(), &a).await?;
    assert_ne!(updated.metadata.resource_version, first.metadata.resource_version);
    let mut stale = first.clone();
    stale.data = Some([("k".to_string(), "b".to_string())].into());
    let err = cms.replace("c", &PostParams::default(), &stale).await.err();
    match err {
        Some(kube::Error::Api(s)) => {
            assert_eq!(s.code, 409);
            assert_eq!(s.reason, "Conflict");
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(
        cms.get("c").await?.data.and_then(|d| d.get("k").cloned()),
        Some("a".to_string())
    );
    Ok(())
}

#[tokio::test]
async fn label_and_field_selectors_filter_lists() -> Result {
    let server = ApiServer::new(ApiConfig::default())?;
    let cms: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    for (n, l) in [("a", "x"), ("b", "y"), ("c", "z")] {
        cms.create(&PostParams::default(), &cm(n, &[("tier", l)])).await?;
    }
    cms.create(&PostParams::default(), &cm("d", &[])).await?;
    let names = |l: kube::core::ObjectList<ConfigMap>| -> Vec<String> {
        l.items.into_iter().filter_map(|c| c.metadata.name).collect()
    };
    assert_eq!(
        names(cms.list(&ListParams::default().labels("tier in (x,y)")).await?),
        vec!["a", "b"]
    );
    assert_eq!(
        names(
            cms.list(&ListParams::default().labels("tier notin (x),tier"))
                .await?
        ),
        vec!["b", "c"]
    );
    assert_eq!(
        names(cms.list(&ListParams::default().labels("!tier")).await?),
        vec!["d"]
    );
    assert_eq!(
        names(cms.list(&ListParams::default().labels("tier!=z")).await?),
        vec!["a", "b", "d"]
    );
    assert_eq!(
        names(cms.list(&ListParams::default().fields("metadata.name=c")).await?),
        vec!["c"]
    );
    let all: Api<ConfigMap> = Api::all(server.client());
    assert_eq!(
        names(
            all.list(&ListParams::default().fields("metadata.namespace=default,metadata.name!=a"))
                .await?
        ),
        vec!["b", "c", "d"]
    );
    Ok(())
}

#[tokio::test]
async fn a_namespaced_create_needs_an_existing_namespace() -> Result {
    let server = ApiServer::new(ApiConfig::default())?;
    let cms: Api<ConfigMap> = Api::namespaced(server.client(), "nowhere");
    let err = cms.create(&PostParams::default(), &cm("x", &[])).await.err();
    assert_eq!(err.as_ref().and_then(api_code), Some(404));
    let nss: Api<Namespace> = Api::all(server.client());
    let mut ns = Namespace::default();
    ns.metadata.name = Some("nowhere".into());
    nss.create(&PostParams::default(), &ns).await?;
    cms.create(&PostParams::default(), &cm("x", &[])).await?;
    Ok(())
}

#[tokio::test]
async fn generation_moves_with_spec_changes_and_status_only_through_the_subresource() -> Result {
    let server = ApiServer::new(ApiConfig::default())?;
    let deps: Api<Deployment> = Api::namespaced(server.client(), "default");
    let d: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "d"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"a": "b"}},
            "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "x"}]}}},
        "status": {"replicas": 7},
    }))?;
    let d = deps.create(&PostParams::default(), &d).await?;
    assert_eq!(d.metadata.generation, Some(1));
    assert_eq!(
        d.status.as_ref().and_then(|s| s.replicas),
        None,
        "status is not set by a create"
    );
    let pp = PatchParams::default();
    let d = deps
        .patch(
            "d",
            &pp,
            &Patch::Merge(json!({"metadata": {"labels": {"x": "y"}}})),
        )
        .await?;
    assert_eq!(
        d.metadata.generation,
        Some(1),
        "metadata changes keep the generation"
    );
    let d = deps
        .patch(
            "d",
            &pp,
            &Patch::Merge(json!({"spec": {"replicas": 3}, "status": {"replicas": 9}})),
        )
        .await?;
    assert_eq!(d.metadata.generation, Some(2));
    assert_eq!(
        d.status.as_ref().and_then(|s| s.replicas),
        None,
        "main writes ignore status"
    );
    let d = deps
        .patch_status(
            "d",
            &pp,
            &Patch::Merge(json!({"status": {"replicas": 3}, "spec": {"replicas": 5}})),
        )
        .await?;
    assert_eq!(d.status.as_ref().and_then(|s| s.replicas), Some(3));
    assert_eq!(
        d.spec.as_ref().and_then(|s| s.replicas),
        Some(3),
        "status writes ignore spec"
    );
    assert_eq!(d.metadata.generation, Some(2));
    Ok(())
}

#[tokio::test]
async fn generate_name_and_server_side_apply_create_and_merge() -> Result {
    let server = ApiServer::new(ApiConfig::default())?;
    let pods: Api<Pod> = Api::namespaced(server.client(), "default");
    let p: Pod = serde_json::from_value(
        json!({"metadata": {"generateName": "job-"}, "spec": {"containers": [{"name": "c", "image": "x"}]}}),
    )?;
    let p = pods.create(&PostParams::default(), &p).await?;
    let name = p.metadata.name.unwrap_or_default();
    assert!(name.starts_with("job-") && name.len() == 9, "{name}");
    let cms: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    let pp = PatchParams::apply("me").force();
    let applied = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ssa"}, "data": {"a": "1", "b": "2"}});
    cms.patch("ssa", &pp, &Patch::Apply(&applied)).await?;
    cms.patch(
        "ssa",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"other": "x"}})),
    )
    .await?;
    let applied =
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ssa"}, "data": {"a": "3"}});
    let c = cms.patch("ssa", &pp, &Patch::Apply(&applied)).await?;
    let data = c.data.unwrap_or_default();
    assert_eq!(data.get("a").map(String::as_str), Some("3"));
    assert_eq!(
        data.get("b"),
        None,
        "a field the manager stopped applying is removed"
    );
    assert_eq!(
        data.get("other").map(String::as_str),
        Some("x"),
        "other managers' fields stay"
    );
    Ok(())
}
