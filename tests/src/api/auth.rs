//! Authentication (admin token, ServiceAccount tokens) and RBAC authorization from the Roles,
//! ClusterRoles and bindings in the store.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::ApiServer;
use super::status::{ApiError, qualified};
use super::store::ObjKey;

const RBAC: &str = "rbac.authorization.k8s.io";

/// An authenticated identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// `admin` or `system:serviceaccount:<ns>:<name>`.
    pub name: String,
    /// Groups (`system:masters`, `system:serviceaccounts`, `system:serviceaccounts:<ns>`, ...).
    pub groups: Vec<String>,
}

impl User {
    fn is_admin(&self) -> bool {
        self.groups.iter().any(|g| g == "system:masters")
    }
}

/// What a request wants to do, as RBAC sees it.
#[derive(Debug, Clone)]
pub(crate) struct Attributes {
    pub verb: String,
    pub group: String,
    pub resource: String,
    pub subresource: Option<String>,
    pub namespace: String,
    pub name: String,
}

impl ApiServer {
    fn token_mac(&self, namespace: &str, name: &str) -> String {
        let mut h = Sha256::new();
        h.update(self.secret);
        h.update(namespace.as_bytes());
        h.update(b"/");
        h.update(name.as_bytes());
        hex::encode(&h.finalize()[..16])
    }

    /// The bearer token of a ServiceAccount. It is valid while the ServiceAccount exists.
    pub fn service_account_token(&self, namespace: &str, name: &str) -> String {
        let id = URL_SAFE_NO_PAD.encode(format!("{namespace}/{name}"));
        format!("sa.{id}.{}", self.token_mac(namespace, name))
    }

    /// Who sent the request (401 for missing or unknown credentials).
    pub(crate) fn authenticate(&self, headers: &http::HeaderMap) -> Result<User, ApiError> {
        let token = headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
            .map(str::trim)
            .ok_or_else(ApiError::unauthorized)?;
        if token == self.admin_token {
            return Ok(User {
                name: "admin".into(),
                groups: vec!["system:masters".into(), "system:authenticated".into()],
            });
        }
        let mut parts = token.split('.');
        let (Some("sa"), Some(id), Some(mac), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(ApiError::unauthorized());
        };
        let decoded = URL_SAFE_NO_PAD.decode(id).map_err(|_| ApiError::unauthorized())?;
        let decoded = String::from_utf8(decoded).map_err(|_| ApiError::unauthorized())?;
        let (ns, name) = decoded.split_once('/').ok_or_else(ApiError::unauthorized)?;
        if self.token_mac(ns, name) != mac {
            return Err(ApiError::unauthorized());
        }
        if self
            .store
            .get(&ObjKey::new("", "serviceaccounts", ns, name))
            .is_none()
        {
            return Err(ApiError::unauthorized());
        }
        Ok(User {
            name: format!("system:serviceaccount:{ns}:{name}"),
            groups: vec![
                "system:serviceaccounts".into(),
                format!("system:serviceaccounts:{ns}"),
                "system:authenticated".into(),
            ],
        })
    }

    /// Whether RBAC allows the request (403 in Kubernetes' words otherwise).
    pub(crate) fn authorize(&self, user: &User, attrs: &Attributes) -> Result<(), ApiError> {
        if user.is_admin() || self.rbac_allows(user, attrs) {
            return Ok(());
        }
        let full = match &attrs.subresource {
            Some(s) => format!("{}/{s}", attrs.resource),
            None => attrs.resource.clone(),
        };
        let subject = if attrs.name.is_empty() {
            qualified(&attrs.group, &attrs.resource)
        } else {
            format!("{} \"{}\"", qualified(&attrs.group, &attrs.resource), attrs.name)
        };
        let scope = if attrs.namespace.is_empty() {
            "at the cluster scope".to_string()
        } else {
            format!("in the namespace \"{}\"", attrs.namespace)
        };
        let mut err = ApiError::forbidden(format!(
            "{subject} is forbidden: User \"{}\" cannot {} resource \"{full}\" in API group \"{}\" {scope}",
            user.name, attrs.verb, attrs.group
        ));
        err.details =
            Some(serde_json::json!({"name": attrs.name, "group": attrs.group, "kind": attrs.resource}));
        Err(err)
    }

    fn rbac_allows(&self, user: &User, attrs: &Attributes) -> bool {
        let (crbs, _) = self.store.list(RBAC, "clusterrolebindings", None);
        for b in &crbs {
            if binds(b, user, "") && self.role_rules(b, "").iter().any(|r| rule_allows(r, attrs)) {
                return true;
            }
        }
        if attrs.namespace.is_empty() {
            return false;
        }
        let (rbs, _) = self.store.list(RBAC, "rolebindings", Some(&attrs.namespace));
        rbs.iter().any(|b| {
            binds(b, user, &attrs.namespace)
                && self
                    .role_rules(b, &attrs.namespace)
                    .iter()
                    .any(|r| rule_allows(r, attrs))
        })
    }

    fn role_rules(&self, binding: &Value, namespace: &str) -> Vec<Value> {
        let kind = binding
            .pointer("/roleRef/kind")
            .and_then(Value::as_str)
            .unwrap_or("");
        let name = binding
            .pointer("/roleRef/name")
            .and_then(Value::as_str)
            .unwrap_or("");
        let key = match kind {
            "ClusterRole" => ObjKey::new(RBAC, "clusterroles", "", name),
            "Role" if !namespace.is_empty() => ObjKey::new(RBAC, "roles", namespace, name),
            _ => return Vec::new(),
        };
        self.store
            .get(&key)
            .and_then(|r| r.get("rules").and_then(Value::as_array).cloned())
            .unwrap_or_default()
    }
}

fn binds(binding: &Value, user: &User, binding_ns: &str) -> bool {
    let Some(subjects) = binding.get("subjects").and_then(Value::as_array) else {
        return false;
    };
    subjects.iter().any(|s| {
        let kind = s.get("kind").and_then(Value::as_str).unwrap_or("");
        let name = s.get("name").and_then(Value::as_str).unwrap_or("");
        match kind {
            "ServiceAccount" => {
                let ns = s
                    .get("namespace")
                    .and_then(Value::as_str)
                    .filter(|n| !n.is_empty())
                    .unwrap_or(binding_ns);
                user.name == format!("system:serviceaccount:{ns}:{name}")
            }
            "Group" => user.groups.iter().any(|g| g == name),
            "User" => user.name == name,
            _ => false,
        }
    })
}

fn contains(list: Option<&Value>, wanted: &str) -> bool {
    list.and_then(Value::as_array).is_some_and(|l| {
        l.iter()
            .filter_map(Value::as_str)
            .any(|v| v == "*" || v == wanted)
    })
}

fn rule_allows(rule: &Value, attrs: &Attributes) -> bool {
    if !contains(rule.get("verbs"), &attrs.verb) || !contains(rule.get("apiGroups"), &attrs.group) {
        return false;
    }
    let resources = rule.get("resources").and_then(Value::as_array);
    let resource_ok = resources.is_some_and(|rs| {
        rs.iter()
            .filter_map(Value::as_str)
            .any(|r| match &attrs.subresource {
                None => r == "*" || r == attrs.resource,
                Some(sub) => {
                    r == "*"
                        || r == format!("{}/{sub}", attrs.resource)
                        || r == format!("{}/*", attrs.resource)
                        || r == format!("*/{sub}")
                }
            })
    });
    if !resource_ok {
        return false;
    }
    match rule.get("resourceNames").and_then(Value::as_array) {
        Some(names) if !names.is_empty() => {
            !attrs.name.is_empty() && names.iter().filter_map(Value::as_str).any(|n| n == attrs.name)
        }
        _ => true,
    }
}
