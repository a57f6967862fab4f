//! Validation of built-in kinds the way the real API server refuses bad objects (422), limited to
//! what an operator is likely to get wrong: label syntax, name lengths, pod templates (containers,
//! images, volume mounts, restart policies), selectors, and fields that are immutable after
//! creation (Job templates, Pod specs, PVC specs, immutable ConfigMaps/Secrets).

use std::collections::HashSet;

use serde_json::Value;

use super::resources::ResourceInfo;
use super::status::Cause;

fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && s.ends_with(|c: char| c.is_ascii_alphanumeric())
}

fn is_qualified_name_part(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && s.ends_with(|c: char| c.is_ascii_alphanumeric())
}

fn is_qualified_name(key: &str) -> bool {
    match key.split_once('/') {
        Some((prefix, name)) => {
            !prefix.is_empty()
                && prefix.len() <= 253
                && prefix.split('.').all(is_dns_label)
                && is_qualified_name_part(name)
        }
        None => is_qualified_name_part(key),
    }
}

fn label_value_ok(v: &str) -> bool {
    v.is_empty() || is_qualified_name_part(v)
}

fn shown(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    }
}

fn metadata(obj: &Value, causes: &mut Vec<Cause>) {
    if let Some(labels) = obj.pointer("/metadata/labels").and_then(Value::as_object) {
        for (k, v) in labels {
            let field = "metadata.labels";
            if !is_qualified_name(k) {
                causes.push(Cause::new(
                    "FieldValueInvalid",
                    field,
                    format!("Invalid value: {k:?}: name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (and be at most 63 characters)"),
                ));
            }
            match v.as_str() {
                Some(s) if label_value_ok(s) => {}
                _ => causes.push(Cause::new(
                    "FieldValueInvalid",
                    field,
                    format!("Invalid value: {}: a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (and be at most 63 characters)", shown(v)),
                )),
            }
        }
    }
    if let Some(annotations) = obj.pointer("/metadata/annotations").and_then(Value::as_object) {
        for (k, v) in annotations {
            if !is_qualified_name(k) {
                causes.push(Cause::new("FieldValueInvalid", "metadata.annotations", format!("Invalid value: {k:?}: name part must consist of alphanumeric characters, '-', '_' or '.'")));
            }
            if !v.is_string() {
                causes.push(Cause::new(
                    "FieldValueTypeInvalid",
                    &format!("metadata.annotations.{k}"),
                    "Invalid value: annotation values must be strings",
                ));
            }
        }
    }
}

fn pod_spec(spec: &Value, path: &str, allowed_restart: &[&str], causes: &mut Vec<Cause>) {
    let volumes: Vec<&str> = spec
        .get("volumes")
        .and_then(Value::as_array)
        .map(|vs| {
            vs.iter()
                .filter_map(|v| v.get("name").and_then(Value::as_str))
                .collect()
        })
        .unwrap_or_default();
    let mut seen = HashSet::new();
    for (i, name) in volumes.iter().enumerate() {
        if !is_dns_label(name) {
            causes.push(Cause::new("FieldValueInvalid", &format!("{path}.volumes[{i}].name"), format!("Invalid value: {name:?}: a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character")));
        }
        if !seen.insert(*name) {
            causes.push(Cause::new(
                "FieldValueDuplicate",
                &format!("{path}.volumes[{i}].name"),
                format!("Duplicate value: {name:?}"),
            ));
        }
    }
    let containers = spec.get("containers").and_then(Value::as_array);
    if containers.is_none_or(Vec::is_empty) {
        causes.push(Cause::new(
            "FieldValueRequired",
            &format!("{path}.containers"),
            "Required value",
        ));
    }
    let mut names = HashSet::new();
    let init = spec
        .get("initContainers")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let all: Vec<(String, &Value)> = init
        .iter()
        .enumerate()
        .map(|(i, c)| (format!("{path}.initContainers[{i}]"), c))
        .chain(
            containers
                .into_iter()
                .flatten()
                .enumerate()
                .map(|(i, c)| (format!("{path}.containers[{i}]"), c)),
        )
        .collect();
    for (cpath, c) in all {
        match c.get("name").and_then(Value::as_str) {
            None | Some("") => causes.push(Cause::new(
                "FieldValueRequired",
                &format!("{cpath}.name"),
                "Required value",
            )),
            Some(n) => {
                if !is_dns_label(n) {
                    causes.push(Cause::new("FieldValueInvalid", &format!("{cpath}.name"), format!("Invalid value: {n:?}: a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character")));
                }
                if !names.insert(n.to_string()) {
                    causes.push(Cause::new(
                        "FieldValueDuplicate",
                        &format!("{cpath}.name"),
                        format!("Duplicate value: {n:?}"),
                    ));
                }
            }
        }
        if c.get("image")
            .and_then(Value::as_str)
            .is_none_or(|i| i.trim().is_empty())
        {
            causes.push(Cause::new(
                "FieldValueRequired",
                &format!("{cpath}.image"),
                "Required value",
            ));
        }
        for (j, m) in c
            .get("volumeMounts")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let mname = m.get("name").and_then(Value::as_str).unwrap_or("");
            if !volumes.contains(&mname) {
                causes.push(Cause::new(
                    "FieldValueNotFound",
                    &format!("{cpath}.volumeMounts[{j}].name"),
                    format!("Not found: {mname:?}"),
                ));
            }
            if m.get("mountPath")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
            {
                causes.push(Cause::new(
                    "FieldValueRequired",
                    &format!("{cpath}.volumeMounts[{j}].mountPath"),
                    "Required value",
                ));
            }
        }
        for (j, e) in c
            .get("env")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            if e.get("name").and_then(Value::as_str).is_none_or(str::is_empty) {
                causes.push(Cause::new(
                    "FieldValueRequired",
                    &format!("{cpath}.env[{j}].name"),
                    "Required value",
                ));
            }
        }
    }
    let restart = spec
        .get("restartPolicy")
        .and_then(Value::as_str)
        .unwrap_or("Always");
    if !allowed_restart.contains(&restart) {
        let list: Vec<String> = allowed_restart.iter().map(|r| format!("{r:?}")).collect();
        causes.push(Cause::new(
            "FieldValueNotSupported",
            &format!("{path}.restartPolicy"),
            format!(
                "Unsupported value: {restart:?}: supported values: {}",
                list.join(", ")
            ),
        ));
    }
}

fn selector_matches(selector: Option<&Value>, labels: Option<&Value>) -> bool {
    let Some(ml) = selector
        .and_then(|s| s.get("matchLabels"))
        .and_then(Value::as_object)
    else {
        return true;
    };
    ml.iter().all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
}

fn immutable(old: &Value, new: &Value, pointer: &str, field: &str, causes: &mut Vec<Cause>) {
    if old.pointer(pointer) != new.pointer(pointer) {
        causes.push(Cause::new(
            "FieldValueInvalid",
            field,
            format!(
                "Invalid value: {}: field is immutable",
                new.pointer(pointer).map(shown).unwrap_or_else(|| "null".into())
            ),
        ));
    }
}

/// Pod spec fields a real API server lets an update change.
fn mutable_pod_spec_removed(spec: &Value, old_spec: &Value) -> Value {
    let mut s = spec.clone();
    if let Some(m) = s.as_object_mut() {
        m.remove("activeDeadlineSeconds");
        m.remove("tolerations");
        m.remove("schedulingGates");
        // Binding: setting nodeName once is how the scheduler assigns a pod.
        if old_spec
            .get("nodeName")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            m.remove("nodeName");
        }
        for list in ["containers", "initContainers"] {
            if let Some(cs) = m.get_mut(list).and_then(Value::as_array_mut) {
                for c in cs.iter_mut().filter_map(Value::as_object_mut) {
                    c.remove("image");
                }
            }
        }
    }
    s
}

/// Field errors of an object (with its previous state on updates): the metadata of every kind (a
/// real API server checks labels and annotations of custom resources too), the rest for built-in
/// kinds only.
pub(crate) fn validate(res: &ResourceInfo, obj: &Value, old: Option<&Value>) -> Vec<Cause> {
    let mut causes = Vec::new();
    metadata(obj, &mut causes);
    if res.custom {
        return causes;
    }
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    let null = Value::Null;
    let spec = obj.get("spec").unwrap_or(&null);
    match (res.group.as_str(), res.plural.as_str()) {
        ("", "namespaces") if !is_dns_label(name) => causes.push(Cause::new(
            "FieldValueInvalid",
            "metadata.name",
            format!("Invalid value: {name:?}: a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character"),
        )),
        ("", "pods") => {
            pod_spec(spec, "spec", &["Always", "OnFailure", "Never"], &mut causes);
            if let Some(old) = old {
                let old_spec = old.get("spec").unwrap_or(&null);
                if mutable_pod_spec_removed(spec, old_spec) != mutable_pod_spec_removed(old_spec, old_spec) {
                    causes.push(Cause::new(
                        "FieldValueForbidden",
                        "spec",
                        "Forbidden: pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)",
                    ));
                }
            }
        }
        ("batch", "jobs") => {
            if name.len() > 63 {
                causes.push(Cause::new("FieldValueInvalid", "metadata.name", format!("Invalid value: {name:?}: must be no more than 63 characters")));
            }
            let tspec = spec.pointer("/template/spec").unwrap_or(&null);
            pod_spec(tspec, "spec.template.spec", &["OnFailure", "Never"], &mut causes);
            for f in ["parallelism", "completions", "backoffLimit"] {
                if spec.get(f).and_then(Value::as_i64).is_some_and(|v| v < 0) {
                    causes.push(Cause::new("FieldValueInvalid", &format!("spec.{f}"), format!("Invalid value: {}: must be greater than or equal to 0", spec[f])));
                }
            }
            if spec.get("activeDeadlineSeconds").and_then(Value::as_i64).is_some_and(|v| v <= 0) {
                causes.push(Cause::new("FieldValueInvalid", "spec.activeDeadlineSeconds", format!("Invalid value: {}: must be greater than 0", spec["activeDeadlineSeconds"])));
            }
            if let Some(old) = old {
                immutable(old, obj, "/spec/template", "spec.template", &mut causes);
                immutable(old, obj, "/spec/selector", "spec.selector", &mut causes);
            }
        }
        ("batch", "cronjobs") => {
            let tspec = spec.pointer("/jobTemplate/spec/template/spec").unwrap_or(&null);
            pod_spec(tspec, "spec.jobTemplate.spec.template.spec", &["OnFailure", "Never"], &mut causes);
        }
        ("apps", "deployments" | "replicasets" | "statefulsets" | "daemonsets") => {
            let tspec = spec.pointer("/template/spec").unwrap_or(&null);
            pod_spec(tspec, "spec.template.spec", &["Always"], &mut causes);
            if spec.get("selector").is_none() {
                causes.push(Cause::new("FieldValueRequired", "spec.selector", "Required value"));
            } else if !selector_matches(spec.get("selector"), spec.pointer("/template/metadata/labels")) {
                causes.push(Cause::new("FieldValueInvalid", "spec.template.metadata.labels", "Invalid value: `selector` does not match template `labels`"));
            }
            if let Some(old) = old {
                immutable(old, obj, "/spec/selector", "spec.selector", &mut causes);
            }
        }
        ("", "persistentvolumeclaims") => {
            if spec.get("accessModes").and_then(Value::as_array).is_none_or(Vec::is_empty) {
                causes.push(Cause::new("FieldValueRequired", "spec.accessModes", "Required value: at least 1 access mode is required"));
            }
            if spec.pointer("/resources/requests/storage").is_none() && spec.get("dataSource").is_none() {
                causes.push(Cause::new("FieldValueRequired", "spec.resources[storage]", "Required value"));
            }
            if let Some(old) = old {
                let strip = |s: &Value, was_bound: bool| {
                    let mut s = s.clone();
                    if let Some(m) = s.as_object_mut() {
                        m.remove("resources");
                        if !was_bound {
                            m.remove("volumeName");
                        }
                    }
                    s
                };
                let old_spec = old.get("spec").unwrap_or(&null);
                let bound = old_spec.get("volumeName").and_then(Value::as_str).is_some_and(|v| !v.is_empty());
                if strip(spec, bound) != strip(old_spec, bound) {
                    causes.push(Cause::new("FieldValueForbidden", "spec", "Forbidden: spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims"));
                }
            }
        }
        ("", "configmaps" | "secrets") => {
            if let Some(old) = old
                && old.get("immutable").and_then(Value::as_bool) == Some(true)
            {
                for f in ["data", "binaryData", "stringData"] {
                    if old.get(f) != obj.get(f) {
                        causes.push(Cause::new("FieldValueForbidden", f, "Forbidden: field is immutable when `immutable` is set"));
                    }
                }
                if obj.get("immutable").and_then(Value::as_bool) != Some(true) {
                    causes.push(Cause::new("FieldValueForbidden", "immutable", "Forbidden: field is immutable when `immutable` is set"));
                }
            }
        }
        _ => {}
    }
    causes
}
