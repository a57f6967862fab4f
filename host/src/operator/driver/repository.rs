//! The `RESTIC_REPOSITORY` string of an action: its backend, with empty fields filled from the operator's
//! global S3 settings (REFERENCE 1.1). Pure; used for the repository-hash label, Snapshot resources and the
//! planner's resolved backend.

use crate::crd::{Backend, BackendKind};
use crate::operator::settings::GlobalRepository;

/// Why no repository could be resolved; the message names what to set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RepositoryError {
    /// An S3 repository (explicit or global) without endpoint or bucket.
    #[error(
        "no S3 {missing}: set spec.backend.s3.{missing} or the operator's global S3 {missing} (BACKUP_GLOBALS3{env})"
    )]
    S3Incomplete {
        /// `endpoint` or `bucket`.
        missing: &'static str,
        /// `ENDPOINT` or `BUCKET`.
        env: &'static str,
    },
    /// A storage type is set without its required field.
    #[error("spec.backend.{field} is empty; set it")]
    MissingField {
        /// The JSON path below `backend`.
        field: &'static str,
    },
}

/// The storage type and repository string of an action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repository {
    /// The storage type (`s3` for the global fallback).
    pub kind: BackendKind,
    /// The `RESTIC_REPOSITORY` value; REST credentials stay `$(USER)`/`$(PASSWORD)` placeholders.
    pub url: String,
}

fn non_empty(v: &Option<String>) -> Option<&str> {
    v.as_deref().filter(|s| !s.is_empty())
}

/// Resolves the repository of `backend` (or the global one when `backend` sets no storage type).
pub fn resolve(backend: Option<&Backend>, global: &GlobalRepository) -> Result<Repository, RepositoryError> {
    let global_endpoint = global.s3_endpoint.as_ref().map(|u| u.as_str().to_string());
    let s3 = |endpoint: Option<&str>, bucket: Option<&str>| -> Result<Repository, RepositoryError> {
        let endpoint = endpoint.map(str::to_string).or(global_endpoint.clone()).ok_or(
            RepositoryError::S3Incomplete {
                missing: "endpoint",
                env: "ENDPOINT",
            },
        )?;
        let bucket = bucket
            .or(global.s3_bucket.as_deref().filter(|s| !s.is_empty()))
            .ok_or(RepositoryError::S3Incomplete {
                missing: "bucket",
                env: "BUCKET",
            })?;
        Ok(Repository {
            kind: BackendKind::S3,
            url: format!("s3:{}/{}", endpoint.trim_end_matches('/'), bucket),
        })
    };
    let Some(b) = backend else {
        return s3(None, None);
    };
    let need = |v: &Option<String>, field: &'static str| {
        non_empty(v)
            .map(str::to_string)
            .ok_or(RepositoryError::MissingField { field })
    };
    let repo = |kind: BackendKind, url: String| Ok(Repository { kind, url });
    match b.kind() {
        None => s3(None, None),
        Some(BackendKind::S3) => {
            let spec = b.s3.clone().unwrap_or_default();
            s3(non_empty(&spec.endpoint), non_empty(&spec.bucket))
        }
        Some(BackendKind::Local) => {
            let spec = b.local.clone().unwrap_or_default();
            repo(BackendKind::Local, need(&spec.mount_path, "local.mountPath")?)
        }
        Some(BackendKind::Gcs) => {
            let spec = b.gcs.clone().unwrap_or_default();
            repo(
                BackendKind::Gcs,
                format!("gs:{}:/", need(&spec.bucket, "gcs.bucket")?),
            )
        }
        Some(BackendKind::Azure) => {
            let spec = b.azure.clone().unwrap_or_default();
            let container = need(&spec.container, "azure.container")?;
            let path = non_empty(&spec.path).unwrap_or("/");
            repo(BackendKind::Azure, format!("azure:{container}:{path}"))
        }
        Some(BackendKind::Swift) => {
            let spec = b.swift.clone().unwrap_or_default();
            let container = need(&spec.container, "swift.container")?;
            let path = non_empty(&spec.path).unwrap_or("/");
            repo(BackendKind::Swift, format!("swift:{container}:{path}"))
        }
        Some(BackendKind::B2) => {
            let spec = b.b2.clone().unwrap_or_default();
            let bucket = need(&spec.bucket, "b2.bucket")?;
            let path = non_empty(&spec.path).unwrap_or("/");
            repo(BackendKind::B2, format!("b2:{bucket}:{path}"))
        }
        Some(BackendKind::Rest) => {
            let spec = b.rest.clone().unwrap_or_default();
            let url = need(&spec.url, "rest.url")?;
            let url = match url.split_once("://") {
                Some((scheme, rest)) => format!("rest:{scheme}://$(USER):$(PASSWORD)@{rest}"),
                // K8up's odd result for a URL without a scheme, kept so repository hashes match.
                None => format!("rest:{url}://$(USER):$(PASSWORD)@"),
            };
            repo(BackendKind::Rest, url)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::{LocalSpec, RestServerSpec, S3Spec};

    fn global() -> GlobalRepository {
        GlobalRepository {
            password: None,
            access_key_id: None,
            secret_access_key: None,
            s3_bucket: Some("global-bucket".into()),
            s3_endpoint: url::Url::parse("http://minio:9000/").ok(),
        }
    }

    #[test]
    fn s3_fields_fall_back_to_the_global_settings_and_lose_the_trailing_slash() {
        let b = Backend {
            s3: Some(S3Spec {
                bucket: Some("mine".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(
            resolve(Some(&b), &global()).map(|r| r.url),
            Ok("s3:http://minio:9000/mine".into())
        );
        assert_eq!(
            resolve(None, &global()).map(|r| r.url),
            Ok("s3:http://minio:9000/global-bucket".into())
        );
    }

    #[test]
    fn a_missing_global_endpoint_names_the_field_and_the_env_var() {
        let err = resolve(
            None,
            &GlobalRepository {
                s3_endpoint: None,
                ..global()
            },
        );
        let message = err.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(message.contains("spec.backend.s3.endpoint") && message.contains("BACKUP_GLOBALS3ENDPOINT"));
    }

    #[test]
    fn rest_and_local_repositories_are_spelled_like_k8up() {
        let rest = Backend {
            rest: Some(RestServerSpec {
                url: Some("https://rest:8000/repo".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(
            resolve(Some(&rest), &global()).map(|r| r.url),
            Ok("rest:https://$(USER):$(PASSWORD)@rest:8000/repo".into())
        );
        let local = Backend {
            local: Some(LocalSpec {
                mount_path: Some("/repo".into()),
            }),
            ..Default::default()
        };
        assert_eq!(
            resolve(Some(&local), &global()).map(|r| r.url),
            Ok("/repo".into())
        );
    }

    #[test]
    fn every_backend_builds_k8ups_repository_string_and_names_a_missing_field() {
        let from = |yaml: &str| -> Backend { serde_yaml::from_str(yaml).unwrap_or_default() };
        let cases = [
            ("gcs: {bucket: b}", Ok("gs:b:/")),
            ("azure: {container: c}", Ok("azure:c:/")),
            ("azure: {container: c, path: /p}", Ok("azure:c:/p")),
            ("swift: {container: c, path: /p}", Ok("swift:c:/p")),
            ("swift: {container: c}", Ok("swift:c:/")),
            ("b2: {bucket: b, path: /p}", Ok("b2:b:/p")),
            ("b2: {bucket: b}", Ok("b2:b:/")),
            (
                "s3: {endpoint: 'https://s3.example/', bucket: b}",
                Ok("s3:https://s3.example/b"),
            ),
            (
                "rest: {url: 'http://host:8000/'}",
                Ok("rest:http://$(USER):$(PASSWORD)@host:8000/"),
            ),
            (
                "rest: {url: host:8000}",
                Ok("rest:host:8000://$(USER):$(PASSWORD)@"),
            ),
            ("local: {mountPath: /repo}", Ok("/repo")),
            ("gcs: {}", Err("spec.backend.gcs.bucket is empty; set it")),
            ("azure: {}", Err("spec.backend.azure.container is empty; set it")),
            ("swift: {}", Err("spec.backend.swift.container is empty; set it")),
            ("b2: {}", Err("spec.backend.b2.bucket is empty; set it")),
            ("rest: {}", Err("spec.backend.rest.url is empty; set it")),
            ("local: {}", Err("spec.backend.local.mountPath is empty; set it")),
        ];
        for (yaml, expected) in cases {
            let got = resolve(Some(&from(yaml)), &global())
                .map(|r| r.url)
                .map_err(|e| e.to_string());
            let expected = expected.map(str::to_string).map_err(str::to_string);
            assert_eq!(got, expected, "{yaml}");
        }
    }
}
