//! Builders for environment variables: literals and references to Secret/ConfigMap keys.

use crate::{EnvVar, KeyRef, ValueSource};

/// A key of a Secret or ConfigMap in the object's namespace (not optional).
pub fn key_ref(name: &str, key: &str) -> KeyRef {
    KeyRef {
        name: name.to_string(),
        key: key.to_string(),
        optional: false,
    }
}

/// An environment variable with a literal value. Never use it for credentials: the host
/// refuses plans that look like they pass secrets this way.
pub fn env_literal(name: &str, value: &str) -> EnvVar {
    EnvVar {
        name: name.to_string(),
        value: ValueSource::Literal(value.to_string()),
    }
}

/// An environment variable read from key `key` of Secret `secret` (`valueFrom.secretKeyRef`).
pub fn env_secret(name: &str, secret: &str, key: &str) -> EnvVar {
    EnvVar {
        name: name.to_string(),
        value: ValueSource::SecretKey(key_ref(secret, key)),
    }
}

/// An environment variable read from key `key` of ConfigMap `config_map`.
pub fn env_config_map(name: &str, config_map: &str, key: &str) -> EnvVar {
    EnvVar {
        name: name.to_string(),
        value: ValueSource::ConfigMapKey(key_ref(config_map, key)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_variable_references_the_secret_key_without_a_value() {
        let var = env_secret("AWS_ACCESS_KEY_ID", "s3-creds", "username");
        assert_eq!(var.name, "AWS_ACCESS_KEY_ID");
        assert_eq!(var.value, ValueSource::SecretKey(key_ref("s3-creds", "username")));
    }

    #[test]
    fn a_literal_variable_carries_its_value() {
        assert_eq!(env_literal("A", "b").value, ValueSource::Literal("b".into()));
        assert_eq!(
            env_config_map("A", "cm", "k").value,
            ValueSource::ConfigMapKey(KeyRef {
                name: "cm".into(),
                key: "k".into(),
                optional: false
            })
        );
    }
}
