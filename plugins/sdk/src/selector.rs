//! Kubernetes label selectors (`matchLabels` and `matchExpressions`), parsed from spec JSON.

use serde::Deserialize;
use std::collections::BTreeMap;

use crate::KeyValue;
use crate::meta::lookup;

/// A `metav1.LabelSelector`. All its terms must match (AND); an empty selector matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LabelSelector {
    /// Labels that must be present with exactly these values.
    #[serde(default)]
    pub match_labels: BTreeMap<String, String>,
    /// Set-based requirements.
    #[serde(default)]
    pub match_expressions: Vec<LabelSelectorRequirement>,
}

/// One set-based requirement of a [`LabelSelector`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LabelSelectorRequirement {
    /// The label key.
    pub key: String,
    /// `In`, `NotIn`, `Exists` or `DoesNotExist`.
    pub operator: String,
    /// The values for `In` / `NotIn`.
    #[serde(default)]
    pub values: Vec<String>,
}

impl LabelSelector {
    /// Whether labels satisfy every term of the selector. An unknown operator matches nothing,
    /// as the API server would have rejected it.
    pub fn matches(&self, labels: &[KeyValue]) -> bool {
        let labels_ok = self
            .match_labels
            .iter()
            .all(|(key, value)| lookup(labels, key) == Some(value.as_str()));
        labels_ok && self.match_expressions.iter().all(|req| req.matches(labels))
    }

    /// K8up's rule for `labelSelectors` lists: no selectors selects everything, otherwise any
    /// selector may match (OR).
    pub fn any_matches(selectors: &[LabelSelector], labels: &[KeyValue]) -> bool {
        selectors.is_empty() || selectors.iter().any(|selector| selector.matches(labels))
    }
}

impl LabelSelectorRequirement {
    /// Whether labels satisfy this requirement.
    pub fn matches(&self, labels: &[KeyValue]) -> bool {
        let value = lookup(labels, &self.key);
        match self.operator.as_str() {
            "In" => value.is_some_and(|v| self.values.iter().any(|x| x == v)),
            "NotIn" => value.is_none_or(|v| !self.values.iter().any(|x| x == v)),
            "Exists" => value.is_some(),
            "DoesNotExist" => value.is_none(),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv;

    fn selector(json: &str) -> LabelSelector {
        serde_json::from_str(json).unwrap_or_else(|e| unreachable!("bad fixture {json}: {e}"))
    }

    #[test]
    fn selectors_follow_kubernetes_semantics() {
        let labels = [kv("app", "db"), kv("tier", "gold")];
        let cases = [
            (r#"{}"#, true),
            (r#"{"matchLabels":{"app":"db"}}"#, true),
            (r#"{"matchLabels":{"app":"web"}}"#, false),
            (r#"{"matchLabels":{"app":"db","tier":"silver"}}"#, false),
            (
                r#"{"matchExpressions":[{"key":"tier","operator":"In","values":["gold","silver"]}]}"#,
                true,
            ),
            (
                r#"{"matchExpressions":[{"key":"tier","operator":"NotIn","values":["gold"]}]}"#,
                false,
            ),
            (
                r#"{"matchExpressions":[{"key":"zone","operator":"NotIn","values":["a"]}]}"#,
                true,
            ),
            (
                r#"{"matchExpressions":[{"key":"app","operator":"Exists"}]}"#,
                true,
            ),
            (
                r#"{"matchExpressions":[{"key":"app","operator":"DoesNotExist"}]}"#,
                false,
            ),
            (
                r#"{"matchExpressions":[{"key":"app","operator":"Bogus"}]}"#,
                false,
            ),
        ];
        for (json, expected) in cases {
            assert_eq!(selector(json).matches(&labels), expected, "{json}");
        }
    }

    #[test]
    fn a_list_of_selectors_is_or_combined_and_empty_means_all() {
        let labels = [kv("app", "db")];
        assert!(LabelSelector::any_matches(&[], &labels));
        let web = selector(r#"{"matchLabels":{"app":"web"}}"#);
        let db = selector(r#"{"matchLabels":{"app":"db"}}"#);
        assert!(!LabelSelector::any_matches(std::slice::from_ref(&web), &labels));
        assert!(LabelSelector::any_matches(&[web, db], &labels));
    }
}
