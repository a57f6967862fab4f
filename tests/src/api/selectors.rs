//! Label selectors (equality- and set-based) and field selectors, parsed from query strings.

use std::collections::BTreeMap;

use serde_json::Value;

use super::status::ApiError;

/// One requirement of a label selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LabelReq {
    /// `key` (exists).
    Exists(String),
    /// `!key`.
    NotExists(String),
    /// `key=v`, `key==v`, `key in (a,b)`.
    In(String, Vec<String>),
    /// `key!=v`, `key notin (a,b)` (also matches when the key is absent).
    NotIn(String, Vec<String>),
}

/// A parsed label selector (all requirements must hold).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelSelector(pub Vec<LabelReq>);

impl LabelSelector {
    /// Parse `a=b,c in (d,e),!f`.
    pub fn parse(s: &str) -> Result<Self, ApiError> {
        let mut reqs = Vec::new();
        for term in split_top_level(s) {
            let term = term.trim();
            if term.is_empty() {
                continue;
            }
            reqs.push(parse_term(term)?);
        }
        Ok(Self(reqs))
    }

    /// Whether the labels satisfy every requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.0.iter().all(|r| match r {
            LabelReq::Exists(k) => labels.contains_key(k),
            LabelReq::NotExists(k) => !labels.contains_key(k),
            LabelReq::In(k, vs) => labels.get(k).is_some_and(|v| vs.contains(v)),
            LabelReq::NotIn(k, vs) => labels.get(k).is_none_or(|v| !vs.contains(v)),
        })
    }

    /// Whether an object's `metadata.labels` satisfy the selector.
    pub fn matches_object(&self, obj: &Value) -> bool {
        self.0.is_empty() || self.matches(&labels_of(obj))
    }
}

/// The labels of an object.
pub fn labels_of(obj: &Value) -> BTreeMap<String, String> {
    obj.pointer("/metadata/labels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// Split on commas that are not inside parentheses.
fn split_top_level(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut cur = String::new();
    for c in s.chars() {
        match c {
            '(' => {
                depth += 1;
                cur.push(c);
            }
            ')' => {
                depth -= 1;
                cur.push(c);
            }
            ',' if depth == 0 => out.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    out.push(cur);
    out
}

fn parse_set(rest: &str, term: &str) -> Result<Vec<String>, ApiError> {
    let rest = rest.trim();
    let inner = rest
        .strip_prefix('(')
        .and_then(|r| r.strip_suffix(')'))
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "unable to parse requirement: {term}: expected a set in parentheses"
            ))
        })?;
    Ok(inner
        .split(',')
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .collect())
}

fn parse_term(term: &str) -> Result<LabelReq, ApiError> {
    if let Some(k) = term.strip_prefix('!') {
        return Ok(LabelReq::NotExists(k.trim().to_string()));
    }
    let words: Vec<&str> = term.splitn(2, char::is_whitespace).collect();
    if words.len() == 2 {
        let key = words[0].to_string();
        let rest = words[1].trim_start();
        if let Some(set) = rest.strip_prefix("notin") {
            return Ok(LabelReq::NotIn(key, parse_set(set, term)?));
        }
        if let Some(set) = rest.strip_prefix("in") {
            return Ok(LabelReq::In(key, parse_set(set, term)?));
        }
    }
    if let Some((k, v)) = term.split_once("!=") {
        return Ok(LabelReq::NotIn(k.trim().to_string(), vec![v.trim().to_string()]));
    }
    if let Some((k, v)) = term.split_once("==") {
        return Ok(LabelReq::In(k.trim().to_string(), vec![v.trim().to_string()]));
    }
    if let Some((k, v)) = term.split_once('=') {
        return Ok(LabelReq::In(k.trim().to_string(), vec![v.trim().to_string()]));
    }
    if term.contains(char::is_whitespace) || term.contains('(') {
        return Err(ApiError::bad_request(format!(
            "unable to parse requirement: {term}"
        )));
    }
    Ok(LabelReq::Exists(term.to_string()))
}

/// A parsed field selector: `path=value` / `path!=value` terms on dotted JSON paths
/// (`metadata.name`, `spec.nodeName`, `status.phase`, ...).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSelector(pub Vec<(String, bool, String)>);

impl FieldSelector {
    /// Parse `metadata.name=a,status.phase!=Running`.
    pub fn parse(s: &str) -> Result<Self, ApiError> {
        let mut terms = Vec::new();
        for term in s.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            let (path, eq, value) = if let Some((k, v)) = term.split_once("!=") {
                (k, false, v)
            } else if let Some((k, v)) = term.split_once("==") {
                (k, true, v)
            } else if let Some((k, v)) = term.split_once('=') {
                (k, true, v)
            } else {
                return Err(ApiError::bad_request(format!(
                    "invalid selector: '{term}'; can't understand '{term}'"
                )));
            };
            terms.push((path.trim().to_string(), eq, value.trim().to_string()));
        }
        Ok(Self(terms))
    }

    /// Whether the object satisfies every term (an absent field is the empty string).
    pub fn matches(&self, obj: &Value) -> bool {
        self.0.iter().all(|(path, eq, value)| {
            let mut cur = Some(obj);
            for part in path.split('.') {
                cur = cur.and_then(|c| c.get(part));
            }
            let actual = match cur {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Null) | None => String::new(),
                Some(other) => other.to_string(),
            };
            (actual == *value) == *eq
        })
    }

    /// The value required for `metadata.name`, if the selector pins it (used by RBAC resourceNames).
    pub fn pinned_name(&self) -> Option<&str> {
        self.0
            .iter()
            .find(|(p, eq, _)| p == "metadata.name" && *eq)
            .map(|(_, _, v)| v.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn set_based_selectors_match_like_kubernetes() -> Result<(), ApiError> {
        let s = LabelSelector::parse("app in (a, b),tier notin (db),!legacy,env")?;
        assert!(s.matches(&labels(&[("app", "a"), ("env", "x")])));
        assert!(!s.matches(&labels(&[("app", "c"), ("env", "x")])));
        assert!(!s.matches(&labels(&[("app", "a"), ("env", "x"), ("tier", "db")])));
        assert!(!s.matches(&labels(&[("app", "a"), ("env", "x"), ("legacy", "")])));
        assert!(!s.matches(&labels(&[("app", "a")])));
        let eq = LabelSelector::parse("a=1,b!=2")?;
        assert!(eq.matches(&labels(&[("a", "1")])));
        assert!(!eq.matches(&labels(&[("a", "1"), ("b", "2")])));
        Ok(())
    }

    #[test]
    fn field_selectors_read_dotted_paths() -> Result<(), ApiError> {
        let obj = serde_json::json!({"metadata": {"name": "p"}, "spec": {"nodeName": "n1"}});
        assert!(FieldSelector::parse("metadata.name=p,spec.nodeName==n1")?.matches(&obj));
        assert!(!FieldSelector::parse("spec.nodeName!=n1")?.matches(&obj));
        assert!(FieldSelector::parse("status.phase!=Running")?.matches(&obj));
        Ok(())
    }
}
