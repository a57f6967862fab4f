//! The backend record: repository string, credential env as Secret references, `envFrom`, TLS args and the
//! backend's volume mounts (REFERENCE 1.1).
//!
//! Credentials the spec names are referenced where they are; the operator's global ones are referenced in
//! the mirrored `k8up-global-credentials` Secret (see `operator::driver::credentials`). No value is ever
//! copied into the request, so no plugin, plan or Job spec ever holds a secret.

use k8s_openapi::api::core::v1::{EnvFromSource, SecretKeySelector, VolumeMount as K8sVolumeMount};

use super::super::types::{Backend, EnvFrom, EnvVar, KeyRef, ValueSource, VolumeMount};
use crate::crd::{BackendKind, TlsOptions};
use crate::operator::driver::credentials::{
    GLOBAL_CREDENTIALS_SECRET, KEY_ACCESS_KEY_ID, KEY_REPO_PASSWORD, KEY_SECRET_ACCESS_KEY, offered_keys,
};
use crate::operator::driver::validate::ValidatedAction;

/// Builds the backend record of `action`.
pub fn backend_record(action: &ValidatedAction) -> Backend {
    let spec = action.runnable.backend.clone().unwrap_or_default();
    let offered = offered_keys(action);
    let global = |name: &str, key: &'static str| offered.contains(&key).then(|| global_env(name, key));
    let mut env: Vec<EnvVar> = Vec::new();
    env.extend(
        spec.repo_password_secret_ref
            .as_ref()
            .map(|r| secret_env("RESTIC_PASSWORD", r))
            .or_else(|| global("RESTIC_PASSWORD", KEY_REPO_PASSWORD)),
    );
    let pair = |env: &mut Vec<EnvVar>, refs: [(&str, Option<&SecretKeySelector>); 2]| {
        env.extend(
            refs.into_iter()
                .filter_map(|(name, r)| Some(secret_env(name, r?))),
        );
    };
    match action.repository.kind {
        BackendKind::S3 => {
            let s3 = spec.s3.clone().unwrap_or_default();
            env.extend(
                s3.access_key_id_secret_ref
                    .as_ref()
                    .map(|r| secret_env("AWS_ACCESS_KEY_ID", r))
                    .or_else(|| global("AWS_ACCESS_KEY_ID", KEY_ACCESS_KEY_ID)),
            );
            env.extend(
                s3.secret_access_key_secret_ref
                    .as_ref()
                    .map(|r| secret_env("AWS_SECRET_ACCESS_KEY", r))
                    .or_else(|| global("AWS_SECRET_ACCESS_KEY", KEY_SECRET_ACCESS_KEY)),
            );
        }
        BackendKind::Gcs => {
            let gcs = spec.gcs.clone().unwrap_or_default();
            pair(
                &mut env,
                [
                    ("GOOGLE_PROJECT_ID", gcs.project_id_secret_ref.as_ref()),
                    ("GOOGLE_ACCESS_TOKEN", gcs.access_token_secret_ref.as_ref()),
                ],
            );
        }
        BackendKind::Azure => {
            let azure = spec.azure.clone().unwrap_or_default();
            pair(
                &mut env,
                [
                    ("AZURE_ACCOUNT_NAME", azure.account_name_secret_ref.as_ref()),
                    ("AZURE_ACCOUNT_KEY", azure.account_key_secret_ref.as_ref()),
                ],
            );
        }
        BackendKind::B2 => {
            let b2 = spec.b2.clone().unwrap_or_default();
            pair(
                &mut env,
                [
                    ("B2_ACCOUNT_ID", b2.account_id_secret_ref.as_ref()),
                    ("B2_ACCOUNT_KEY", b2.account_key_secret_ref.as_ref()),
                ],
            );
        }
        BackendKind::Rest => {
            let rest = spec.rest.clone().unwrap_or_default();
            pair(
                &mut env,
                [
                    ("USER", rest.user_secret_ref.as_ref()),
                    ("PASSWORD", rest.password_secret_ref()),
                ],
            );
        }
        // Swift takes its `OS_*` credentials from `envFrom`; a local repository needs none.
        BackendKind::Swift | BackendKind::Local => {}
    }
    Backend {
        kind: action.repository.kind.field_name().to_string(),
        repository: action.repository.url.clone(),
        env,
        env_from: spec
            .env_from
            .as_deref()
            .unwrap_or_default()
            .iter()
            .filter_map(env_from)
            .collect(),
        tls_args: tls_args(
            spec.tls_options.as_ref(),
            ["--caCert", "--clientCert", "--clientKey"],
        ),
        volume_mounts: spec
            .volume_mounts
            .as_deref()
            .unwrap_or_default()
            .iter()
            .map(volume_mount)
            .collect(),
    }
}

/// An env var read from a key of a Secret the spec names.
pub fn secret_env(name: &str, selector: &SecretKeySelector) -> EnvVar {
    EnvVar {
        name: name.to_string(),
        value: ValueSource::SecretKey(KeyRef {
            name: selector.name.clone(),
            key: selector.key.clone(),
            optional: selector.optional.unwrap_or(false),
        }),
    }
}

/// An env var read from the mirrored global-credentials Secret.
pub fn global_env(name: &str, key: &str) -> EnvVar {
    EnvVar {
        name: name.to_string(),
        value: ValueSource::SecretKey(KeyRef {
            name: GLOBAL_CREDENTIALS_SECRET.to_string(),
            key: key.to_string(),
            optional: false,
        }),
    }
}

/// The contract's shape of an `envFrom` entry; `None` for an entry naming neither a Secret nor a ConfigMap.
/// The prefix and `optional` are not part of the contract: the Job builder takes them from the spec again.
pub fn env_from(source: &EnvFromSource) -> Option<EnvFrom> {
    if let Some(secret) = &source.secret_ref {
        return Some(EnvFrom::Secret(secret.name.clone()));
    }
    source
        .config_map_ref
        .as_ref()
        .map(|config_map| EnvFrom::ConfigMap(config_map.name.clone()))
}

/// TLS wrapper arguments: the CA certificate alone, the client pair only when both halves are set (K8up).
/// `flags` are the CA, client certificate and client key flags (`--caCert`, … or `--restoreCaCert`, …).
pub fn tls_args(tls: Option<&TlsOptions>, flags: [&str; 3]) -> Vec<String> {
    let Some(tls) = tls else {
        return Vec::new();
    };
    let set = |v: &Option<String>| v.clone().filter(|s| !s.is_empty());
    let mut args = Vec::new();
    if let Some(ca) = set(&tls.ca_cert) {
        args.extend([flags[0].to_string(), ca]);
    }
    if let (Some(cert), Some(key)) = (set(&tls.client_cert), set(&tls.client_key)) {
        args.extend([flags[1].to_string(), cert, flags[2].to_string(), key]);
    }
    args
}

/// The contract's shape of a volume mount written in a spec.
pub fn volume_mount(mount: &K8sVolumeMount) -> VolumeMount {
    VolumeMount {
        name: mount.name.clone(),
        mount_path: mount.mount_path.clone(),
        read_only: mount.read_only.unwrap_or(false),
        sub_path: mount.sub_path.clone().filter(|p| !p.is_empty()),
    }
}
