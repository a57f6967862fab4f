//! Lookups in label/annotation lists and facts about PVCs.

use crate::{KeyValue, ObjectRef, Pod, Pvc};

/// Builds a key/value pair.
pub fn kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: value.to_string(),
    }
}

/// The value of `key` in a list of pairs (the last one wins, as in a YAML map that repeats a key).
pub fn lookup<'a>(pairs: &'a [KeyValue], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .rev()
        .find(|pair| pair.key == key)
        .map(|pair| pair.value.as_str())
}

/// Parses a boolean the way K8up (Go `strconv.ParseBool`) does, so annotations keep their meaning:
/// `1 t T TRUE true True` and `0 f F FALSE false False`; anything else is `None`.
pub fn parse_bool(value: &str) -> Option<bool> {
    match value {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Objects that carry labels and annotations.
pub trait Metadata {
    /// All labels.
    fn label_list(&self) -> &[KeyValue];
    /// All annotations.
    fn annotation_list(&self) -> &[KeyValue];

    /// The value of one label.
    fn label(&self, key: &str) -> Option<&str> {
        lookup(self.label_list(), key)
    }

    /// The value of one annotation.
    fn annotation(&self, key: &str) -> Option<&str> {
        lookup(self.annotation_list(), key)
    }
}

macro_rules! impl_metadata {
    ($($ty:ty),*) => {$(
        impl Metadata for $ty {
            fn label_list(&self) -> &[KeyValue] {
                &self.labels
            }
            fn annotation_list(&self) -> &[KeyValue] {
                &self.annotations
            }
        }
    )*};
}
impl_metadata!(Pvc, Pod, ObjectRef);

/// Facts about a PVC that the planning rules ask for.
pub trait PvcExt {
    /// Whether the claim lists this access mode (`ReadWriteOnce`, `ReadWriteMany`, ...).
    fn has_access_mode(&self, mode: &str) -> bool;
    /// Whether the claim is bound to a volume.
    fn is_bound(&self) -> bool;
    /// Read-write-once (and not also read-write-many): only one node can mount it.
    fn is_rwo(&self) -> bool {
        self.has_access_mode("ReadWriteOnce") && !self.is_rwx()
    }
    /// Read-write-many: any node can mount it.
    fn is_rwx(&self) -> bool {
        self.has_access_mode("ReadWriteMany")
    }
}

impl PvcExt for Pvc {
    fn has_access_mode(&self, mode: &str) -> bool {
        self.access_modes.iter().any(|m| m == mode)
    }
    fn is_bound(&self) -> bool {
        self.phase == "Bound"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::pvc;

    #[test]
    fn parse_bool_accepts_exactly_the_go_spellings() {
        for yes in ["1", "t", "T", "TRUE", "true", "True"] {
            assert_eq!(parse_bool(yes), Some(true), "{yes}");
        }
        for no in ["0", "f", "F", "FALSE", "false", "False"] {
            assert_eq!(parse_bool(no), Some(false), "{no}");
        }
        for junk in ["", "yes", "no", "tRUE", " true", "2"] {
            assert_eq!(parse_bool(junk), None, "{junk}");
        }
    }

    #[test]
    fn lookup_returns_the_last_value_of_a_repeated_key() {
        let pairs = [kv("a", "1"), kv("b", "2"), kv("a", "3")];
        assert_eq!(lookup(&pairs, "a"), Some("3"));
        assert_eq!(lookup(&pairs, "b"), Some("2"));
        assert_eq!(lookup(&pairs, "c"), None);
    }

    #[test]
    fn a_pvc_with_both_rwo_and_rwx_counts_as_rwx_only() {
        let both = pvc("x").with_access_modes(&["ReadWriteOnce", "ReadWriteMany"]);
        assert!(both.is_rwx());
        assert!(!both.is_rwo());
        let rwo = pvc("y");
        assert!(rwo.is_rwo());
        assert!(rwo.is_bound());
        assert_eq!(rwo.with_annotation("k", "v").annotation("k"), Some("v"));
    }
}
