//! The Restore and Backup the commands create, built from the flags (pure, no client), and how a Backup's
//! status reads for `--wait`.

use k8s_openapi::api::core::v1::{PersistentVolumeClaimVolumeSource, PodSecurityContext, SecretKeySelector};
use kube::Resource as _;
use rand::Rng as _;

use super::Error;
use super::args::{BackupArgs, RepositoryArgs, RestoreArgs, RestoreMethodArg};
use crate::crd::{
    Backend, Backup, BackupSpec, Restore, RestoreMethod, RestoreSpec, RunnableSpec, S3Spec, Status,
    condition_type,
};
use crate::operator::driver::status::{REASON_INVALID_SPEC, is_failed, is_succeeded};

/// `<prefix>-<5 random lowercase letters or digits>`, K8up's generated names.
pub(super) fn generated_name(prefix: &str) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    let suffix: String = (0..5)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect();
    format!("{prefix}-{suffix}")
}

/// Key `key` of Secret `name`.
fn secret_key(name: &str, key: &str) -> SecretKeySelector {
    SecretKeySelector {
        name: name.to_owned(),
        key: key.to_owned(),
        optional: None,
    }
}

/// An S3 location whose credentials are two keys of one Secret: how K8up's CLI describes both the
/// repository and the restore target.
fn s3_spec(
    endpoint: &Option<String>,
    bucket: &Option<String>,
    secret: Option<&str>,
    username_key: &str,
    password_key: &str,
) -> S3Spec {
    S3Spec {
        endpoint: endpoint.clone(),
        bucket: bucket.clone(),
        access_key_id_secret_ref: secret.map(|n| secret_key(n, username_key)),
        secret_access_key_secret_ref: secret.map(|n| secret_key(n, password_key)),
    }
}

impl RepositoryArgs {
    /// The `backend` these flags describe; `None` when no flag names anything (the operator's globals
    /// apply).
    pub fn backend(&self) -> Option<Backend> {
        let names_s3 = self.s3_endpoint.is_some() || self.s3_bucket.is_some() || self.s3_secret_ref.is_some();
        let s3 = names_s3.then(|| {
            s3_spec(
                &self.s3_endpoint,
                &self.s3_bucket,
                self.s3_secret_ref.as_deref(),
                &self.s3_username_key,
                &self.s3_password_key,
            )
        });
        let password = self
            .secret_ref
            .as_deref()
            .map(|n| secret_key(n, &self.secret_ref_key));
        (s3.is_some() || password.is_some()).then(|| Backend {
            repo_password_secret_ref: password,
            s3,
            ..Backend::default()
        })
    }
}

/// The `restoreMethod` of a restore, or which flags it lacks. Pure: checked before any API call.
pub fn restore_method(args: &RestoreArgs) -> Result<RestoreMethod, Error> {
    match args.restore_method {
        RestoreMethodArg::Pvc => {
            let claim = args.claim_name.clone().ok_or(Error::MissingFlags {
                flags: vec!["--claimName"],
                purpose: "--restoreMethod pvc restores into this PVC",
            })?;
            Ok(RestoreMethod {
                folder: Some(PersistentVolumeClaimVolumeSource {
                    claim_name: claim,
                    read_only: None,
                }),
                ..RestoreMethod::default()
            })
        }
        RestoreMethodArg::S3 => {
            let target = &args.s3_target;
            let missing: Vec<&'static str> = [
                ("--restoreToS3Endpoint", &target.endpoint),
                ("--restoreToS3Bucket", &target.bucket),
                ("--restoreToS3Secret", &target.secret),
            ]
            .into_iter()
            .filter_map(|(flag, value)| value.is_none().then_some(flag))
            .collect();
            if !missing.is_empty() {
                return Err(Error::MissingFlags {
                    flags: missing,
                    purpose: "--restoreMethod s3 uploads the snapshot as a tarball to this endpoint and \
                              bucket, with the credentials in this Secret",
                });
            }
            Ok(RestoreMethod {
                s3: Some(s3_spec(
                    &target.endpoint,
                    &target.bucket,
                    target.secret.as_deref(),
                    &target.username_key,
                    &target.password_key,
                )),
                ..RestoreMethod::default()
            })
        }
    }
}

/// The Restore `k8up cli restore` creates: in `--namespace`, restoring snapshot `snapshot_id`.
pub fn restore_object(args: &RestoreArgs, name: &str, method: RestoreMethod, snapshot_id: &str) -> Restore {
    let mut restore = Restore::new(
        name,
        RestoreSpec {
            runnable: RunnableSpec {
                backend: args.repository.backend(),
                pod_security_context: args.run_as_user.map(|uid| PodSecurityContext {
                    run_as_user: Some(uid),
                    ..PodSecurityContext::default()
                }),
                ..RunnableSpec::default()
            },
            restore_method: Some(method),
            snapshot: Some(snapshot_id.to_owned()),
            ..RestoreSpec::default()
        },
    );
    restore.meta_mut().namespace = Some(args.cluster.namespace.clone());
    restore
}

/// The Backup `k8up cli backup` creates, in `--namespace`.
pub fn backup_object(args: &BackupArgs, name: &str) -> Backup {
    let mut backup = Backup::new(
        name,
        BackupSpec {
            runnable: RunnableSpec {
                backend: args.repository.backend(),
                ..RunnableSpec::default()
            },
            tags: (!args.tags.is_empty()).then(|| args.tags.clone()),
            ..BackupSpec::default()
        },
    );
    backup.meta_mut().namespace = Some(args.cluster.namespace.clone());
    backup
}

/// How a finished Backup ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// `Completed=True` with reason `Succeeded`.
    Succeeded {
        /// The condition message.
        message: String,
    },
    /// `Completed=True` with another reason (or a failed pre-backup), or a spec the operator rejected.
    Failed {
        /// The condition reason.
        reason: String,
        /// The condition message.
        message: String,
    },
}

/// The verdict of a Backup's status, `None` while it has none. An invalid spec counts as failed: the
/// operator waits for the spec to change, so waiting longer would never end.
pub fn verdict(status: Option<&Status>) -> Option<Verdict> {
    let status = status?;
    let message_of = |type_: &str| {
        status
            .condition(type_)
            .map(|c| (c.reason.clone(), c.message.clone()))
            .unwrap_or_default()
    };
    if is_succeeded(status) {
        let (_, message) = message_of(condition_type::COMPLETED);
        return Some(Verdict::Succeeded { message });
    }
    if is_failed(status) {
        let failed_type = if status
            .condition(condition_type::COMPLETED)
            .is_some_and(|c| c.status == "True")
        {
            condition_type::COMPLETED
        } else {
            condition_type::PRE_BACKUP_POD_READY
        };
        let (reason, message) = message_of(failed_type);
        return Some(Verdict::Failed { reason, message });
    }
    status
        .condition(condition_type::READY)
        .filter(|c| c.status == "False" && c.reason == REASON_INVALID_SPEC)
        .map(|c| Verdict::Failed {
            reason: c.reason.clone(),
            message: c.message.clone(),
        })
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
    use k8s_openapi::jiff::Timestamp;
    use rstest::rstest;

    use super::super::{UserCliCommand, parse_without_env};
    use super::*;

    const SNAPSHOT: &str = "2222bbbb00000000000000000000000000000000000000000000000000000000";

    /// `k8up cli restore` with the two required Secrets and `args`.
    fn restore_args(args: &str) -> RestoreArgs {
        match parse_without_env(&format!("restore --secretRef repo --s3secretRef s3-creds {args}")).unwrap() {
            UserCliCommand::Restore(args) => args,
            other => panic!("parsed as {other:?}"),
        }
    }

    fn backup_args(args: &str) -> BackupArgs {
        match parse_without_env(&format!("backup {args}")).unwrap() {
            UserCliCommand::Backup(args) => args,
            other => panic!("parsed as {other:?}"),
        }
    }

    fn yaml(text: &str) -> serde_json::Value {
        serde_yaml::from_str(text).unwrap()
    }

    #[rstest]
    #[case::pvc_without_claim("", "missing --claimName: --restoreMethod pvc restores into this PVC")]
    #[case::s3_without_bucket_and_secret(
        "--restoreMethod s3 --restoreToS3Endpoint http://minio:9000",
        "missing --restoreToS3Bucket, --restoreToS3Secret: --restoreMethod s3 uploads"
    )]
    #[case::s3_without_anything(
        "--restoreMethod s3 --claimName app",
        "missing --restoreToS3Endpoint, --restoreToS3Bucket, --restoreToS3Secret:"
    )]
    fn a_restore_method_without_its_flags_names_them(#[case] args: &str, #[case] message: &str) {
        let err = restore_method(&restore_args(args)).unwrap_err().to_string();
        assert!(err.starts_with(message), "{err}");
    }

    #[test]
    fn a_pvc_restore_spec_names_the_namespace_snapshot_backend_and_user() {
        let args = restore_args(
            "-n prod --claimName app --s3endpoint http://minio:9000 --s3bucket backups --runAsUser 1000 \
             --S3SecretRefUsernameKey id",
        );
        let method = restore_method(&args).unwrap();
        let restore = restore_object(&args, "cli-restore-abcde", method, SNAPSHOT);
        let expected = yaml(&format!(
            r#"
            apiVersion: k8up.io/v1
            kind: Restore
            metadata: {{ name: cli-restore-abcde, namespace: prod }}
            spec:
              backend:
                repoPasswordSecretRef: {{ name: repo, key: password }}
                s3:
                  endpoint: http://minio:9000
                  bucket: backups
                  accessKeyIDSecretRef: {{ name: s3-creds, key: id }}
                  secretAccessKeySecretRef: {{ name: s3-creds, key: password }}
              podSecurityContext: {{ runAsUser: 1000 }}
              restoreMethod: {{ folder: {{ claimName: app }} }}
              snapshot: {SNAPSHOT}
            "#
        ));
        assert_eq!(serde_json::to_value(&restore).unwrap(), expected);
        assert_eq!(restore.spec.target(), Ok(crate::crd::RestoreTarget::Folder));
    }

    #[test]
    fn an_s3_restore_uploads_with_the_restore_to_s3_secret_keys() {
        let args = restore_args(
            "--restoreMethod s3 --restoreToS3Endpoint http://target:9000 --restoreToS3Bucket restores \
             --restoreToS3Secret target-creds --RestoreToS3SecretPasswordKey secret",
        );
        let restore = restore_object(&args, "r", restore_method(&args).unwrap(), SNAPSHOT);
        let expected = yaml(
            r#"
            s3:
              endpoint: http://target:9000
              bucket: restores
              accessKeyIDSecretRef: { name: target-creds, key: username }
              secretAccessKeySecretRef: { name: target-creds, key: secret }
            "#,
        );
        assert_eq!(
            serde_json::to_value(&restore.spec.restore_method).unwrap(),
            expected
        );
        assert_eq!(restore.metadata.namespace.as_deref(), Some("default"));
        assert!(restore.spec.runnable.pod_security_context.is_none());
    }

    #[test]
    fn a_backup_without_repository_flags_leaves_the_backend_to_the_operator() {
        let backup = backup_object(&backup_args("-n prod --tags a,b --tag c"), "b");
        assert_eq!(backup.spec.runnable.backend, None);
        assert_eq!(backup.spec.tags, Some(vec!["a".into(), "b".into(), "c".into()]));
        assert_eq!(backup.metadata.namespace.as_deref(), Some("prod"));

        let backup = backup_object(&backup_args("--secretRef repo"), "b");
        let backend = backup.spec.runnable.backend.unwrap();
        let password = Some(secret_key("repo", "password"));
        assert_eq!((backend.repo_password_secret_ref, backend.s3), (password, None));
        assert!(backup.spec.tags.is_none());
    }

    #[test]
    fn generated_names_carry_five_lowercase_alphanumerics() {
        let name = generated_name("cli-restore");
        let suffix = name.strip_prefix("cli-restore-").unwrap();
        let alphabet = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
        assert!(suffix.len() == 5 && suffix.chars().all(alphabet), "{name}");
    }

    fn status(conditions: &[(&str, &str, &str)]) -> Status {
        let condition = |(type_, status, reason): &(&str, &str, &str)| Condition {
            type_: (*type_).to_owned(),
            status: (*status).to_owned(),
            reason: (*reason).to_owned(),
            message: format!("{reason} message"),
            observed_generation: None,
            last_transition_time: Time(Timestamp::UNIX_EPOCH),
        };
        Status {
            conditions: conditions.iter().map(condition).collect(),
            ..Status::default()
        }
    }

    #[rstest]
    #[case::running(&[("Ready", "True", "Ready")], None)]
    #[case::waiting_for_a_lock(&[("Ready", "False", "Waiting")], None)]
    #[case::succeeded(&[("Completed", "True", "Succeeded")], Some(("Succeeded", true)))]
    #[case::failed(&[("Completed", "True", "Failed")], Some(("Failed", false)))]
    #[case::invalid_spec_fails_at_once(&[("Ready", "False", "InvalidSpec")], Some(("InvalidSpec", false)))]
    #[case::failed_pre_backup(
        &[("PreBackupPodReady", "False", "Failed"), ("Ready", "True", "Ready")],
        Some(("Failed", false))
    )]
    fn the_verdict_comes_from_the_conditions(
        #[case] conditions: &[(&str, &str, &str)],
        #[case] expected: Option<(&str, bool)>,
    ) {
        let expected = expected.map(|(reason, succeeded)| {
            let message = format!("{reason} message");
            if succeeded {
                Verdict::Succeeded { message }
            } else {
                Verdict::Failed {
                    reason: reason.to_owned(),
                    message,
                }
            }
        });
        assert_eq!(verdict(Some(&status(conditions))), expected);
    }

    #[test]
    fn no_status_has_no_verdict() {
        assert_eq!(verdict(None), None);
    }
}
