//! Filling a Backend from defaults (a Schedule's `backend` for the objects it creates).

use super::backend::{
    AzureSpec, B2Spec, Backend, GcsSpec, LocalSpec, RestServerSpec, S3Spec, SwiftSpec, TlsOptions,
};

impl Backend {
    /// This backend with unset fields filled from `defaults` (a Schedule's `backend` for the objects it
    /// creates): fields set here win.
    ///
    /// Unlike K8up's field-wise merge, a storage type is inherited only when this backend sets none: a
    /// sub-spec that says `s3` never also inherits the Schedule's `b2` (K8up would end up with two storage
    /// types and silently use the first one). When both name the same storage type, its fields are filled
    /// one by one.
    pub fn with_defaults(&self, defaults: &Backend) -> Backend {
        let storage = if self.kind().is_some() {
            Backend {
                local: fill_own(&self.local, &defaults.local, |a, b| LocalSpec {
                    mount_path: or(&a.mount_path, &b.mount_path),
                }),
                s3: fill_own(&self.s3, &defaults.s3, S3Spec::with_defaults),
                gcs: fill_own(&self.gcs, &defaults.gcs, |a, b| GcsSpec {
                    bucket: or(&a.bucket, &b.bucket),
                    project_id_secret_ref: or(&a.project_id_secret_ref, &b.project_id_secret_ref),
                    access_token_secret_ref: or(&a.access_token_secret_ref, &b.access_token_secret_ref),
                }),
                azure: fill_own(&self.azure, &defaults.azure, |a, b| AzureSpec {
                    container: or(&a.container, &b.container),
                    path: or(&a.path, &b.path),
                    account_name_secret_ref: or(&a.account_name_secret_ref, &b.account_name_secret_ref),
                    account_key_secret_ref: or(&a.account_key_secret_ref, &b.account_key_secret_ref),
                }),
                swift: fill_own(&self.swift, &defaults.swift, |a, b| SwiftSpec {
                    container: or(&a.container, &b.container),
                    path: or(&a.path, &b.path),
                }),
                b2: fill_own(&self.b2, &defaults.b2, |a, b| B2Spec {
                    bucket: or(&a.bucket, &b.bucket),
                    path: or(&a.path, &b.path),
                    account_id_secret_ref: or(&a.account_id_secret_ref, &b.account_id_secret_ref),
                    account_key_secret_ref: or(&a.account_key_secret_ref, &b.account_key_secret_ref),
                }),
                rest: fill_own(&self.rest, &defaults.rest, |a, b| RestServerSpec {
                    url: or(&a.url, &b.url),
                    user_secret_ref: or(&a.user_secret_ref, &b.user_secret_ref),
                    // A password under either spelling here wins over both spellings in the defaults.
                    password_secret_ref: if a.password_secret_ref().is_some() {
                        a.password_secret_ref.clone()
                    } else {
                        b.password_secret_ref.clone()
                    },
                    password_secret_reg: if a.password_secret_ref().is_some() {
                        a.password_secret_reg.clone()
                    } else {
                        b.password_secret_reg.clone()
                    },
                }),
                ..Backend::default()
            }
        } else {
            Backend {
                local: defaults.local.clone(),
                s3: defaults.s3.clone(),
                gcs: defaults.gcs.clone(),
                azure: defaults.azure.clone(),
                swift: defaults.swift.clone(),
                b2: defaults.b2.clone(),
                rest: defaults.rest.clone(),
                ..Backend::default()
            }
        };
        Backend {
            repo_password_secret_ref: or(&self.repo_password_secret_ref, &defaults.repo_password_secret_ref),
            env_from: or(&self.env_from, &defaults.env_from),
            tls_options: fill(&self.tls_options, &defaults.tls_options, |a, b| TlsOptions {
                ca_cert: or(&a.ca_cert, &b.ca_cert),
                client_cert: or(&a.client_cert, &b.client_cert),
                client_key: or(&a.client_key, &b.client_key),
            }),
            volume_mounts: or(&self.volume_mounts, &defaults.volume_mounts),
            ..storage
        }
    }
}

impl S3Spec {
    /// This S3 spec with unset fields filled from `defaults`.
    pub fn with_defaults(&self, defaults: &S3Spec) -> S3Spec {
        S3Spec {
            endpoint: or(&self.endpoint, &defaults.endpoint),
            bucket: or(&self.bucket, &defaults.bucket),
            access_key_id_secret_ref: or(&self.access_key_id_secret_ref, &defaults.access_key_id_secret_ref),
            secret_access_key_secret_ref: or(
                &self.secret_access_key_secret_ref,
                &defaults.secret_access_key_secret_ref,
            ),
        }
    }
}

/// `own` when set, else a copy of `default`.
fn or<T: Clone>(own: &Option<T>, default: &Option<T>) -> Option<T> {
    own.clone().or_else(|| default.clone())
}

/// Like [`fill`], but only when `own` is set: a storage type this backend does not name stays unset.
fn fill_own<T: Clone>(own: &Option<T>, default: &Option<T>, merge: impl FnOnce(&T, &T) -> T) -> Option<T> {
    own.as_ref().map(|own| match default {
        Some(default) => merge(own, default),
        None => own.clone(),
    })
}

/// Merge two optional structs: both set -> `merge`, otherwise whichever is set.
fn fill<T: Clone>(own: &Option<T>, default: &Option<T>, merge: impl FnOnce(&T, &T) -> T) -> Option<T> {
    match (own, default) {
        (Some(own), Some(default)) => Some(merge(own, default)),
        _ => or(own, default),
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::SecretKeySelector;

    use super::*;
    use crate::crd::backend::BackendKind;

    fn secret(name: &str, key: &str) -> SecretKeySelector {
        SecretKeySelector {
            name: name.to_owned(),
            key: key.to_owned(),
            optional: None,
        }
    }

    #[test]
    fn schedule_defaults_fill_unset_fields_and_the_sub_spec_wins() {
        let defaults = Backend {
            repo_password_secret_ref: Some(secret("repo", "password")),
            s3: Some(S3Spec {
                endpoint: Some("http://minio:9000".into()),
                bucket: Some("default-bucket".into()),
                access_key_id_secret_ref: Some(secret("minio", "user")),
                ..Default::default()
            }),
            tls_options: Some(TlsOptions {
                ca_cert: Some("/ca.crt".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let own = Backend {
            s3: Some(S3Spec {
                bucket: Some("mine".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let merged = own.with_defaults(&defaults);
        let s3 = merged.s3.clone().unwrap_or_default();
        assert_eq!(s3.bucket.as_deref(), Some("mine"));
        assert_eq!(s3.endpoint.as_deref(), Some("http://minio:9000"));
        assert_eq!(s3.access_key_id_secret_ref, Some(secret("minio", "user")));
        assert_eq!(merged.repo_password_secret_ref, Some(secret("repo", "password")));
        assert_eq!(
            merged.tls_options.and_then(|t| t.ca_cert).as_deref(),
            Some("/ca.crt")
        );
        assert_eq!(Backend::default().with_defaults(&defaults).s3, defaults.s3);
    }

    #[test]
    fn a_sub_spec_with_its_own_storage_type_never_inherits_a_second_one() {
        let defaults = Backend {
            b2: Some(B2Spec {
                bucket: Some("b".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let own = Backend {
            s3: Some(S3Spec::default()),
            ..Default::default()
        };
        let merged = own.with_defaults(&defaults);
        assert_eq!(merged.kinds(), vec![BackendKind::S3]);
        assert_eq!(merged.validate(), Ok(()));
    }

    #[test]
    fn a_rest_password_under_k8ups_spelling_wins_over_the_defaults_correct_spelling() {
        let defaults = Backend {
            rest: Some(RestServerSpec {
                url: Some("https://rest".into()),
                password_secret_ref: Some(secret("schedule", "pw")),
                ..Default::default()
            }),
            ..Default::default()
        };
        let own = Backend {
            rest: Some(RestServerSpec {
                password_secret_reg: Some(secret("mine", "pw")),
                ..Default::default()
            }),
            ..Default::default()
        };
        let merged = own.with_defaults(&defaults);
        let rest = merged.rest.clone().unwrap_or_default();
        assert_eq!(rest.password_secret_ref().map(|s| s.name.as_str()), Some("mine"));
        assert_eq!(rest.url.as_deref(), Some("https://rest"));
        assert_eq!(merged.validate(), Ok(()));
    }
}
