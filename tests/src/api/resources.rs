//! The resource registry: which group/version/resource the server serves, its kind, scope,
//! subresources and (for custom resources) the OpenAPI schema objects are validated against.

use std::collections::BTreeMap;
use std::sync::RwLock;

use serde_json::{Value, json};

/// One served resource (all versions of it share storage).
#[derive(Debug, Clone)]
pub struct ResourceInfo {
    /// API group, `""` for core.
    pub group: String,
    /// Served versions, the storage/preferred version first.
    pub versions: Vec<String>,
    /// Plural name (`pods`).
    pub plural: String,
    /// Singular name (`pod`).
    pub singular: String,
    /// Kind (`Pod`).
    pub kind: String,
    /// Namespaced or cluster-scoped.
    pub namespaced: bool,
    /// `kubectl` short names.
    pub short_names: Vec<String>,
    /// Whether the `status` subresource exists (main writes then ignore `status`).
    pub status: bool,
    /// Other subresources (`log`, `exec`, `token`, ...), served by special handlers.
    pub extra_subresources: Vec<String>,
    /// Categories (`all`).
    pub categories: Vec<String>,
    /// OpenAPI v3 schema per version (custom resources only).
    pub schemas: BTreeMap<String, Value>,
    /// Whether this came from a CustomResourceDefinition.
    pub custom: bool,
}

impl ResourceInfo {
    fn builtin(group: &str, version: &str, plural: &str, kind: &str, namespaced: bool) -> Self {
        Self {
            group: group.to_string(),
            versions: vec![version.to_string()],
            plural: plural.to_string(),
            singular: kind.to_lowercase(),
            kind: kind.to_string(),
            namespaced,
            short_names: Vec::new(),
            status: false,
            extra_subresources: Vec::new(),
            categories: Vec::new(),
            schemas: BTreeMap::new(),
            custom: false,
        }
    }

    fn short(mut self, names: &[&str]) -> Self {
        self.short_names = names.iter().map(|s| s.to_string()).collect();
        self
    }

    fn with_status(mut self) -> Self {
        self.status = true;
        self
    }

    fn sub(mut self, names: &[&str]) -> Self {
        self.extra_subresources
            .extend(names.iter().map(|s| s.to_string()));
        self
    }

    fn all(mut self) -> Self {
        self.categories = vec!["all".to_string()];
        self
    }

    /// `apiVersion` for a version of this resource.
    pub fn api_version(&self, version: &str) -> String {
        if self.group.is_empty() {
            version.to_string()
        } else {
            format!("{}/{version}", self.group)
        }
    }

    /// Whether `version` is served.
    pub fn serves(&self, version: &str) -> bool {
        self.versions.iter().any(|v| v == version)
    }
}

/// Every resource known to the server.
#[derive(Debug)]
pub struct Registry {
    builtins: Vec<ResourceInfo>,
    custom: RwLock<Vec<ResourceInfo>>,
}

impl Default for Registry {
    fn default() -> Self {
        Self::new()
    }
}

impl Registry {
    /// The built-in kinds the product touches.
    pub fn new() -> Self {
        let b = ResourceInfo::builtin;
        let builtins = vec![
            b("", "v1", "namespaces", "Namespace", false)
                .short(&["ns"])
                .with_status(),
            b("", "v1", "pods", "Pod", true)
                .short(&["po"])
                .with_status()
                .sub(&["log", "exec"])
                .all(),
            b("", "v1", "persistentvolumeclaims", "PersistentVolumeClaim", true)
                .short(&["pvc"])
                .with_status(),
            b("", "v1", "persistentvolumes", "PersistentVolume", false)
                .short(&["pv"])
                .with_status(),
            b("", "v1", "secrets", "Secret", true),
            b("", "v1", "configmaps", "ConfigMap", true).short(&["cm"]),
            b("", "v1", "serviceaccounts", "ServiceAccount", true)
                .short(&["sa"])
                .sub(&["token"]),
            b("", "v1", "events", "Event", true).short(&["ev"]),
            b("", "v1", "nodes", "Node", false).short(&["no"]).with_status(),
            b("", "v1", "services", "Service", true)
                .short(&["svc"])
                .with_status()
                .all(),
            b("", "v1", "endpoints", "Endpoints", true).short(&["ep"]),
            b("apps", "v1", "deployments", "Deployment", true)
                .short(&["deploy"])
                .with_status()
                .all(),
            b("apps", "v1", "replicasets", "ReplicaSet", true)
                .short(&["rs"])
                .with_status()
                .all(),
            b("apps", "v1", "statefulsets", "StatefulSet", true)
                .short(&["sts"])
                .with_status()
                .all(),
            b("apps", "v1", "daemonsets", "DaemonSet", true)
                .short(&["ds"])
                .with_status()
                .all(),
            b("batch", "v1", "jobs", "Job", true).with_status().all(),
            b("batch", "v1", "cronjobs", "CronJob", true)
                .short(&["cj"])
                .with_status()
                .all(),
            b("rbac.authorization.k8s.io", "v1", "roles", "Role", true),
            b(
                "rbac.authorization.k8s.io",
                "v1",
                "rolebindings",
                "RoleBinding",
                true,
            ),
            b(
                "rbac.authorization.k8s.io",
                "v1",
                "clusterroles",
                "ClusterRole",
                false,
            ),
            b(
                "rbac.authorization.k8s.io",
                "v1",
                "clusterrolebindings",
                "ClusterRoleBinding",
                false,
            ),
            b("coordination.k8s.io", "v1", "leases", "Lease", true),
            b("events.k8s.io", "v1", "events", "Event", true).short(&["ev"]),
            b(
                "apiextensions.k8s.io",
                "v1",
                "customresourcedefinitions",
                "CustomResourceDefinition",
                false,
            )
            .short(&["crd", "crds"])
            .with_status(),
        ];
        Self {
            builtins,
            custom: RwLock::new(Vec::new()),
        }
    }

    fn custom(&self) -> Vec<ResourceInfo> {
        self.custom.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Every resource, built-in first.
    pub fn all(&self) -> Vec<ResourceInfo> {
        let mut all = self.builtins.clone();
        all.extend(self.custom());
        all
    }

    /// The resource served at group/version/plural.
    pub fn lookup(&self, group: &str, version: &str, plural: &str) -> Option<ResourceInfo> {
        self.all()
            .into_iter()
            .find(|r| r.group == group && r.plural == plural && r.serves(version))
    }

    /// The resource of group/plural, whatever the version.
    pub fn by_plural(&self, group: &str, plural: &str) -> Option<ResourceInfo> {
        self.all()
            .into_iter()
            .find(|r| r.group == group && r.plural == plural)
    }

    /// Replace the custom resources by those the given CRD objects describe.
    pub fn set_crds(&self, crds: &[Value]) {
        let list: Vec<ResourceInfo> = crds.iter().filter_map(from_crd).collect();
        *self.custom.write().unwrap_or_else(|e| e.into_inner()) = list;
    }

    /// Groups with their versions, preferred first, in a stable order (core excluded).
    pub fn groups(&self) -> Vec<(String, Vec<String>)> {
        let mut out: Vec<(String, Vec<String>)> = Vec::new();
        for r in self.all() {
            if r.group.is_empty() {
                continue;
            }
            match out.iter_mut().find(|(g, _)| *g == r.group) {
                Some((_, versions)) => {
                    for v in &r.versions {
                        if !versions.contains(v) {
                            versions.push(v.clone());
                        }
                    }
                }
                None => out.push((r.group.clone(), r.versions.clone())),
            }
        }
        out
    }
}

/// A served resource from a CRD object (None when the CRD is malformed or being deleted).
fn from_crd(crd: &Value) -> Option<ResourceInfo> {
    if crd
        .pointer("/metadata/deletionTimestamp")
        .is_some_and(|v| !v.is_null())
    {
        return None;
    }
    let spec = crd.get("spec")?;
    let names = spec.get("names")?;
    let plural = names.get("plural")?.as_str()?.to_string();
    let kind = names.get("kind")?.as_str()?.to_string();
    let strs = |v: Option<&Value>| -> Vec<String> {
        v.and_then(Value::as_array)
            .map(|a| a.iter().filter_map(|s| s.as_str().map(String::from)).collect())
            .unwrap_or_default()
    };
    let mut versions = Vec::new();
    let mut schemas = BTreeMap::new();
    let mut status = false;
    let mut storage_first: Option<String> = None;
    for v in spec.get("versions")?.as_array()? {
        let name = v.get("name")?.as_str()?.to_string();
        if v.get("served").and_then(Value::as_bool) == Some(false) {
            continue;
        }
        if v.pointer("/subresources/status").is_some() {
            status = true;
        }
        if let Some(schema) = v.pointer("/schema/openAPIV3Schema") {
            schemas.insert(name.clone(), schema.clone());
        }
        if v.get("storage").and_then(Value::as_bool) == Some(true) {
            storage_first = Some(name.clone());
        }
        versions.push(name);
    }
    if let Some(storage) = storage_first {
        versions.retain(|v| *v != storage);
        versions.insert(0, storage);
    }
    Some(ResourceInfo {
        group: spec.get("group")?.as_str()?.to_string(),
        versions,
        singular: names
            .get("singular")
            .and_then(Value::as_str)
            .map(String::from)
            .unwrap_or_else(|| kind.to_lowercase()),
        plural,
        kind,
        namespaced: spec.get("scope").and_then(Value::as_str) != Some("Cluster"),
        short_names: strs(names.get("shortNames")),
        status,
        extra_subresources: Vec::new(),
        categories: strs(names.get("categories")),
        schemas,
        custom: true,
    })
}

/// The `APIResource` entries of one group version (resources and their subresources).
pub fn api_resources(registry: &Registry, group: &str, version: &str) -> Vec<Value> {
    let mut out = Vec::new();
    for r in registry.all() {
        if r.group != group || !r.serves(version) {
            continue;
        }
        let verbs = json!([
            "create",
            "delete",
            "deletecollection",
            "get",
            "list",
            "patch",
            "update",
            "watch"
        ]);
        let mut entry = json!({
            "name": r.plural,
            "singularName": r.singular,
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": verbs,
        });
        if !r.short_names.is_empty() {
            entry["shortNames"] = json!(r.short_names);
        }
        if !r.categories.is_empty() {
            entry["categories"] = json!(r.categories);
        }
        out.push(entry);
        if r.status {
            out.push(json!({
                "name": format!("{}/status", r.plural), "singularName": "", "namespaced": r.namespaced,
                "kind": r.kind, "verbs": ["get", "patch", "update"],
            }));
        }
        for sub in &r.extra_subresources {
            let (kind, verbs) = match sub.as_str() {
                "exec" => ("PodExecOptions", json!(["create", "get"])),
                "log" => ("Pod", json!(["get"])),
                "token" => ("TokenRequest", json!(["create"])),
                _ => (r.kind.as_str(), json!(["get"])),
            };
            let mut e = json!({
                "name": format!("{}/{sub}", r.plural), "singularName": "", "namespaced": r.namespaced,
                "kind": kind, "verbs": verbs,
            });
            if sub == "token" {
                e["group"] = json!("authentication.k8s.io");
                e["version"] = json!("v1");
            }
            out.push(e);
        }
    }
    out
}
