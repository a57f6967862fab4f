//! Object semantics on top of the store: create (names, uid, generation, defaults, namespace
//! checks, schema validation), update with optimistic concurrency and the status subresource,
//! patch, and delete with finalizers and propagation policies.

use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::ApiServer;
use super::patch::{self, PatchKind};
use super::resources::ResourceInfo;
use super::schema;
use super::status::{ApiError, Cause};
use super::store::{Mutation, ObjKey};

/// How a delete should treat dependents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Propagation {
    /// Delete the owner now; the garbage collector deletes dependents afterwards.
    #[default]
    Background,
    /// Keep the owner (with `foregroundDeletion`) until its dependents are gone.
    Foreground,
    /// Remove the owner reference from dependents and keep them.
    Orphan,
}

impl Propagation {
    /// From a `propagationPolicy` value.
    pub fn parse(s: &str) -> Result<Self, ApiError> {
        match s {
            "Background" => Ok(Self::Background),
            "Foreground" => Ok(Self::Foreground),
            "Orphan" => Ok(Self::Orphan),
            other => Err(ApiError::bad_request(format!(
                "unknown propagationPolicy {other:?}"
            ))),
        }
    }
}

/// Options of a delete.
#[derive(Debug, Clone, Default)]
pub struct DeleteOptions {
    /// Propagation policy (default Background).
    pub propagation: Option<Propagation>,
    /// Precondition on the uid.
    pub uid: Option<String>,
    /// Precondition on the resourceVersion.
    pub resource_version: Option<String>,
    /// Do not persist.
    pub dry_run: bool,
}

pub(crate) fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

pub(crate) fn new_uid() -> String {
    let b: [u8; 16] = rand::random();
    let h = hex::encode(b);
    format!(
        "{}-{}-4{}-a{}-{}",
        &h[0..8],
        &h[8..12],
        &h[13..16],
        &h[17..20],
        &h[20..32]
    )
}

fn random_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    (0..5)
        .map(|_| ALPHABET[rand::random_range(0..ALPHABET.len())] as char)
        .collect()
}

pub(crate) fn meta(obj: &Value) -> &Value {
    obj.get("metadata").unwrap_or(&Value::Null)
}

pub(crate) fn meta_str<'a>(obj: &'a Value, field: &str) -> Option<&'a str> {
    meta(obj)
        .get(field)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

pub(crate) fn meta_mut(obj: &mut Value) -> &mut Map<String, Value> {
    if !obj.is_object() {
        *obj = Value::Object(Map::new());
    }
    let Some(map) = obj.as_object_mut() else {
        unreachable!("made an object above")
    };
    let entry = map.entry("metadata").or_insert_with(|| Value::Object(Map::new()));
    if !entry.is_object() {
        *entry = Value::Object(Map::new());
    }
    match entry.as_object_mut() {
        Some(m) => m,
        None => unreachable!("made an object above"),
    }
}

pub(crate) fn finalizers(obj: &Value) -> Vec<String> {
    meta(obj)
        .get("finalizers")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|f| f.as_str().map(String::from)).collect())
        .unwrap_or_default()
}

pub(crate) fn is_deleting(obj: &Value) -> bool {
    meta(obj).get("deletionTimestamp").is_some_and(|v| !v.is_null())
}

fn is_dns_subdomain(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric())
}

/// The object with `apiVersion`/`kind` of the requested version (storage is version-less).
pub(crate) fn present(res: &ResourceInfo, version: &str, obj: &Value) -> Value {
    let mut out = obj.clone();
    if let Some(map) = out.as_object_mut() {
        map.insert("apiVersion".into(), Value::String(res.api_version(version)));
        map.insert("kind".into(), Value::String(res.kind.clone()));
    }
    out
}

/// Everything but metadata (and status when it is a subresource): a change here bumps generation.
fn spec_part(res: &ResourceInfo, obj: &Value) -> Value {
    let mut v = obj.clone();
    if let Some(m) = v.as_object_mut() {
        m.remove("metadata");
        m.remove("apiVersion");
        m.remove("kind");
        if res.status {
            m.remove("status");
        }
    }
    v
}

fn same_ignoring_rv(a: &Value, b: &Value) -> bool {
    let strip = |v: &Value| {
        let mut v = v.clone();
        let m = meta_mut(&mut v);
        m.remove("resourceVersion");
        m.remove("managedFields");
        v
    };
    strip(a) == strip(b)
}

impl ApiServer {
    pub(crate) fn key(res: &ResourceInfo, namespace: &str, name: &str) -> ObjKey {
        let ns = if res.namespaced { namespace } else { "" };
        ObjKey::new(&res.group, &res.plural, ns, name)
    }

    fn validate_custom(&self, res: &ResourceInfo, version: &str, obj: &mut Value) -> Result<(), ApiError> {
        if !res.custom {
            return Ok(());
        }
        let Some(schema) = res.schemas.get(version).or_else(|| res.schemas.values().next()) else {
            return Ok(());
        };
        let causes = schema::validate(schema, obj);
        if causes.is_empty() {
            Ok(())
        } else {
            Err(ApiError::invalid(
                &res.kind,
                &res.group,
                meta_str(obj, "name").unwrap_or(""),
                causes,
            ))
        }
    }

    /// Called after every successful write: keeps the registry in sync with CRDs and wakes the
    /// garbage collector.
    pub(crate) fn after_write(&self, res: &ResourceInfo) {
        if res.group == "apiextensions.k8s.io" && res.plural == "customresourcedefinitions" {
            let (crds, _) = self
                .store
                .list("apiextensions.k8s.io", "customresourcedefinitions", None);
            let crds: Vec<Value> = crds.iter().map(|c| (**c).clone()).collect();
            self.registry.set_crds(&crds);
        }
        self.gc.notify_one();
    }

    fn check_namespace(&self, res: &ResourceInfo, namespace: &str) -> Result<(), ApiError> {
        if !res.namespaced {
            return Ok(());
        }
        if namespace.is_empty() {
            return Err(ApiError::bad_request("the namespace of the object is required"));
        }
        match self.store.get(&ObjKey::new("", "namespaces", "", namespace)) {
            None => Err(ApiError::not_found("", "namespaces", namespace)),
            Some(ns) if is_deleting(&ns) => Err(ApiError::forbidden(format!(
                "{} \"{}\" is forbidden: unable to create new content in namespace {namespace} because it is being terminated",
                res.plural,
                meta_str(&ns, "name").unwrap_or(namespace)
            ))),
            Some(_) => Ok(()),
        }
    }

    /// Create an object (POST). `namespace` is the namespace of the URL (`""` when cluster-scoped).
    pub fn create_object(
        &self,
        res: &ResourceInfo,
        version: &str,
        namespace: &str,
        mut obj: Value,
        dry_run: bool,
    ) -> Result<Arc<Value>, ApiError> {
        if !obj.is_object() {
            return Err(ApiError::bad_request(
                "the body of the request must be a JSON object",
            ));
        }
        let ns = if res.namespaced {
            match meta_str(&obj, "namespace") {
                Some(body_ns) if !namespace.is_empty() && body_ns != namespace => {
                    return Err(ApiError::bad_request(
                        "the namespace of the provided object does not match the namespace sent on the request",
                    ));
                }
                Some(body_ns) => body_ns.to_string(),
                None => namespace.to_string(),
            }
        } else {
            String::new()
        };
        let name = match (meta_str(&obj, "name"), meta_str(&obj, "generateName")) {
            (Some(n), _) => n.to_string(),
            (None, Some(prefix)) => format!("{prefix}{}", random_suffix()),
            (None, None) => {
                return Err(ApiError::invalid(
                    &res.kind,
                    &res.group,
                    "",
                    vec![Cause::new(
                        "FieldValueRequired",
                        "metadata.name",
                        "Required value: name or generateName is required",
                    )],
                ));
            }
        };
        if !is_dns_subdomain(&name) {
            return Err(ApiError::invalid(
                &res.kind,
                &res.group,
                &name,
                vec![Cause::new(
                    "FieldValueInvalid",
                    "metadata.name",
                    format!(
                        "Invalid value: {name:?}: a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character"
                    ),
                )],
            ));
        }
        self.check_namespace(res, &ns)?;
        let obj_ref = &mut obj;
        {
            let m = meta_mut(obj_ref);
            m.insert("name".into(), json!(name));
            if res.namespaced {
                m.insert("namespace".into(), json!(ns));
            } else {
                m.remove("namespace");
            }
            m.insert("uid".into(), json!(new_uid()));
            m.insert("creationTimestamp".into(), json!(now()));
            m.insert("generation".into(), json!(1));
            m.remove("resourceVersion");
            m.remove("deletionTimestamp");
            m.remove("deletionGracePeriodSeconds");
            m.remove("managedFields");
        }
        if let Some(map) = obj.as_object_mut() {
            map.insert("apiVersion".into(), json!(res.api_version(version)));
            map.insert("kind".into(), json!(res.kind));
            if res.status && res.custom {
                map.remove("status");
            }
        }
        self.validate_custom(res, version, &mut obj)?;
        builtin_defaults_on_create(res, &mut obj);
        if dry_run {
            return Ok(Arc::new(obj));
        }
        let key = Self::key(res, &ns, &name);
        let stored = self.store.mutate(&key, |existing| match existing {
            Some(_) => Err(ApiError::already_exists(&res.group, &res.plural, &name)),
            None => Ok(Mutation::Put(obj)),
        })?;
        self.after_write(res);
        if res.group.is_empty() && res.plural == "namespaces" {
            self.ensure_default_service_account(&name);
        }
        stored.ok_or_else(|| ApiError::internal("created object vanished"))
    }

    fn ensure_default_service_account(&self, namespace: &str) {
        let Some(sa) = self.registry.by_plural("", "serviceaccounts") else {
            return;
        };
        let body = json!({"metadata": {"name": "default"}});
        // AlreadyExists is fine: the namespace existed before.
        let _ = self.create_object(&sa, "v1", namespace, body, false);
    }

    /// The new state of `existing` after an update with `incoming` (PUT semantics), or `Unchanged`.
    fn updated(
        &self,
        res: &ResourceInfo,
        version: &str,
        existing: &Value,
        mut incoming: Value,
        status_only: bool,
    ) -> Result<Mutation, ApiError> {
        let name = meta_str(existing, "name").unwrap_or("").to_string();
        if let Some(rv) = meta_str(&incoming, "resourceVersion")
            && Some(rv) != meta_str(existing, "resourceVersion")
        {
            return Err(ApiError::stale(&res.group, &res.plural, &name));
        }
        if let Some(uid) = meta_str(&incoming, "uid")
            && Some(uid) != meta_str(existing, "uid")
        {
            return Err(ApiError::conflict(
                &res.group,
                &res.plural,
                &name,
                "the UID in the object does not match",
            ));
        }
        if let Some(n) = meta_str(&incoming, "name")
            && n != name
        {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({n}) does not match the name on the URL ({name})"
            )));
        }
        let mut next = if status_only {
            let mut next = existing.clone();
            if let Some(map) = next.as_object_mut() {
                match incoming.get("status") {
                    Some(s) => map.insert("status".into(), s.clone()),
                    None => map.remove("status"),
                };
            }
            next
        } else {
            if res.status
                && let Some(map) = incoming.as_object_mut()
            {
                match existing.get("status") {
                    Some(s) => map.insert("status".into(), s.clone()),
                    None => map.remove("status"),
                };
            }
            incoming
        };
        {
            let old_meta = meta(existing).clone();
            let m = meta_mut(&mut next);
            for field in [
                "uid",
                "creationTimestamp",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "namespace",
                "name",
                "generation",
            ] {
                match old_meta.get(field) {
                    Some(v) => m.insert(field.into(), v.clone()),
                    None => m.remove(field),
                };
            }
            m.remove("managedFields");
            if is_deleting(existing) {
                // Finalizers may only be removed from an object that is being deleted.
                let old: Vec<String> = finalizers(existing);
                let new: Vec<Value> = m
                    .get("finalizers")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|f| f.as_str().is_some_and(|f| old.iter().any(|o| o == f)))
                    .collect();
                m.insert("finalizers".into(), Value::Array(new));
            }
        }
        if let Some(map) = next.as_object_mut() {
            map.insert("apiVersion".into(), json!(res.api_version(version)));
            map.insert("kind".into(), json!(res.kind));
        }
        self.validate_custom(res, version, &mut next)?;
        builtin_defaults_on_update(res, &mut next);
        if spec_part(res, &next) != spec_part(res, existing) {
            let g = meta(existing)
                .get("generation")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            meta_mut(&mut next).insert("generation".into(), json!(g + 1));
        }
        if meta(&next)
            .get("finalizers")
            .and_then(Value::as_array)
            .is_some_and(Vec::is_empty)
        {
            meta_mut(&mut next).remove("finalizers");
        }
        if is_deleting(&next)
            && finalizers(&next).is_empty()
            && !(res.group.is_empty() && res.plural == "namespaces")
        {
            return Ok(Mutation::Delete);
        }
        if same_ignoring_rv(&next, existing) {
            return Ok(Mutation::Unchanged);
        }
        Ok(Mutation::Put(next))
    }

    /// Replace an object (PUT), or only its status when `status_only`.
    pub fn update_object(
        &self,
        res: &ResourceInfo,
        version: &str,
        namespace: &str,
        name: &str,
        incoming: Value,
        status_only: bool,
        dry_run: bool,
    ) -> Result<Arc<Value>, ApiError> {
        if !incoming.is_object() {
            return Err(ApiError::bad_request(
                "the body of the request must be a JSON object",
            ));
        }
        let key = Self::key(res, namespace, name);
        let mut dry: Option<Arc<Value>> = None;
        let stored = self.store.mutate(&key, |existing| {
            let existing = existing.ok_or_else(|| ApiError::not_found(&res.group, &res.plural, name))?;
            let m = self.updated(res, version, existing, incoming, status_only)?;
            if dry_run {
                dry = Some(Arc::new(match m {
                    Mutation::Put(v) => v,
                    _ => existing.clone(),
                }));
                return Ok(Mutation::Unchanged);
            }
            Ok(m)
        })?;
        if let Some(d) = dry {
            return Ok(d);
        }
        self.after_write(res);
        stored.ok_or_else(|| ApiError::not_found(&res.group, &res.plural, name))
    }

    /// Patch an object (or its status). Server-side apply creates a missing object.
    #[allow(clippy::too_many_arguments)]
    pub fn patch_object(
        &self,
        res: &ResourceInfo,
        version: &str,
        namespace: &str,
        name: &str,
        kind: PatchKind,
        body: &[u8],
        field_manager: Option<&str>,
        status_only: bool,
        dry_run: bool,
    ) -> Result<(Arc<Value>, bool), ApiError> {
        let key = Self::key(res, namespace, name);
        let parsed: Option<Value> = match kind {
            PatchKind::Json => None,
            PatchKind::Apply => Some(
                serde_yaml::from_slice(body)
                    .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?,
            ),
            _ => Some(
                serde_json::from_slice(body)
                    .map_err(|e| ApiError::bad_request(format!("invalid JSON patch body: {e}")))?,
            ),
        };
        if kind == PatchKind::Apply {
            let manager = field_manager.ok_or_else(|| {
                ApiError::bad_request("PATCH, application/apply-patch+yaml requests must have a fieldManager")
            })?;
            let applied = parsed.clone().unwrap_or(Value::Null);
            let existing = self.store.get(&key);
            let Some(existing) = existing else {
                if status_only {
                    return Err(ApiError::not_found(&res.group, &res.plural, name));
                }
                let mut obj = applied.clone();
                meta_mut(&mut obj).insert("name".into(), json!(name));
                let created = self.create_object(res, version, namespace, obj, dry_run)?;
                if let Some(uid) = meta_str(&created, "uid") {
                    self.remember_applied(uid, manager, &applied);
                }
                return Ok((created, true));
            };
            let uid = meta_str(&existing, "uid").unwrap_or("").to_string();
            let previous = self.applied_by(&uid, manager);
            let mut incoming = patch::apply(&existing, previous.as_ref(), &applied);
            // An applied configuration without a resourceVersion must not trip optimistic concurrency.
            if meta_str(&applied, "resourceVersion").is_none() {
                meta_mut(&mut incoming).remove("resourceVersion");
            }
            let out = self.update_object(res, version, namespace, name, incoming, status_only, dry_run)?;
            if !dry_run {
                self.remember_applied(&uid, manager, &applied);
            }
            return Ok((out, false));
        }
        let mut dry: Option<Arc<Value>> = None;
        let stored = self.store.mutate(&key, |existing| {
            let existing = existing.ok_or_else(|| ApiError::not_found(&res.group, &res.plural, name))?;
            let mut target = existing.clone();
            meta_mut(&mut target).remove("resourceVersion");
            match (kind, &parsed) {
                (PatchKind::Json, _) => {
                    // JSON patch ops may test the resourceVersion, so they see the stored one.
                    let mut full = existing.clone();
                    patch::json(&mut full, body)?;
                    if meta_str(&full, "resourceVersion") == meta_str(existing, "resourceVersion") {
                        meta_mut(&mut full).remove("resourceVersion");
                    }
                    target = full;
                }
                (PatchKind::Merge, Some(p)) => patch::merge(&mut target, p),
                (PatchKind::Strategic, Some(p)) => {
                    if res.custom {
                        return Err(ApiError::unsupported_media_type(
                            "strategic merge patch is not supported for custom resources; use merge patch",
                        ));
                    }
                    patch::strategic(&mut target, p)
                }
                _ => return Err(ApiError::bad_request("missing patch body")),
            }
            let m = self.updated(res, version, existing, target, status_only)?;
            if dry_run {
                dry = Some(Arc::new(match m {
                    Mutation::Put(v) => v,
                    _ => existing.clone(),
                }));
                return Ok(Mutation::Unchanged);
            }
            Ok(m)
        })?;
        if let Some(d) = dry {
            return Ok((d, false));
        }
        self.after_write(res);
        let out = stored.ok_or_else(|| ApiError::not_found(&res.group, &res.plural, name))?;
        Ok((out, false))
    }

    fn remember_applied(&self, uid: &str, manager: &str, applied: &Value) {
        let mut map = self.applied.lock().unwrap_or_else(|e| e.into_inner());
        map.insert((uid.to_string(), manager.to_string()), applied.clone());
    }

    fn applied_by(&self, uid: &str, manager: &str) -> Option<Value> {
        let map = self.applied.lock().unwrap_or_else(|e| e.into_inner());
        map.get(&(uid.to_string(), manager.to_string())).cloned()
    }

    /// Delete an object: removed at once, or marked with `deletionTimestamp` while finalizers
    /// (including `foregroundDeletion`/`orphan` for those policies) remain.
    pub fn delete_object(
        &self,
        res: &ResourceInfo,
        namespace: &str,
        name: &str,
        opts: &DeleteOptions,
    ) -> Result<Arc<Value>, ApiError> {
        let key = Self::key(res, namespace, name);
        let is_namespace = res.group.is_empty() && res.plural == "namespaces";
        let mut dry: Option<Arc<Value>> = None;
        let stored = self.store.mutate(&key, |existing| {
            let existing = existing.ok_or_else(|| ApiError::not_found(&res.group, &res.plural, name))?;
            if let Some(uid) = &opts.uid
                && Some(uid.as_str()) != meta_str(existing, "uid")
            {
                return Err(ApiError::conflict(
                    &res.group,
                    &res.plural,
                    name,
                    "Precondition failed: UID in precondition does not match",
                ));
            }
            if let Some(rv) = &opts.resource_version
                && Some(rv.as_str()) != meta_str(existing, "resourceVersion")
            {
                return Err(ApiError::stale(&res.group, &res.plural, name));
            }
            if opts.dry_run {
                dry = Some(Arc::new(existing.clone()));
                return Ok(Mutation::Unchanged);
            }
            let mut fins = finalizers(existing);
            match opts.propagation {
                Some(Propagation::Foreground) if !fins.iter().any(|f| f == "foregroundDeletion") => {
                    fins.push("foregroundDeletion".into())
                }
                Some(Propagation::Orphan) if !fins.iter().any(|f| f == "orphan") => {
                    fins.push("orphan".into())
                }
                _ => {}
            }
            if fins.is_empty() && !is_namespace {
                return Ok(Mutation::Delete);
            }
            let mut next = existing.clone();
            let m = meta_mut(&mut next);
            if !fins.is_empty() {
                m.insert("finalizers".into(), json!(fins));
            }
            if !is_deleting(existing) {
                m.insert("deletionTimestamp".into(), json!(now()));
                m.insert("deletionGracePeriodSeconds".into(), json!(0));
            }
            if is_namespace && let Some(map) = next.as_object_mut() {
                map.insert("status".into(), json!({"phase": "Terminating"}));
            }
            if same_ignoring_rv(&next, existing) {
                return Ok(Mutation::Unchanged);
            }
            Ok(Mutation::Put(next))
        })?;
        if let Some(d) = dry {
            return Ok(d);
        }
        self.after_write(res);
        stored.ok_or_else(|| ApiError::not_found(&res.group, &res.plural, name))
    }

    /// Remove one finalizer (used by the garbage collector); deletes the object when it was the
    /// last one on an object being deleted.
    pub(crate) fn remove_finalizer(&self, key: &ObjKey, finalizer: &str) {
        let Some(res) = self.registry.by_plural(&key.group, &key.resource) else {
            return;
        };
        let result = self.store.mutate(key, |existing| {
            let Some(existing) = existing else {
                return Ok(Mutation::Unchanged);
            };
            let mut fins = finalizers(existing);
            let before = fins.len();
            fins.retain(|f| f != finalizer);
            if fins.len() == before {
                return Ok(Mutation::Unchanged);
            }
            let mut next = existing.clone();
            meta_mut(&mut next).insert("finalizers".into(), json!(fins));
            meta_mut(&mut next).remove("resourceVersion");
            let version = res.versions.first().cloned().unwrap_or_default();
            self.updated(&res, &version, existing, next, false)
        });
        if result.is_ok() {
            self.after_write(&res);
        }
    }
}

fn builtin_defaults_on_create(res: &ResourceInfo, obj: &mut Value) {
    let uid = meta_str(obj, "uid").unwrap_or("").to_string();
    let name = meta_str(obj, "name").unwrap_or("").to_string();
    let Some(map) = obj.as_object_mut() else { return };
    match (res.group.as_str(), res.plural.as_str()) {
        ("", "namespaces") => {
            map.insert("status".into(), json!({"phase": "Active"}));
            let labels = map
                .entry("metadata")
                .or_insert_with(|| json!({}))
                .as_object_mut()
                .map(|m| m.entry("labels").or_insert_with(|| json!({})));
            if let Some(Value::Object(l)) = labels {
                l.insert("kubernetes.io/metadata.name".into(), json!(name));
            }
        }
        ("", "pods") => {
            let spec = map.entry("spec").or_insert_with(|| json!({}));
            if let Some(spec) = spec.as_object_mut() {
                let sa = spec
                    .get("serviceAccountName")
                    .cloned()
                    .unwrap_or_else(|| json!("default"));
                spec.insert("serviceAccountName".into(), sa.clone());
                spec.insert("serviceAccount".into(), sa);
                spec.entry("restartPolicy").or_insert_with(|| json!("Always"));
            }
            map.insert("status".into(), json!({"phase": "Pending"}));
        }
        ("", "persistentvolumeclaims") => {
            map.insert("status".into(), json!({"phase": "Pending"}));
        }
        ("apps", "deployments") => {
            if let Some(spec) = map.entry("spec").or_insert_with(|| json!({})).as_object_mut() {
                spec.entry("replicas").or_insert_with(|| json!(1));
            }
            map.insert("status".into(), json!({}));
        }
        ("batch", "jobs") => {
            if let Some(spec) = map.entry("spec").or_insert_with(|| json!({})).as_object_mut() {
                spec.entry("parallelism").or_insert_with(|| json!(1));
                spec.entry("completions").or_insert_with(|| json!(1));
                spec.entry("backoffLimit").or_insert_with(|| json!(6));
                spec.entry("completionMode")
                    .or_insert_with(|| json!("NonIndexed"));
                spec.entry("suspend").or_insert_with(|| json!(false));
                let manual = spec.get("manualSelector").and_then(Value::as_bool) == Some(true);
                if !manual {
                    let labels = json!({
                        "batch.kubernetes.io/controller-uid": uid, "batch.kubernetes.io/job-name": name,
                        "controller-uid": uid, "job-name": name,
                    });
                    spec.insert(
                        "selector".into(),
                        json!({"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}),
                    );
                    let tmpl = spec.entry("template").or_insert_with(|| json!({}));
                    let tmeta = tmpl
                        .as_object_mut()
                        .map(|t| t.entry("metadata").or_insert_with(|| json!({})));
                    if let Some(Value::Object(tm)) = tmeta {
                        let l = tm.entry("labels").or_insert_with(|| json!({}));
                        patch::merge(l, &labels);
                    }
                }
            }
            map.insert("status".into(), json!({}));
        }
        ("apiextensions.k8s.io", "customresourcedefinitions") => crd_status(map),
        _ => {}
    }
}

fn builtin_defaults_on_update(res: &ResourceInfo, obj: &mut Value) {
    if res.group == "apiextensions.k8s.io"
        && res.plural == "customresourcedefinitions"
        && let Some(map) = obj.as_object_mut()
    {
        crd_status(map);
    }
}

/// A CRD is established as soon as it is stored: the server serves it synchronously.
fn crd_status(map: &mut Map<String, Value>) {
    let names = map
        .get("spec")
        .and_then(|s| s.get("names"))
        .cloned()
        .unwrap_or(json!({}));
    let versions: Vec<Value> = map
        .get("spec")
        .and_then(|s| s.get("versions"))
        .and_then(Value::as_array)
        .map(|vs| vs.iter().filter_map(|v| v.get("name").cloned()).collect())
        .unwrap_or_default();
    // Keep the transition time of an already established CRD, so re-applying it is a no-op.
    let t = map
        .get("status")
        .and_then(|s| s.get("conditions"))
        .and_then(Value::as_array)
        .and_then(|c| c.first())
        .and_then(|c| c.get("lastTransitionTime"))
        .cloned()
        .unwrap_or_else(|| json!(now()));
    map.insert(
        "status".into(),
        json!({
            "acceptedNames": names,
            "storedVersions": versions,
            "conditions": [
                {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts", "message": "no conflicts found", "lastTransitionTime": t},
                {"type": "Established", "status": "True", "reason": "InitialNamesAccepted", "message": "the initial names have been accepted", "lastTransitionTime": t},
            ],
        }),
    );
}
