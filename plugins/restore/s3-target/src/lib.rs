//! The S3 upload target of restores and archives: `restoreMethod` as written in the spec, merged with the
//! operator's global restore target, turned into the wrapper's `RESTORE_*` env, TLS args and mounts.
//!
//! The operator hands its global target to plugins through `settings.extra` ([`EXTRA_ENDPOINT`],
//! [`EXTRA_BUCKET`], [`EXTRA_ACCESS_KEY_ID_SECRET`], [`EXTRA_SECRET_ACCESS_KEY_SECRET`]); credentials are
//! always `<secret-name>/<key>` references to a Secret in the action's namespace, never values. Each field of
//! `restoreMethod.s3` that is set wins over its global counterpart.

use k8up_plugin_sdk::{
    EnvVar, Job, PlanRequest, PluginError, SecretKeySelector, SpecVolumeMount, env_secret, invalid_spec,
    lookup,
};
use serde::Deserialize;

/// `settings.extra` key: the global restore endpoint URL (`http(s)://host:port`).
pub const EXTRA_ENDPOINT: &str = "restore-s3-endpoint";
/// `settings.extra` key: the global restore bucket.
pub const EXTRA_BUCKET: &str = "restore-s3-bucket";
/// `settings.extra` key: `<secret-name>/<key>` holding the global restore access key id.
pub const EXTRA_ACCESS_KEY_ID_SECRET: &str = "restore-s3-access-key-id-secret";
/// `settings.extra` key: `<secret-name>/<key>` holding the global restore secret access key.
pub const EXTRA_SECRET_ACCESS_KEY_SECRET: &str = "restore-s3-secret-access-key-secret";

/// `spec.restoreMethod` (shared by Restore and Archive; JSON names as in `host/src/crd/restore.rs`).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RestoreMethod {
    /// Upload a `.tar.gz` to this bucket.
    pub s3: Option<S3Spec>,
    /// Restore into this PVC.
    pub folder: Option<FolderSpec>,
    /// TLS files for the S3 target.
    pub tls_options: Option<TlsOptions>,
    /// Extra mounts of the job container (certificates for the target).
    pub volume_mounts: Option<Vec<SpecVolumeMount>>,
}

/// `restoreMethod.s3`: every field may be left out to use the operator's global value.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct S3Spec {
    /// Endpoint URL with scheme.
    pub endpoint: Option<String>,
    /// Bucket name.
    pub bucket: Option<String>,
    /// Secret key with the access key id.
    #[serde(rename = "accessKeyIDSecretRef")]
    pub access_key_id_secret_ref: Option<SecretKeySelector>,
    /// Secret key with the secret access key.
    pub secret_access_key_secret_ref: Option<SecretKeySelector>,
}

/// `restoreMethod.folder` (a `PersistentVolumeClaimVolumeSource`).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct FolderSpec {
    /// The PVC to restore into.
    pub claim_name: String,
    /// Mount it read-only.
    pub read_only: Option<bool>,
}

/// `restoreMethod.tlsOptions`: paths inside the job pod.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TlsOptions {
    /// CA certificate of the target.
    pub ca_cert: Option<String>,
    /// Client certificate (with `clientKey`).
    pub client_cert: Option<String>,
    /// Client key (with `clientCert`).
    pub client_key: Option<String>,
}

/// A resolved S3 target: what the wrapper reads from `RESTORE_S3ENDPOINT`, `RESTORE_ACCESSKEYID` and
/// `RESTORE_SECRETACCESSKEY`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Target {
    /// `<endpoint>/<bucket>`.
    pub url: String,
    /// `RESTORE_ACCESSKEYID` as a Secret reference.
    pub access_key_id: EnvVar,
    /// `RESTORE_SECRETACCESSKEY` as a Secret reference.
    pub secret_access_key: EnvVar,
}

impl S3Target {
    /// Resolves the target from `restoreMethod.s3` (may be absent) and the operator's global target.
    pub fn resolve(req: &PlanRequest, s3: Option<&S3Spec>) -> Result<S3Target, PluginError> {
        let own = s3.cloned().unwrap_or_default();
        let global = |key: &str| lookup(&req.settings.extra, key).filter(|v| !v.trim().is_empty());
        let endpoint = match own.endpoint.as_deref().filter(|e| !e.is_empty()) {
            Some(endpoint) => endpoint,
            None => global(EXTRA_ENDPOINT).ok_or_else(|| {
                invalid_spec(
                    "restoreMethod.s3.endpoint is not set and the operator has no global restore endpoint; \
                     set the endpoint (e.g. https://s3.example.com)",
                )
            })?,
        };
        let endpoint = check_endpoint(endpoint)?;
        let bucket = match own.bucket.as_deref().filter(|b| !b.is_empty()) {
            Some(bucket) => bucket,
            None => global(EXTRA_BUCKET).ok_or_else(|| {
                invalid_spec(
                    "restoreMethod.s3.bucket is not set and the operator has no global restore bucket; \
                     set the bucket",
                )
            })?,
        };
        if bucket.contains('/') || bucket.chars().any(char::is_whitespace) {
            return Err(invalid_spec(format!(
                "restoreMethod.s3.bucket: {bucket:?} is not a bucket name (no '/' or spaces; put a path \
                 prefix into the endpoint)"
            )));
        }
        let access_key_id = credential(
            req,
            "RESTORE_ACCESSKEYID",
            own.access_key_id_secret_ref.as_ref(),
            "accessKeyIDSecretRef",
            EXTRA_ACCESS_KEY_ID_SECRET,
        )?;
        let secret_access_key = credential(
            req,
            "RESTORE_SECRETACCESSKEY",
            own.secret_access_key_secret_ref.as_ref(),
            "secretAccessKeySecretRef",
            EXTRA_SECRET_ACCESS_KEY_SECRET,
        )?;
        Ok(S3Target {
            url: format!("{endpoint}/{bucket}"),
            access_key_id,
            secret_access_key,
        })
    }

    /// Adds the target's env to a Job.
    pub fn apply(&self, job: Job) -> Job {
        job.with_env_literal("RESTORE_S3ENDPOINT", &self.url)
            .with_env(self.access_key_id.clone())
            .with_env(self.secret_access_key.clone())
    }
}

/// The endpoint without a trailing `/`, refused unless it is an `http://` or `https://` URL with a host
/// and without credentials, query or fragment. A URL that may hold a secret (userinfo, a query) is not
/// repeated in the message, since messages end up in Events and status.
fn check_endpoint(endpoint: &str) -> Result<&str, PluginError> {
    let example = "expected e.g. https://s3.example.com:9000";
    if endpoint.contains('@') {
        return Err(invalid_spec(format!(
            "restoreMethod.s3.endpoint carries credentials (user:password@); remove them and reference \
             Secrets in accessKeyIDSecretRef and secretAccessKeySecretRef ({example})"
        )));
    }
    if endpoint.contains(['?', '#']) {
        return Err(invalid_spec(format!(
            "restoreMethod.s3.endpoint must not contain a query or a fragment ({example})"
        )));
    }
    let bad = |why: &str| {
        invalid_spec(format!(
            "restoreMethod.s3.endpoint: {endpoint:?} {why} ({example})"
        ))
    };
    let rest = endpoint
        .strip_prefix("https://")
        .or_else(|| endpoint.strip_prefix("http://"))
        .ok_or_else(|| bad("needs the scheme http:// or https://"))?;
    if rest.split('/').next().unwrap_or_default().is_empty() {
        return Err(bad("has no host"));
    }
    if rest.chars().any(char::is_whitespace) {
        return Err(bad("must not contain spaces"));
    }
    Ok(endpoint.trim_end_matches('/'))
}

/// A credential env var: the spec's Secret reference, else the operator's global one.
fn credential(
    req: &PlanRequest,
    var: &str,
    own: Option<&SecretKeySelector>,
    field: &str,
    extra_key: &str,
) -> Result<EnvVar, PluginError> {
    if let Some(selector) = own {
        if selector.name.is_empty() || selector.key.is_empty() {
            return Err(invalid_spec(format!(
                "restoreMethod.s3.{field} needs both name and key of a Secret"
            )));
        }
        return Ok(selector.to_env(var));
    }
    let global = lookup(&req.settings.extra, extra_key).filter(|v| !v.trim().is_empty());
    let Some(reference) = global else {
        return Err(invalid_spec(format!(
            "restoreMethod.s3.{field} is not set and the operator has no global restore credentials; \
             reference a Secret key with the credential"
        )));
    };
    match reference.split_once('/') {
        Some((secret, key)) if !secret.is_empty() && !key.is_empty() && !key.contains('/') => {
            Ok(env_secret(var, secret, key))
        }
        _ => Err(invalid_spec(format!(
            "the operator's setting {extra_key} is not <secret-name>/<key>; set restoreMethod.s3.{field} or \
             ask the operator's administrator to fix it"
        ))),
    }
}

/// Wrapper args for TLS to the S3 target: `--restoreCaCert`, and `--restoreClientCert` with
/// `--restoreClientKey` (only as a pair).
pub fn tls_args(tls: Option<&TlsOptions>) -> Result<Vec<String>, PluginError> {
    let Some(tls) = tls else {
        return Ok(Vec::new());
    };
    let set = |value: &Option<String>| value.clone().filter(|v| !v.is_empty());
    let mut args = Vec::new();
    if let Some(ca) = set(&tls.ca_cert) {
        args.extend(["--restoreCaCert".to_string(), ca]);
    }
    match (set(&tls.client_cert), set(&tls.client_key)) {
        (Some(cert), Some(key)) => args.extend([
            "--restoreClientCert".to_string(),
            cert,
            "--restoreClientKey".to_string(),
            key,
        ]),
        (None, None) => {}
        _ => {
            return Err(invalid_spec(
                "restoreMethod.tlsOptions: set both clientCert and clientKey, or neither",
            ));
        }
    }
    Ok(args)
}

/// Adds `restoreMethod.volumeMounts` to a Job; each must name a volume of `spec.volumes` and a path.
pub fn with_volume_mounts(mut job: Job, method: &RestoreMethod) -> Result<Job, PluginError> {
    for mount in method.volume_mounts.as_deref().unwrap_or_default() {
        if mount.name.is_empty() || mount.mount_path.is_empty() {
            return Err(invalid_spec(
                "restoreMethod.volumeMounts: every entry needs a name (a volume of spec.volumes) and a mountPath",
            ));
        }
        job = job.with_volume_mount(mount.to_mount());
    }
    Ok(job)
}

#[cfg(test)]
mod tests;
