//! Checks of spec values that the CRD schema cannot state or that not every API server enforces: NUL
//! bytes and over-long strings, Secret and PodConfig names, Secret keys, resource quantities, label
//! selectors, the restore time filter, and volume mounts of volumes the spec does not declare.
//!
//! Without them such a spec fails later and less clearly: a real API server refuses the Job (with an error
//! the operator can only retry), the plan policy refuses the plan (also retried), or, worst, the action
//! runs and does nothing (a selector that can never match "succeeds" with nothing backed up). Each problem
//! names the field as a JSON path and says what to change; values are shown only when they are names,
//! keys or selector parts (never a string that could carry a credential).

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use crate::plugin::check::MAX_STRING;
use crate::plugin::check::syntax::{is_config_key, is_dns_subdomain, is_label_value, is_qualified_name};

/// At most this many problems are listed; the rest are counted.
const MAX_PROBLEMS: usize = 10;
/// Names and keys longer than this are shown cut.
const SHOWN: usize = 64;
/// The shape of a snapshot time: `restoreTimeFilter` is matched as a prefix of it (`#` is a digit).
const TIME_SHAPE: &str = "####-##-## ##:##:##";

/// The problems of an action spec (as JSON, the root being `spec`), each phrased as what to change.
pub fn spec(spec: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    walk(spec, "spec", &mut problems);
    if let Value::Object(map) = spec {
        structured(map, &mut problems);
    }
    if problems.len() > MAX_PROBLEMS {
        let more = problems.len() - MAX_PROBLEMS;
        problems.truncate(MAX_PROBLEMS);
        problems.push(format!("and {more} more problems"));
    }
    problems
}

/// `s`, quoted, cut to [`SHOWN`] characters.
fn shown(s: &str) -> String {
    if s.chars().count() <= SHOWN {
        format!("{s:?}")
    } else {
        let cut: String = s.chars().take(SHOWN).collect();
        format!("{cut:?}… ({} bytes)", s.len())
    }
}

/// Every string and object key: no NUL byte, at most [`MAX_STRING`] bytes; Secret references anywhere.
fn walk(value: &Value, path: &str, problems: &mut Vec<String>) {
    match value {
        Value::String(s) => string(s, path, problems),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                walk(item, &format!("{path}[{i}]"), problems);
            }
        }
        Value::Object(map) => {
            for (key, item) in map {
                let at = format!("{path}.{key}");
                string(key, &format!("a key of {path}"), problems);
                if let Value::Object(reference) = item {
                    if key.ends_with("SecretRef") || key.ends_with("SecretReg") {
                        secret_key_ref(reference, &at, problems);
                    } else if key == "secretRef" {
                        object_name(reference, &at, "Secret", problems);
                    }
                }
                walk(item, &at, problems);
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

fn string(s: &str, path: &str, problems: &mut Vec<String>) {
    if s.contains('\0') {
        problems.push(format!(
            "{path} contains a NUL byte, which no process can receive as an argument or variable; remove it"
        ));
    }
    if s.len() > MAX_STRING {
        problems.push(format!(
            "{path} is {} bytes long; k8up passes it to its Jobs, which take at most {MAX_STRING} bytes per value",
            s.len()
        ));
    }
}

/// A `SecretKeySelector`: a Secret name and a key.
fn secret_key_ref(reference: &Map<String, Value>, path: &str, problems: &mut Vec<String>) {
    object_name(reference, path, "Secret", problems);
    match reference.get("key").and_then(Value::as_str) {
        // A missing key is the schema's to refuse.
        None => {}
        Some("") => problems.push(format!(
            "{path}.key is empty; name the key of the Secret that holds the value"
        )),
        Some(key) if !is_config_key(key) => problems.push(format!(
            "{path}.key {} is not a valid Secret key (letters, digits, '-', '_' and '.', at most 253 characters)",
            shown(key)
        )),
        Some(_) => {}
    }
}

/// The `name` of a reference to an object of `kind`: a DNS-1123 subdomain.
fn object_name(reference: &Map<String, Value>, path: &str, kind: &str, problems: &mut Vec<String>) {
    match reference.get("name").and_then(Value::as_str) {
        None => {}
        Some("") => problems.push(format!("{path}.name is empty; name the {kind}")),
        Some(name) if !is_dns_subdomain(name) => problems.push(format!(
            "{path}.name {} is not a valid {kind} name (lowercase letters, digits, '-' and '.', at most 253 characters)",
            shown(name)
        )),
        Some(_) => {}
    }
}

/// The checks of particular fields.
fn structured(spec: &Map<String, Value>, problems: &mut Vec<String>) {
    if let Some(Value::Object(reference)) = spec.get("podConfigRef") {
        object_name(reference, "spec.podConfigRef", "PodConfig", problems);
    }
    if let Some(Value::Object(resources)) = spec.get("resources") {
        quantities(resources, problems);
    }
    if let Some(Value::Array(selectors)) = spec.get("labelSelectors") {
        for (i, selector) in selectors.iter().enumerate() {
            if let Value::Object(selector) = selector {
                label_selector(selector, &format!("spec.labelSelectors[{i}]"), problems);
            }
        }
    }
    if let Some(Value::String(filter)) = spec.get("restoreTimeFilter") {
        time_filter(filter, problems);
    }
    volume_mounts(spec, problems);
}

/// `resources.limits` and `resources.requests`: non-negative Kubernetes quantities.
fn quantities(resources: &Map<String, Value>, problems: &mut Vec<String>) {
    for part in ["limits", "requests"] {
        let Some(Value::Object(values)) = resources.get(part) else {
            continue;
        };
        for (name, value) in values {
            let path = format!("spec.resources.{part}.{name}");
            let problem = match value {
                Value::String(s) => crate::operator::settings::quantity(s).err(),
                Value::Number(n) if n.as_f64().is_some_and(|v| v < 0.0) => Some(format!("{n} is negative")),
                _ => None,
            };
            if let Some(problem) = problem {
                problems.push(format!(
                    "{path}: {problem}; a quantity is a non-negative number with an optional suffix such as 500m, 128Mi or 2Gi"
                ));
            }
        }
    }
}

/// A label selector: keys and values no object could carry, unknown operators and operators without the
/// values they need would match nothing, and the action would silently find nothing to work on.
fn label_selector(selector: &Map<String, Value>, path: &str, problems: &mut Vec<String>) {
    if let Some(Value::Object(labels)) = selector.get("matchLabels") {
        for (key, value) in labels {
            label_key(key, &format!("{path}.matchLabels"), problems);
            if let Some(value) = value.as_str()
                && !is_label_value(value)
            {
                problems.push(format!(
                    "{path}.matchLabels.{key}: {} is not a label value any object can carry (at most 63 letters, digits, '-', '_' and '.', starting and ending with a letter or digit)",
                    shown(value)
                ));
            }
        }
    }
    let Some(Value::Array(expressions)) = selector.get("matchExpressions") else {
        return;
    };
    for (i, expression) in expressions.iter().enumerate() {
        let at = format!("{path}.matchExpressions[{i}]");
        if let Some(key) = expression.get("key").and_then(Value::as_str) {
            label_key(key, &at, problems);
        }
        let values: Vec<&str> = expression
            .get("values")
            .and_then(Value::as_array)
            .map(|v| v.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        match expression.get("operator").and_then(Value::as_str) {
            // A missing operator is the schema's to refuse.
            None => {}
            Some("In" | "NotIn") if values.is_empty() => problems.push(format!(
                "{at}: the operator {} needs at least one value in values",
                shown(expression["operator"].as_str().unwrap_or_default())
            )),
            Some("Exists" | "DoesNotExist") if !values.is_empty() => problems.push(format!(
                "{at}: the operator {} takes no values; remove values",
                shown(expression["operator"].as_str().unwrap_or_default())
            )),
            Some("In" | "NotIn" | "Exists" | "DoesNotExist") => {}
            Some(other) => problems.push(format!(
                "{at}.operator {} is not a selector operator; use In, NotIn, Exists or DoesNotExist",
                shown(other)
            )),
        }
        for value in values {
            if !is_label_value(value) {
                problems.push(format!(
                    "{at}.values: {} is not a label value any object can carry",
                    shown(value)
                ));
            }
        }
    }
}

fn label_key(key: &str, path: &str, problems: &mut Vec<String>) {
    if !is_qualified_name(key) {
        problems.push(format!(
            "{path}: {} is not a label key (an optional DNS prefix and '/', then at most 63 letters, digits, '-', '_' and '.')",
            shown(key)
        ));
    }
}

/// `restoreTimeFilter` is matched as a prefix of the snapshot time `YYYY-MM-DD hh:mm:ss…` (in the
/// snapshot's zone); a filter of another shape never matches, and the restore would take the latest
/// snapshot instead.
fn time_filter(filter: &str, problems: &mut Vec<String>) {
    let fits = filter.chars().zip(TIME_SHAPE.chars()).all(|(c, shape)| {
        if shape == '#' {
            c.is_ascii_digit()
        } else {
            c == shape
        }
    });
    if !fits {
        problems.push(format!(
            "spec.restoreTimeFilter {} can never match a snapshot time; write a prefix of YYYY-MM-DD hh:mm:ss, e.g. \"2026-12-01\" or \"2026-12-01 23:\"",
            shown(filter)
        ));
    }
}

/// `backend.volumeMounts` may mount only volumes of `spec.volumes`.
fn volume_mounts(spec: &Map<String, Value>, problems: &mut Vec<String>) {
    let Some(Value::Array(mounts)) = spec.get("backend").and_then(|b| b.get("volumeMounts")) else {
        return;
    };
    let declared: BTreeSet<&str> = spec
        .get("volumes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|v| v.get("name")?.as_str())
        .collect();
    for (i, mount) in mounts.iter().enumerate() {
        if let Some(name) = mount.get("name").and_then(Value::as_str)
            && !declared.contains(name)
        {
            problems.push(format!(
                "spec.backend.volumeMounts[{i}] mounts the volume {}, which spec.volumes does not declare; declare it there or remove the mount",
                shown(name)
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn one(spec: Value, expected: &str) {
        let problems = super::spec(&spec);
        assert!(
            problems.iter().any(|p| p.contains(expected)),
            "expected a problem containing {expected:?} for {spec}, got {problems:?}"
        );
    }

    #[test]
    fn a_well_formed_spec_has_no_problems() {
        let spec = json!({
            "backend": {
                "repoPasswordSecretRef": { "name": "backup-repo", "key": "password" },
                "s3": { "endpoint": "http://s3:9000", "bucket": "b",
                        "accessKeyIDSecretRef": { "name": "s3.creds", "key": "AWS_ACCESS_KEY_ID" } },
                "envFrom": [{ "secretRef": { "name": "swift" } }],
                "volumeMounts": [{ "name": "certs", "mountPath": "/certs" }],
            },
            "volumes": [{ "name": "certs", "secret": { "secretName": "certs" } }],
            "podConfigRef": { "name": "small" },
            "resources": { "limits": { "memory": "128Mi", "cpu": "500m" }, "requests": { "cpu": 1 } },
            "labelSelectors": [
                { "matchLabels": { "app.kubernetes.io/name": "db", "tier": "" } },
                { "matchExpressions": [
                    { "key": "app", "operator": "In", "values": ["a", "b"] },
                    { "key": "skip", "operator": "DoesNotExist" },
                ] },
            ],
            "restoreTimeFilter": "2026-12-01 23:",
            "tags": ["daily", "ünïcode is fine"],
        });
        assert_eq!(super::spec(&spec), Vec::<String>::new());
    }

    #[test]
    fn nul_bytes_and_long_strings_are_named_by_path_without_their_value() {
        let spec = json!({ "tags": ["ok", "a\u{0}secret"], "clusterName": "c".repeat(MAX_STRING + 1) });
        let problems = super::spec(&spec);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(
            problems
                .iter()
                .any(|p| p.starts_with("spec.clusterName is 4097 bytes long"))
        );
        assert!(
            problems
                .iter()
                .any(|p| p.starts_with("spec.tags[1] contains a NUL byte"))
        );
        assert!(problems.iter().all(|p| !p.contains("secret")), "{problems:?}");
    }

    #[test]
    fn secret_references_need_a_valid_name_and_key() {
        let refs = |r: Value| json!({ "backend": { "repoPasswordSecretRef": r } });
        one(
            refs(json!({ "name": "", "key": "p" })),
            "repoPasswordSecretRef.name is empty",
        );
        one(
            refs(json!({ "name": "Backup_Repo!", "key": "p" })),
            "is not a valid Secret name",
        );
        one(
            refs(json!({ "name": "repo", "key": "" })),
            "repoPasswordSecretRef.key is empty",
        );
        one(
            refs(json!({ "name": "repo", "key": "pass word" })),
            "is not a valid Secret key",
        );
        one(
            json!({ "backend": { "rest": { "passwordSecretReg": { "name": "x_y", "key": "k" } } } }),
            "spec.backend.rest.passwordSecretReg.name \"x_y\"",
        );
        one(
            json!({ "backend": { "envFrom": [{ "secretRef": { "name": "" } }] } }),
            "spec.backend.envFrom[0].secretRef.name is empty",
        );
    }

    #[test]
    fn quantities_selectors_time_filters_and_mounts_are_checked() {
        one(
            json!({ "resources": { "limits": { "memory": "lots" } } }),
            "spec.resources.limits.memory",
        );
        one(
            json!({ "resources": { "requests": { "cpu": "-1" } } }),
            "spec.resources.requests.cpu",
        );
        one(
            json!({ "resources": { "requests": { "cpu": -1 } } }),
            "-1 is negative",
        );
        let expression = |e: Value| json!({ "labelSelectors": [{ "matchExpressions": [e] }] });
        one(
            expression(json!({ "key": "app", "operator": "Maybe", "values": ["x"] })),
            "not a selector operator",
        );
        one(
            expression(json!({ "key": "app", "operator": "In", "values": [] })),
            "needs at least one value",
        );
        one(
            expression(json!({ "key": "app", "operator": "Exists", "values": ["x"] })),
            "takes no values",
        );
        one(
            expression(json!({ "key": "bad key", "operator": "Exists" })),
            "is not a label key",
        );
        one(
            json!({ "labelSelectors": [{}, { "matchLabels": { "app": "🚀 rocket" } }] }),
            "spec.labelSelectors[1].matchLabels.app",
        );
        one(
            json!({ "restoreTimeFilter": "last tuesday" }),
            "can never match a snapshot time",
        );
        one(json!({ "restoreTimeFilter": "2026/12" }), "can never match");
        assert!(super::spec(&json!({ "restoreTimeFilter": "2026-12-01 23:59:59.5 +0000" })).is_empty());
        one(
            json!({ "backend": { "volumeMounts": [{ "name": "ghost", "mountPath": "/g" }] } }),
            "mounts the volume \"ghost\", which spec.volumes does not declare",
        );
        one(
            json!({ "podConfigRef": { "name": "n".repeat(300) } }),
            "is not a valid PodConfig name",
        );
    }

    #[test]
    fn many_problems_are_listed_up_to_a_limit_and_counted() {
        let tags: Vec<String> = (0..25).map(|i| format!("t{i}\u{0}")).collect();
        let problems = super::spec(&json!({ "tags": tags }));
        assert_eq!(problems.len(), MAX_PROBLEMS + 1);
        assert_eq!(problems[MAX_PROBLEMS], "and 15 more problems");
    }
}
