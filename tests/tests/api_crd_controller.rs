//! Custom resources on the sandbox API server: applying a CRD serves it, objects are defaulted,
//! pruned and validated against its schema (422 with field causes), discovery lists it, and a
//! kube-runtime `Controller` with `finalizer()` and `.owns()` reconciles against it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8up_tests::api::{ApiConfig, ApiServer};
use kube::api::{DeleteParams, ObjectMeta, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::finalizer::{Event, finalizer};
use kube::runtime::watcher;
use kube::{Api, Client, CustomResource, Resource, ResourceExt};
use serde::{Deserialize, Serialize};
use serde_json::json;

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "test.k8up.io",
    version = "v1",
    kind = "Widget",
    namespaced,
    status = "WidgetStatus",
    schema = "disabled"
)]
pub struct WidgetSpec {
    size: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    mode: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct WidgetStatus {
    observed: i64,
}

fn crd() -> Result<CustomResourceDefinition> {
    Ok(serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.test.k8up.io"},
        "spec": {
            "group": "test.k8up.io",
            "names": {"kind": "Widget", "plural": "widgets", "singular": "widget", "shortNames": ["wd"]},
            "scope": "Namespaced",
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": {"type": "object", "required": ["size"], "properties": {
                        "size": {"type": "integer", "minimum": 1, "maximum": 10},
                        "mode": {"type": "string", "enum": ["a", "b"], "default": "a"},
                    }},
                    "status": {"type": "object", "properties": {"observed": {"type": "integer"}}},
                }}},
            }],
        },
    }))?)
}

async fn install_crd(client: &Client) -> Result {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    crds.patch(
        "widgets.test.k8up.io",
        &PatchParams::apply("test").force(),
        &Patch::Apply(crd()?),
    )
    .await?;
    let established = kube::runtime::wait::await_condition(
        crds,
        "widgets.test.k8up.io",
        kube::runtime::wait::conditions::is_crd_established(),
    );
    tokio::time::timeout(Duration::from_secs(10), established).await??;
    Ok(())
}

fn widget(name: &str, size: i64) -> Widget {
    Widget::new(name, WidgetSpec { size, mode: None })
}

#[tokio::test]
async fn custom_resources_are_defaulted_pruned_and_validated_against_the_crd_schema() -> Result {
    let server = ApiServer::new(ApiConfig::default())?;
    let client = server.client();
    install_crd(&client).await?;
    let widgets: Api<Widget> = Api::namespaced(client.clone(), "default");
    let created = widgets.create(&PostParams::default(), &widget("ok", 3)).await?;
    assert_eq!(
        created.spec.mode.as_deref(),
        Some("a"),
        "the schema default is applied"
    );

    let raw: Api<kube::core::DynamicObject> = Api::namespaced_with(
        client.clone(),
        "default",
        &kube::discovery::ApiResource::erase::<Widget>(&()),
    );
    let pruned: kube::core::DynamicObject = serde_json::from_value(json!({
        "apiVersion": "test.k8up.io/v1", "kind": "Widget", "metadata": {"name": "pruned"},
        "spec": {"size": 2, "unknown": true}, "extra": 1,
    }))?;
    let stored = raw.create(&PostParams::default(), &pruned).await?;
    assert_eq!(stored.data.get("extra"), None);
    assert_eq!(stored.data.pointer("/spec/unknown"), None);

    let bad: kube::core::DynamicObject = serde_json::from_value(json!({
        "apiVersion": "test.k8up.io/v1", "kind": "Widget", "metadata": {"name": "bad"},
        "spec": {"size": 20, "mode": "z"},
    }))?;
    match raw.create(&PostParams::default(), &bad).await {
        Err(kube::Error::Api(s)) => {
            assert_eq!(s.code, 422);
            assert_eq!(s.reason, "Invalid");
            assert!(s.message.contains("spec.size"), "{}", s.message);
            assert!(
                s.message.contains("spec.mode: Unsupported value: \"z\""),
                "{}",
                s.message
            );
        }
        other => panic!("expected 422, got {other:?}"),
    }
    let missing: kube::core::DynamicObject = serde_json::from_value(json!({
        "apiVersion": "test.k8up.io/v1", "kind": "Widget", "metadata": {"name": "missing"}, "spec": {},
    }))?;
    match raw.create(&PostParams::default(), &missing).await {
        Err(kube::Error::Api(s)) => assert!(s.message.contains("spec.size: Required value"), "{}", s.message),
        other => panic!("expected 422, got {other:?}"),
    }
    Ok(())
}

#[tokio::test]
async fn discovery_finds_built_in_and_custom_resources() -> Result {
    let server = ApiServer::new(ApiConfig::default())?;
    let client = server.client();
    install_crd(&client).await?;
    let discovery = kube::Discovery::new(client).run().await?;
    let mut kinds = Vec::new();
    for group in discovery.groups() {
        for (ar, caps) in group.recommended_resources() {
            kinds.push(format!("{}/{} {:?}", ar.group, ar.plural, caps.scope));
        }
    }
    for wanted in [
        "/pods Namespaced",
        "batch/jobs Namespaced",
        "/nodes Cluster",
        "test.k8up.io/widgets Namespaced",
    ] {
        assert!(
            kinds.iter().any(|k| k == wanted),
            "{wanted} missing from {kinds:?}"
        );
    }
    Ok(())
}

#[derive(Debug, thiserror::Error)]
enum ReconcileError {
    #[error("kube: {0}")]
    Kube(#[from] kube::Error),
    #[error("finalizer: {0}")]
    Finalizer(#[source] Box<kube::runtime::finalizer::Error<ReconcileError>>),
}

struct Ctx {
    client: Client,
    cleaned: Mutex<Vec<String>>,
}

async fn reconcile(w: Arc<Widget>, ctx: Arc<Ctx>) -> std::result::Result<Action, ReconcileError> {
    let ns = w.namespace().unwrap_or_default();
    let widgets: Api<Widget> = Api::namespaced(ctx.client.clone(), &ns);
    finalizer(&widgets, "test.k8up.io/cleanup", w, |event| async {
        match event {
            Event::Apply(w) => {
                let cms: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), &ns);
                let oref = w.controller_owner_ref(&()).ok_or_else(|| kube::Error::LinesCodecMaxLineLengthExceeded)?;
                let cm = ConfigMap {
                    metadata: ObjectMeta {
                        name: Some(format!("{}-cm", w.name_any())),
                        owner_references: Some(vec![oref]),
                        ..Default::default()
                    },
                    data: Some([("size".to_string(), w.spec.size.to_string())].into()),
                    ..Default::default()
                };
                let pp = PatchParams::apply("widget-controller").force();
                cms.patch(&format!("{}-cm", w.name_any()), &pp, &Patch::Apply(&cm)).await?;
                let status = json!({"apiVersion": "test.k8up.io/v1", "kind": "Widget", "status": {"observed": w.spec.size}});
                widgets.patch_status(&w.name_any(), &pp, &Patch::Apply(&status)).await?;
                Ok(Action::requeue(Duration::from_secs(300)))
            }
            Event::Cleanup(w) => {
                ctx.cleaned.lock().unwrap_or_else(|e| e.into_inner()).push(w.name_any());
                Ok(Action::await_change())
            }
        }
    })
    .await
    .map_err(|e| ReconcileError::Finalizer(Box::new(e)))
}

async fn eventually<F, Fut>(what: &str, mut check: F) -> Result
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..400 {
        if check().await {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    Err(format!("timed out waiting for: {what}").into())
}

#[tokio::test]
async fn a_controller_with_a_finalizer_and_owned_config_maps_reconciles_against_the_sandbox() -> Result {
    let server = ApiServer::new(ApiConfig {
        bookmark_interval: Duration::from_millis(200),
        ..Default::default()
    })?;
    let client = server.client();
    install_crd(&client).await?;
    let widgets: Api<Widget> = Api::namespaced(client.clone(), "default");
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let ctx = Arc::new(Ctx {
        client: client.clone(),
        cleaned: Mutex::new(Vec::new()),
    });
    let controller = Controller::new(Api::<Widget>::all(client.clone()), watcher::Config::default())
        .owns(Api::<ConfigMap>::all(client.clone()), watcher::Config::default())
        .run(
            reconcile,
            |_, _, _| Action::requeue(Duration::from_millis(100)),
            ctx.clone(),
        )
        .for_each(|_| async {});
    let handle = tokio::spawn(controller);

    widgets.create(&PostParams::default(), &widget("w", 3)).await?;
    eventually("config map with size 3", || async {
        cms.get_opt("w-cm")
            .await
            .ok()
            .flatten()
            .and_then(|c| c.data)
            .and_then(|d| d.get("size").cloned())
            == Some("3".into())
    })
    .await?;
    eventually("status observed 3", || async {
        widgets
            .get("w")
            .await
            .ok()
            .and_then(|w| w.status)
            .map(|s| s.observed)
            == Some(3)
    })
    .await?;
    let w = widgets.get("w").await?;
    assert!(w.finalizers().iter().any(|f| f == "test.k8up.io/cleanup"));
    let cm = cms.get("w-cm").await?;
    assert_eq!(cm.owner_references().first().map(|o| o.uid.clone()), w.uid());

    widgets
        .patch(
            "w",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"size": 5}})),
        )
        .await?;
    eventually("config map follows the spec", || async {
        cms.get_opt("w-cm")
            .await
            .ok()
            .flatten()
            .and_then(|c| c.data)
            .and_then(|d| d.get("size").cloned())
            == Some("5".into())
    })
    .await?;

    // `.owns()`: deleting the owned ConfigMap triggers a reconcile that recreates it.
    let old_uid = cms.get("w-cm").await?.uid();
    cms.delete("w-cm", &DeleteParams::default()).await?;
    eventually("owned config map recreated", || async {
        cms.get_opt("w-cm")
            .await
            .ok()
            .flatten()
            .is_some_and(|c| c.uid() != old_uid)
    })
    .await?;

    widgets.delete("w", &DeleteParams::default()).await?;
    eventually("widget gone after cleanup", || async {
        widgets.get_opt("w").await.ok().flatten().is_none()
    })
    .await?;
    assert_eq!(
        *ctx.cleaned.lock().unwrap_or_else(|e| e.into_inner()),
        vec!["w".to_string()]
    );
    eventually("owned config map garbage-collected", || async {
        cms.get_opt("w-cm").await.ok().flatten().is_none()
    })
    .await?;
    handle.abort();
    Ok(())
}
