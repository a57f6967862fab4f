//! Validation of custom resources against their CRD's structural OpenAPI v3 schema: defaults are
//! applied, unknown fields pruned, then types, `required`, `enum`, bounds, lengths and patterns
//! are checked. CEL rules (`x-kubernetes-validations`) are not evaluated.

use serde_json::{Map, Value};

use super::status::Cause;

/// Default, prune and validate `obj` in place: the field errors (empty = valid) and the paths of
/// the unknown fields that were pruned.
pub fn validate(schema: &Value, obj: &mut Value) -> (Vec<Cause>, Vec<String>) {
    apply_defaults(schema, obj, true);
    let mut pruned = Vec::new();
    prune(schema, obj, true, "", &mut pruned);
    let mut causes = Vec::new();
    check(schema, obj, "", true, &mut causes);
    (causes, pruned)
}

fn props(schema: &Value) -> Option<&Map<String, Value>> {
    schema.get("properties").and_then(Value::as_object)
}

fn preserves(schema: &Value) -> bool {
    schema
        .get("x-kubernetes-preserve-unknown-fields")
        .and_then(Value::as_bool)
        == Some(true)
}

fn embedded(schema: &Value) -> bool {
    schema
        .get("x-kubernetes-embedded-resource")
        .and_then(Value::as_bool)
        == Some(true)
}

fn apply_defaults(schema: &Value, obj: &mut Value, root: bool) {
    match obj {
        Value::Object(map) => {
            if let Some(p) = props(schema) {
                for (key, sub) in p {
                    if root && key == "metadata" {
                        continue;
                    }
                    if !map.contains_key(key)
                        && let Some(d) = sub.get("default")
                    {
                        map.insert(key.clone(), d.clone());
                    }
                    if let Some(v) = map.get_mut(key) {
                        apply_defaults(sub, v, false);
                    }
                }
            }
            if let Some(ap) = schema.get("additionalProperties").filter(|a| a.is_object()) {
                for v in map.values_mut() {
                    apply_defaults(ap, v, false);
                }
            }
        }
        Value::Array(items) => {
            if let Some(is) = schema.get("items") {
                for v in items {
                    apply_defaults(is, v, false);
                }
            }
        }
        _ => {}
    }
}

fn prune(schema: &Value, obj: &mut Value, root: bool, path: &str, pruned: &mut Vec<String>) {
    match obj {
        Value::Object(map) => {
            let keep_unknown = preserves(schema);
            let additional = schema.get("additionalProperties");
            let p = props(schema);
            map.retain(|key, _| {
                let keep = keep_unknown
                    || ((root || embedded(schema))
                        && matches!(key.as_str(), "apiVersion" | "kind" | "metadata"))
                    || p.is_some_and(|p| p.contains_key(key))
                    || additional.is_some_and(|a| a.is_object() || a.as_bool() == Some(true));
                if !keep {
                    pruned.push(join(path, key));
                }
                keep
            });
            for (key, v) in map.iter_mut() {
                if root && key == "metadata" {
                    continue;
                }
                if let Some(sub) = p.and_then(|p| p.get(key)) {
                    prune(sub, v, false, &join(path, key), pruned);
                } else if let Some(ap) = additional.filter(|a| a.is_object()) {
                    prune(ap, v, false, &join(path, key), pruned);
                }
            }
        }
        Value::Array(items) => {
            if let Some(is) = schema.get("items") {
                for (i, v) in items.iter_mut().enumerate() {
                    prune(is, v, false, &format!("{path}[{i}]"), pruned);
                }
            }
        }
        _ => {}
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn shown(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    }
}

fn check(schema: &Value, v: &Value, path: &str, root: bool, causes: &mut Vec<Cause>) {
    if v.is_null() {
        if schema.get("nullable").and_then(Value::as_bool) != Some(true) && schema.get("type").is_some() {
            causes.push(Cause::new(
                "FieldValueTypeInvalid",
                path,
                format!(
                    "Invalid value: \"null\": {path} in body must be of type {}: \"null\"",
                    schema["type"].as_str().unwrap_or("object")
                ),
            ));
        }
        return;
    }
    let int_or_string = schema.get("x-kubernetes-int-or-string").and_then(Value::as_bool) == Some(true);
    if let Some(t) = schema.get("type").and_then(Value::as_str) {
        let actual = type_name(v);
        let ok = actual == t || (t == "number" && actual == "integer");
        if !ok && !(int_or_string && (actual == "integer" || actual == "string")) {
            causes.push(Cause::new(
                "FieldValueTypeInvalid",
                path,
                format!("Invalid value: \"{actual}\": {path} in body must be of type {t}: \"{actual}\""),
            ));
            return;
        }
    } else if int_or_string && !matches!(type_name(v), "integer" | "string") {
        // As the API server reads `x-kubernetes-int-or-string` without a `type`: integer or string.
        let actual = type_name(v);
        causes.push(Cause::new(
            "FieldValueTypeInvalid",
            path,
            format!(
                "Invalid value: \"{actual}\": {path} in body must be of type integer,string: \"{actual}\""
            ),
        ));
        return;
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
        && !allowed.contains(v)
    {
        let list: Vec<String> = allowed.iter().map(shown).collect();
        causes.push(Cause::new(
            "FieldValueNotSupported",
            path,
            format!(
                "Unsupported value: {}: supported values: {}",
                shown(v),
                list.join(", ")
            ),
        ));
    }
    if let Some(n) = v.as_f64() {
        if let Some(min) = schema.get("minimum").and_then(Value::as_f64) {
            let excl = schema.get("exclusiveMinimum").and_then(Value::as_bool) == Some(true);
            if n < min || (excl && n == min) {
                let word = if excl {
                    "greater than"
                } else {
                    "greater than or equal to"
                };
                causes.push(Cause::new(
                    "FieldValueInvalid",
                    path,
                    format!(
                        "Invalid value: {v}: {path} in body should be {word} {}",
                        schema["minimum"]
                    ),
                ));
            }
        }
        if let Some(max) = schema.get("maximum").and_then(Value::as_f64) {
            let excl = schema.get("exclusiveMaximum").and_then(Value::as_bool) == Some(true);
            if n > max || (excl && n == max) {
                let word = if excl {
                    "less than"
                } else {
                    "less than or equal to"
                };
                causes.push(Cause::new(
                    "FieldValueInvalid",
                    path,
                    format!(
                        "Invalid value: {v}: {path} in body should be {word} {}",
                        schema["maximum"]
                    ),
                ));
            }
        }
    }
    if let Some(s) = v.as_str() {
        let len = s.chars().count() as u64;
        if let Some(min) = schema.get("minLength").and_then(Value::as_u64)
            && len < min
        {
            causes.push(Cause::new(
                "FieldValueInvalid",
                path,
                format!("Invalid value: {s:?}: {path} in body should be at least {min} chars long"),
            ));
        }
        if let Some(max) = schema.get("maxLength").and_then(Value::as_u64)
            && len > max
        {
            causes.push(Cause::new(
                "FieldValueTooLong",
                path,
                format!("Too long: may not be more than {max} bytes"),
            ));
        }
        if let Some(p) = schema.get("pattern").and_then(Value::as_str)
            && let Ok(re) = regex::Regex::new(p)
            && !re.is_match(s)
        {
            causes.push(Cause::new(
                "FieldValueInvalid",
                path,
                format!("Invalid value: {s:?}: {path} in body should match '{p}'"),
            ));
        }
    }
    match v {
        Value::Object(map) => {
            if let Some(req) = schema.get("required").and_then(Value::as_array) {
                for r in req.iter().filter_map(Value::as_str) {
                    if !map.contains_key(r) {
                        causes.push(Cause::new("FieldValueRequired", &join(path, r), "Required value"));
                    }
                }
            }
            let p = props(schema);
            for (key, sub) in map {
                if root && key == "metadata" {
                    continue;
                }
                if let Some(s) = p.and_then(|p| p.get(key)) {
                    check(s, sub, &join(path, key), false, causes);
                } else if let Some(ap) = schema.get("additionalProperties").filter(|a| a.is_object()) {
                    check(ap, sub, &join(path, key), false, causes);
                }
            }
            if let Some(max) = schema.get("maxProperties").and_then(Value::as_u64)
                && map.len() as u64 > max
            {
                causes.push(Cause::new(
                    "FieldValueTooMany",
                    path,
                    format!("Too many: {}: must have at most {max} items", map.len()),
                ));
            }
        }
        Value::Array(items) => {
            if let Some(min) = schema.get("minItems").and_then(Value::as_u64)
                && (items.len() as u64) < min
            {
                causes.push(Cause::new(
                    "FieldValueInvalid",
                    path,
                    format!(
                        "Invalid value: {}: {path} in body should have at least {min} items",
                        items.len()
                    ),
                ));
            }
            if let Some(max) = schema.get("maxItems").and_then(Value::as_u64)
                && items.len() as u64 > max
            {
                causes.push(Cause::new(
                    "FieldValueTooMany",
                    path,
                    format!("Too many: {}: must have at most {max} items", items.len()),
                ));
            }
            if let Some(is) = schema.get("items") {
                for (i, item) in items.iter().enumerate() {
                    check(is, item, &format!("{path}[{i}]"), false, causes);
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn schema() -> Value {
        json!({"type": "object", "properties": {
            "spec": {"type": "object", "required": ["size"], "properties": {
                "size": {"type": "integer", "minimum": 1, "maximum": 10},
                "mode": {"type": "string", "enum": ["a", "b"], "default": "a"},
                "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
            }},
        }})
    }

    #[test]
    fn defaults_are_applied_and_unknown_fields_pruned() {
        let mut obj = json!({"apiVersion": "x/v1", "kind": "K", "metadata": {"name": "n", "x": 1},
            "spec": {"size": 2, "bogus": true, "free": {"any": 1}}, "junk": 1});
        let (causes, pruned) = validate(&schema(), &mut obj);
        assert!(causes.is_empty());
        assert_eq!(pruned, vec!["junk", "spec.bogus"]);
        assert_eq!(
            obj,
            json!({"apiVersion": "x/v1", "kind": "K", "metadata": {"name": "n", "x": 1},
            "spec": {"size": 2, "mode": "a", "free": {"any": 1}}})
        );
    }

    #[test]
    fn an_untyped_int_or_string_takes_an_integer_or_a_string_only() {
        let schema = json!({"type": "object", "properties": {"spec": {"type": "object",
            "additionalProperties": {"x-kubernetes-int-or-string": true}}}});
        for ok in [json!(2), json!("500m")] {
            let (causes, _) = validate(&schema, &mut json!({"spec": {"cpu": ok}}));
            assert!(causes.is_empty(), "{causes:?}");
        }
        for bad in [json!({"cores": 2}), json!(1.5), json!([1]), json!(true)] {
            let (causes, _) = validate(&schema, &mut json!({"spec": {"cpu": bad}}));
            assert_eq!(causes.len(), 1, "{bad}: {causes:?}");
            assert!(
                causes[0]
                    .message
                    .contains("spec.cpu in body must be of type integer,string"),
                "{causes:?}"
            );
        }
    }

    #[test]
    fn every_violation_is_reported_with_its_field() {
        let mut obj = json!({"spec": {"mode": "c", "free": {}}});
        let fields: Vec<String> = validate(&schema(), &mut obj)
            .0
            .into_iter()
            .map(|c| c.field)
            .collect();
        assert_eq!(fields, vec!["spec.size", "spec.mode"]);
        let mut obj = json!({"spec": {"size": "big"}});
        let (causes, _) = validate(&schema(), &mut obj);
        assert_eq!(causes[0].reason, "FieldValueTypeInvalid");
        let mut obj = json!({"spec": {"size": 11}});
        assert!(
            validate(&schema(), &mut obj).0[0]
                .message
                .contains("less than or equal to 10")
        );
    }
}
