//! Kubernetes name syntax and path arithmetic used by the plan checks.

/// A DNS-1123 label: lowercase letters, digits and `-`, starting and ending alphanumeric, at most 63.
pub fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// A DNS-1123 subdomain: dot-separated DNS labels, at most 253 characters.
pub fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty() && s.len() <= 253 && s.split('.').all(is_dns_label)
}

/// The name part of a qualified name or a label value: alphanumerics, `-`, `_`, `.`, starting and ending
/// alphanumeric, at most 63.
fn is_qualified_name_part(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && s.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        && s.bytes().last().is_some_and(|b| b.is_ascii_alphanumeric())
}

/// A label or annotation key: `[prefix/]name` with a DNS-subdomain prefix.
pub fn is_qualified_name(s: &str) -> bool {
    match s.split_once('/') {
        Some((prefix, name)) => is_dns_subdomain(prefix) && is_qualified_name_part(name),
        None => is_qualified_name_part(s),
    }
}

/// A label value: empty, or a qualified name part.
pub fn is_label_value(s: &str) -> bool {
    s.is_empty() || is_qualified_name_part(s)
}

/// An environment variable name as the API server accepts it (`[-._a-zA-Z][-._a-zA-Z0-9]*`).
pub fn is_env_name(s: &str) -> bool {
    let mut bytes = s.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || matches!(b, b'-' | b'.' | b'_'))
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
}

/// A key of a Secret or ConfigMap (`[-._a-zA-Z0-9]+`, at most 253).
pub fn is_config_key(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
}

/// An absolute path without `.`/`..` components or empty components, with a trailing `/` removed;
/// `None` when the path is not absolute or not normal.
pub fn normal_path(path: &str) -> Option<String> {
    let rest = path.strip_prefix('/')?;
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.is_empty() {
        return Some("/".to_string());
    }
    rest.split('/')
        .all(|c| !c.is_empty() && c != "." && c != "..")
        .then(|| format!("/{rest}"))
}

/// Whether `path` is `root` or below it (both normal paths).
pub fn is_within(path: &str, root: &str) -> bool {
    root == "/" || path == root || path.strip_prefix(root).is_some_and(|rest| rest.starts_with('/'))
}

/// A relative sub path without `..` components.
pub fn is_sub_path(s: &str) -> bool {
    !s.starts_with('/') && s.split('/').all(|c| c != "..")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_keys_and_values_follow_the_api_servers_syntax() {
        for ok in ["app", "k8up.io/type", "a.b-c_d", "example.com/x9"] {
            assert!(is_qualified_name(ok), "{ok}");
        }
        for bad in ["", "-a", "a-", "Example.com/x", "a/b/c", "/x", &"x".repeat(64)] {
            assert!(!is_qualified_name(bad), "{bad}");
        }
        assert!(is_label_value("") && is_label_value("node-1") && !is_label_value("a b"));
    }

    #[test]
    fn env_names_are_c_identifiers_with_dots_and_dashes() {
        for ok in ["RESTIC_PASSWORD", "a.b", "_x", "-y", "X1"] {
            assert!(is_env_name(ok), "{ok}");
        }
        for bad in ["", "1X", "A=B", "A B", "Ä"] {
            assert!(!is_env_name(bad), "{bad}");
        }
    }

    #[test]
    fn paths_are_normalised_and_compared_component_wise() {
        assert_eq!(normal_path("/data/"), Some("/data".to_string()));
        assert_eq!(normal_path("/"), Some("/".to_string()));
        for bad in ["data", "/a//b", "/a/../b", "/a/./b", ""] {
            assert_eq!(normal_path(bad), None, "{bad}");
        }
        assert!(is_within("/data/x", "/data") && is_within("/data", "/data"));
        assert!(!is_within("/database", "/data"));
        assert!(is_within("/anything", "/"));
        assert!(is_sub_path("certs/ca") && !is_sub_path("../etc") && !is_sub_path("/etc"));
    }
}
