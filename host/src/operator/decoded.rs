//! The watch that feeds a controller, decoded one object at a time.
//!
//! kube's typed watch decodes a whole list page at once, so one stored object that does not fit the typed
//! model (a string where the schema leaves the type open, such as `podSecurityContext.runAsUser: "root"`,
//! or an int32 field overflowed) fails every list of its kind: after the next re-list, the controller of that
//! kind would reconcile nothing, cluster-wide, until the object is gone. Here the watch runs on untyped
//! objects and each one is decoded on its own: one that does not decode is skipped and reported on itself,
//! as `Ready=False` with reason `InvalidSpec` naming the field, and a Warning Event; every other object is
//! served as usual.

use std::collections::HashMap;
use std::fmt::Debug;

use futures::{Stream, StreamExt, future};
use k8s_openapi::api::core::v1::ObjectReference;
use kube::api::{ApiResource, DynamicObject, Patch, PatchParams};
use kube::runtime::events::{EventType, Recorder};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;

use super::driver::publish_event;

/// The Event and condition reason for an object that cannot be decoded.
pub const REASON: &str = "InvalidSpec";

/// A controller trigger for `K` and the store behind it: objects of `K` decoded one by one, the ones that do
/// not decode reported through `client` and `recorder` and left out.
pub fn watch<K>(
    client: Client,
    recorder: Recorder,
) -> (
    Store<K>,
    impl Stream<Item = Result<K, watcher::Error>> + Send + 'static,
)
where
    K: Resource<DynamicType = ()> + DeserializeOwned + Clone + Debug + Send + Sync + 'static,
{
    let resource = ApiResource::erase::<K>(&());
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
    let (reader, writer) = reflector::store::<K>();
    let mut reported = Reported::default();
    let stream = watcher(api, watcher::Config::default())
        .default_backoff()
        .filter_map(move |event| {
            let decoded = match event {
                Err(e) => Some(Err(e)),
                Ok(event) => {
                    let deleted = match &event {
                        watcher::Event::Delete(o) => {
                            reported.forget(o.uid().as_deref());
                            true
                        }
                        _ => false,
                    };
                    let decoded = decode_event::<K>(event, |object, message| {
                        if !deleted && reported.first(&object) {
                            tokio::spawn(report(
                                client.clone(),
                                recorder.clone(),
                                resource.clone(),
                                object,
                                message,
                            ));
                        }
                    });
                    if let Some(watcher::Event::Apply(k) | watcher::Event::InitApply(k)) = &decoded {
                        reported.forget(k.meta().uid.as_deref());
                    }
                    decoded.map(Ok)
                }
            };
            future::ready(decoded)
        })
        .reflect(writer)
        .applied_objects();
    (reader, stream)
}

/// The version last reported of each object that does not decode (uid → resourceVersion): a re-list does
/// not report the same version again, and an object leaves it once it is deleted or decodes again, so it
/// holds no more entries than there are undecodable objects.
#[derive(Debug, Default)]
struct Reported(HashMap<String, String>);

impl Reported {
    /// Whether `object` (which does not decode) is to be reported: not when this version was.
    fn first(&mut self, object: &DynamicObject) -> bool {
        let version = object.resource_version().unwrap_or_default();
        self.0.insert(object.uid().unwrap_or_default(), version.clone()) != Some(version)
    }

    fn forget(&mut self, uid: Option<&str>) {
        if !self.0.is_empty()
            && let Some(uid) = uid
        {
            self.0.remove(uid);
        }
    }
}

/// One untyped watch event as an event of `K`; an object that does not decode goes to `undecodable` with
/// the reason, and the event is dropped (`None`).
pub fn decode_event<K: DeserializeOwned>(
    event: watcher::Event<DynamicObject>,
    mut undecodable: impl FnMut(DynamicObject, String),
) -> Option<watcher::Event<K>> {
    let mut decode = |object: DynamicObject| match decode::<K>(&object) {
        Ok(k) => Some(k),
        Err(message) => {
            undecodable(object, message);
            None
        }
    };
    match event {
        watcher::Event::Init => Some(watcher::Event::Init),
        watcher::Event::InitDone => Some(watcher::Event::InitDone),
        watcher::Event::InitApply(o) => decode(o).map(watcher::Event::InitApply),
        watcher::Event::Apply(o) => decode(o).map(watcher::Event::Apply),
        watcher::Event::Delete(o) => decode(o).map(watcher::Event::Delete),
    }
}

/// Decodes one object, or says where it does not fit and why (the path goes as deep as serde can follow: to
/// `spec` for specs with flattened parts, then the type error names the offending value).
pub fn decode<K: DeserializeOwned>(object: &DynamicObject) -> Result<K, String> {
    let value = serde_json::to_value(object).map_err(|e| e.to_string())?;
    serde_path_to_error::deserialize::<_, K>(value).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." {
            inner.to_string()
        } else {
            format!("{path}: {inner}")
        }
    })
}

/// Writes `Ready=False/InvalidSpec` with the reason on the object's status and publishes a Warning Event.
async fn report(
    client: Client,
    recorder: Recorder,
    resource: ApiResource,
    object: DynamicObject,
    reason: String,
) {
    let name = object.name_any();
    let namespace = object.namespace();
    let message =
        format!("the stored object cannot be read ({reason}); correct that field and apply the object again");
    tracing::warn!(kind = resource.kind, namespace, name, %message, "skipping an object that does not decode");
    let api: Api<DynamicObject> = match &namespace {
        Some(ns) => Api::namespaced_with(client, ns, &resource),
        None => Api::all_with(client, &resource),
    };
    let status = serde_json::json!({
        "status": { "conditions": [{
            "type": "Ready",
            "status": "False",
            "reason": REASON,
            "message": message,
            "observedGeneration": object.metadata.generation,
            "lastTransitionTime": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        }]},
    });
    if let Err(e) = api
        .patch_status(&name, &PatchParams::default(), &Patch::Merge(&status))
        .await
    {
        tracing::warn!(error = %crate::errors::kube_message(&e), name, "failed to report an undecodable object");
    }
    let reference = ObjectReference {
        api_version: Some(resource.api_version.clone()),
        kind: Some(resource.kind.clone()),
        name: Some(name),
        namespace,
        uid: object.uid(),
        resource_version: object.resource_version(),
        ..ObjectReference::default()
    };
    publish_event(
        &recorder,
        &reference,
        "Decode",
        EventType::Warning,
        REASON,
        message,
    )
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::Backup;

    fn object(spec: serde_json::Value) -> DynamicObject {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "k8up.io/v1",
            "kind": "Backup",
            "metadata": { "name": "b", "namespace": "ns", "uid": "u1", "resourceVersion": "7" },
            "spec": spec,
        }))
        .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn an_object_that_does_not_decode_is_dropped_and_reported_with_the_field() {
        let mut reported = Vec::new();
        let bad = object(serde_json::json!({ "podSecurityContext": { "runAsUser": "root" } }));
        let out = decode_event::<Backup>(watcher::Event::InitApply(bad), |o, m| {
            reported.push((o.name_any(), m))
        });
        assert!(out.is_none());
        assert_eq!(reported.len(), 1);
        assert_eq!(reported[0].0, "b");
        // The path ends where the spec is buffered for its flattened parts; the type error names the value.
        assert!(
            reported[0].1.starts_with("spec")
                && reported[0]
                    .1
                    .contains("invalid type: string \"root\", expected i64"),
            "{}",
            reported[0].1
        );
    }

    #[test]
    fn a_version_is_reported_once_and_forgotten_when_the_object_goes_or_decodes() {
        let mut reported = Reported::default();
        let mut bad = object(serde_json::json!({ "podSecurityContext": { "runAsUser": "root" } }));
        assert!(reported.first(&bad));
        assert!(!reported.first(&bad), "a re-list reports the same version again");
        bad.metadata.resource_version = Some("8".into());
        assert!(reported.first(&bad), "a new version is reported");
        assert_eq!(reported.0.len(), 1);
        reported.forget(Some("u1"));
        assert!(reported.0.is_empty());
        assert!(
            reported.first(&bad),
            "after it decoded or was deleted, it is reported again"
        );
    }

    #[test]
    fn decodable_objects_and_list_markers_pass_through() {
        let mut reported = 0;
        let good = object(serde_json::json!({ "tags": ["a"] }));
        let out = decode_event::<Backup>(watcher::Event::Apply(good), |_, _| reported += 1);
        assert!(matches!(out, Some(watcher::Event::Apply(b)) if b.name_any() == "b"));
        assert!(matches!(
            decode_event::<Backup>(watcher::Event::Init, |_, _| reported += 1),
            Some(watcher::Event::Init)
        ));
        assert!(matches!(
            decode_event::<Backup>(watcher::Event::InitDone, |_, _| reported += 1),
            Some(watcher::Event::InitDone)
        ));
        assert_eq!(reported, 0);
    }
}
