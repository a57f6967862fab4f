//! Patch semantics: JSON merge patch (RFC 7386), JSON patch (RFC 6902), strategic merge patch
//! (merge with list merge keys and `$` directives, enough for kubectl), and a simple server-side
//! apply that remembers what each field manager applied last.

use serde_json::{Map, Value};

use super::status::ApiError;

/// The patch flavours of the `Content-Type` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchKind {
    /// `application/merge-patch+json`.
    Merge,
    /// `application/json-patch+json`.
    Json,
    /// `application/strategic-merge-patch+json`.
    Strategic,
    /// `application/apply-patch+yaml` (server-side apply).
    Apply,
}

impl PatchKind {
    /// From a `Content-Type` value.
    pub fn from_content_type(ct: &str) -> Result<Self, ApiError> {
        let ct = ct.split(';').next().unwrap_or("").trim();
        match ct {
            "application/merge-patch+json" => Ok(Self::Merge),
            "application/json-patch+json" => Ok(Self::Json),
            "application/strategic-merge-patch+json" => Ok(Self::Strategic),
            "application/apply-patch+yaml" | "application/apply-patch+json" => Ok(Self::Apply),
            other => Err(ApiError::unsupported_media_type(format!(
                "the body of the request was in an unknown format - accepted media types include: \
                 application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml; got {other:?}"
            ))),
        }
    }
}

/// RFC 7386 merge.
pub fn merge(target: &mut Value, patch: &Value) {
    json_patch::merge(target, patch);
}

/// RFC 6902 patch.
pub fn json(target: &mut Value, patch_body: &[u8]) -> Result<(), ApiError> {
    let raw: Vec<Value> = serde_json::from_slice(patch_body)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON patch: {e}")))?;
    // Like the real server (evanphx/json-patch), `test` of `null` passes on a missing path;
    // kube-runtime's finalizer helper relies on it when adding the first finalizer.
    let raw: Vec<Value> = raw
        .into_iter()
        .filter(|op| {
            let is_null_test = op.get("op").and_then(Value::as_str) == Some("test")
                && op.get("value").is_some_and(Value::is_null);
            let path = op.get("path").and_then(Value::as_str).unwrap_or("");
            !(is_null_test && target.pointer(path).is_none_or(Value::is_null))
        })
        .collect();
    let ops: json_patch::Patch = serde_json::from_value(Value::Array(raw))
        .map_err(|e| ApiError::bad_request(format!("invalid JSON patch: {e}")))?;
    json_patch::patch(target, &ops).map_err(|e| ApiError::unprocessable_patch(e.to_string()))
}

fn merge_key(items: &[Value]) -> Option<&'static str> {
    ["name", "mountPath", "containerPort", "devicePath", "ip"]
        .into_iter()
        .find(|key| !items.is_empty() && items.iter().all(|i| i.get(*key).is_some()))
}

/// Strategic merge patch, approximated: maps merge, `null` deletes, lists of objects with a merge
/// key (`name`, `mountPath`, `containerPort`) merge by that key, other lists are replaced, and
/// the `$patch`/`$setElementOrder`/`$retainKeys`/`$deleteFromPrimitiveList` directives that
/// kubectl sends are honoured or dropped.
pub fn strategic(target: &mut Value, patch: &Value) {
    let Some(pm) = patch.as_object() else {
        *target = patch.clone();
        return;
    };
    match pm.get("$patch").and_then(Value::as_str) {
        Some("replace") => {
            let mut clean = pm.clone();
            clean.remove("$patch");
            *target = Value::Object(clean);
            return;
        }
        Some("delete") => {
            *target = Value::Null;
            return;
        }
        _ => {}
    }
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Some(tm) = target.as_object_mut() else { return };
    for (key, pv) in pm {
        if key.starts_with('$') {
            continue;
        }
        if pv.is_null() {
            tm.remove(key);
            continue;
        }
        match (tm.get_mut(key), pv) {
            (Some(tv @ Value::Object(_)), Value::Object(_)) => {
                strategic(tv, pv);
                if tv.is_null() {
                    tm.remove(key);
                }
            }
            (Some(Value::Array(tl)), Value::Array(pl)) => {
                if let Some(mk) = merge_key(pl) {
                    for item in pl {
                        let id = item.get(mk).cloned();
                        let pos = tl.iter().position(|t| t.get(mk) == id.as_ref());
                        let delete = item.get("$patch").and_then(Value::as_str) == Some("delete");
                        match (pos, delete) {
                            (Some(i), true) => {
                                tl.remove(i);
                            }
                            (Some(i), false) => strategic(&mut tl[i], item),
                            (None, true) => {}
                            (None, false) => {
                                let mut fresh = Value::Null;
                                strategic(&mut fresh, item);
                                tl.push(fresh);
                            }
                        }
                    }
                } else {
                    *tl = pl.clone();
                }
            }
            _ => {
                let mut fresh = Value::Null;
                if pv.is_object() {
                    strategic(&mut fresh, pv);
                } else {
                    fresh = pv.clone();
                }
                tm.insert(key.clone(), fresh);
            }
        }
    }
}

/// Server-side apply, simplified: fields the manager applied last time but no longer applies are
/// removed, then the applied configuration is merged in (maps recursively, keyed lists by merge
/// key, other lists replaced). Field ownership conflicts between managers are not detected.
pub fn apply(existing: &Value, previous: Option<&Value>, applied: &Value) -> Value {
    let mut out = existing.clone();
    if let Some(prev) = previous {
        remove_dropped(&mut out, prev, applied);
    }
    apply_merge(&mut out, applied);
    out
}

/// Remove from `target` the fields present in `prev` but absent from `now`.
fn remove_dropped(target: &mut Value, prev: &Value, now: &Value) {
    let (Some(tm), Some(pm)) = (target.as_object_mut(), prev.as_object()) else {
        return;
    };
    for (key, pv) in pm {
        match now.get(key) {
            None => {
                tm.remove(key);
            }
            Some(nv) => {
                if let Some(tv) = tm.get_mut(key) {
                    if pv.is_object() && nv.is_object() {
                        remove_dropped(tv, pv, nv);
                    } else if let (Some(pl), Some(nl), Some(tl)) =
                        (pv.as_array(), nv.as_array(), tv.as_array_mut())
                        && let Some(mk) = merge_key(pl)
                    {
                        // Keyed list items this manager stopped applying are removed.
                        let gone: Vec<&Value> = pl
                            .iter()
                            .filter_map(|p| p.get(mk))
                            .filter(|id| !nl.iter().any(|n| n.get(mk) == Some(*id)))
                            .collect();
                        tl.retain(|t| !t.get(mk).is_some_and(|id| gone.contains(&id)));
                    }
                }
            }
        }
    }
}

fn apply_merge(target: &mut Value, applied: &Value) {
    match (target, applied) {
        (Value::Object(tm), Value::Object(am)) => {
            for (key, av) in am {
                if av.is_null() {
                    tm.remove(key);
                    continue;
                }
                match tm.get_mut(key) {
                    Some(tv) => apply_merge(tv, av),
                    None => {
                        tm.insert(key.clone(), av.clone());
                    }
                }
            }
        }
        (Value::Array(tl), Value::Array(al)) => {
            if let Some(mk) = merge_key(al)
                && tl.iter().all(|t| t.get(mk).is_some())
            {
                let mut out = Vec::new();
                for item in al {
                    let id = item.get(mk);
                    match tl.iter().find(|t| t.get(mk) == id) {
                        Some(existing) => {
                            let mut merged = existing.clone();
                            apply_merge(&mut merged, item);
                            out.push(merged);
                        }
                        None => out.push(item.clone()),
                    }
                }
                // Items applied by other managers stay, after ours.
                for t in tl.iter() {
                    if !al.iter().any(|a| a.get(mk) == t.get(mk)) {
                        out.push(t.clone());
                    }
                }
                *tl = out;
            } else {
                *tl = al.clone();
            }
        }
        (t, a) => *t = a.clone(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn strategic_merge_merges_containers_by_name_and_drops_directives() {
        let mut target =
            json!({"spec": {"containers": [{"name": "a", "image": "x"}, {"name": "b", "image": "y"}]}});
        let patch = json!({"spec": {"$setElementOrder/containers": [{"name": "a"}], "containers": [{"name": "a", "image": "z"}, {"name": "b", "$patch": "delete"}]}});
        strategic(&mut target, &patch);
        assert_eq!(
            target,
            json!({"spec": {"containers": [{"name": "a", "image": "z"}]}})
        );
    }

    #[test]
    fn apply_removes_fields_the_manager_stopped_applying() {
        let existing = json!({"data": {"a": "1", "b": "2", "other": "x"}});
        let prev = json!({"data": {"a": "1", "b": "2"}});
        let now = json!({"data": {"a": "3"}});
        assert_eq!(
            apply(&existing, Some(&prev), &now),
            json!({"data": {"a": "3", "other": "x"}})
        );
    }
}
