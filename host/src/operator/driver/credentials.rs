//! The operator's global credentials as a Secret in the action's namespace, so that Jobs reference them with
//! `secretKeyRef` instead of carrying them as literal env values (K8up put the global repository password
//! and S3 keys into every Job spec in clear text).
//!
//! [`global_credentials`] (pure) says which keys exist, [`offered_keys`] (pure) which of them an action's plan
//! request may reference; [`ensure_global_credentials`] server-side applies the Secret before any Job that
//! references it is created, next to the executor account, and only in namespaces whose actions use it. The
//! Secret has no owner: every action of the namespace shares it. It always holds every configured key (not
//! only the ones this action uses), so two actions of different kinds never take keys away from each other's
//! running Jobs. It is rewritten by the first action of a namespace that needs it in each minute (the
//! driver's `REAPPLY_AFTER`), so a Secret deleted by hand comes back; the values change only with the
//! operator's configuration, that is with a restart.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client};

use super::Error;
use super::apply::FIELD_MANAGER;
use super::validate::ValidatedAction;
use crate::operator::settings::{OperatorSettings, Secret as SecretValue};

/// Name of the Secret mirroring the operator's global credentials into an action's namespace.
pub const GLOBAL_CREDENTIALS_SECRET: &str = "k8up-global-credentials";
/// Key of the global restic repository password (`BACKUP_GLOBALREPOPASSWORD`).
pub const KEY_REPO_PASSWORD: &str = "repo-password";
/// Key of the global S3 access key id (`BACKUP_GLOBALACCESSKEYID`).
pub const KEY_ACCESS_KEY_ID: &str = "access-key-id";
/// Key of the global S3 secret access key (`BACKUP_GLOBALSECRETACCESSKEY`).
pub const KEY_SECRET_ACCESS_KEY: &str = "secret-access-key";
/// Key of the global restore/archive target's access key id (`BACKUP_GLOBALRESTORES3ACCESSKEYID`).
pub const KEY_RESTORE_ACCESS_KEY_ID: &str = "restore-access-key-id";
/// Key of the global restore/archive target's secret access key (`BACKUP_GLOBALRESTORES3SECRETACCESSKEY`).
pub const KEY_RESTORE_SECRET_ACCESS_KEY: &str = "restore-secret-access-key";
/// Label marking the Secret as the operator's.
const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "k8up");

/// The configured global credentials by Secret key (only the ones that are set). Pure.
pub fn global_credentials(settings: &OperatorSettings) -> BTreeMap<&'static str, &SecretValue> {
    let repo = &settings.repository;
    let restore = &settings.restore_target;
    [
        (KEY_REPO_PASSWORD, repo.password.as_ref()),
        (KEY_ACCESS_KEY_ID, repo.access_key_id.as_ref()),
        (KEY_SECRET_ACCESS_KEY, repo.secret_access_key.as_ref()),
        (KEY_RESTORE_ACCESS_KEY_ID, restore.access_key_id.as_ref()),
        (KEY_RESTORE_SECRET_ACCESS_KEY, restore.secret_access_key.as_ref()),
    ]
    .into_iter()
    .filter_map(|(key, value)| Some((key, value?)))
    .collect()
}

/// Whether the operator has a global credential under `key` (so a Job may reference it).
pub fn has_global_credential(settings: &OperatorSettings, key: &str) -> bool {
    global_credentials(settings).contains_key(key)
}

/// The global-credential keys the plan request of `action` may reference: the repository password when the
/// backend names none, the S3 keys when the repository is S3 and the backend names none, and the restore
/// target's keys for Restores and Archives. Empty when the operator has no such global credential. Pure.
pub fn offered_keys(action: &ValidatedAction) -> Vec<&'static str> {
    let settings = &action.settings;
    let backend = action.runnable.backend.as_ref();
    let mut keys = Vec::new();
    if backend
        .and_then(|b| b.repo_password_secret_ref.as_ref())
        .is_none()
    {
        keys.push(KEY_REPO_PASSWORD);
    }
    if action.repository.kind == crate::crd::BackendKind::S3 {
        let s3 = backend.and_then(|b| b.s3.as_ref());
        if s3.and_then(|s| s.access_key_id_secret_ref.as_ref()).is_none() {
            keys.push(KEY_ACCESS_KEY_ID);
        }
        if s3.and_then(|s| s.secret_access_key_secret_ref.as_ref()).is_none() {
            keys.push(KEY_SECRET_ACCESS_KEY);
        }
    }
    if matches!(
        action.job_type,
        crate::crd::JobType::Restore | crate::crd::JobType::Archive
    ) {
        keys.extend([KEY_RESTORE_ACCESS_KEY_ID, KEY_RESTORE_SECRET_ACCESS_KEY]);
    }
    keys.retain(|key| has_global_credential(settings, key));
    keys
}

/// The mirrored Secret for `namespace`, or `None` when the operator has no global credentials. Pure.
pub fn global_credentials_secret(settings: &OperatorSettings, namespace: &str) -> Option<Secret> {
    let values = global_credentials(settings);
    if values.is_empty() {
        return None;
    }
    let data = values
        .into_iter()
        .map(|(key, value)| (key.to_string(), ByteString(value.expose().as_bytes().to_vec())))
        .collect();
    Some(Secret {
        metadata: ObjectMeta {
            name: Some(GLOBAL_CREDENTIALS_SECRET.to_string()),
            namespace: Some(namespace.to_string()),
            labels: Some(BTreeMap::from([(
                MANAGED_BY.0.to_string(),
                MANAGED_BY.1.to_string(),
            )])),
            ..ObjectMeta::default()
        },
        data: Some(data),
        type_: Some("Opaque".to_string()),
        ..Secret::default()
    })
}

/// Server-side applies the global-credentials Secret into the action's namespace when the action's plan
/// request may reference it ([`offered_keys`]). The values never reach a log: errors carry only the API status.
pub async fn ensure_global_credentials(client: &Client, action: &ValidatedAction) -> Result<(), Error> {
    if offered_keys(action).is_empty() {
        return Ok(());
    }
    let Some(secret) = global_credentials_secret(&action.settings, &action.namespace) else {
        return Ok(());
    };
    let err = |source| Error::EnsureCredentials { source };
    let mut body = serde_json::to_value(&secret).map_err(|e| err(kube::Error::SerdeError(e)))?;
    body["apiVersion"] = "v1".into();
    body["kind"] = "Secret".into();
    Api::<Secret>::namespaced(client.clone(), &action.namespace)
        .patch(
            GLOBAL_CREDENTIALS_SECRET,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(body),
        )
        .await
        .map_err(err)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: crate::operator::settings::OperatorArgs,
    }

    fn settings(flags: &[&str]) -> OperatorSettings {
        let mut argv = vec!["operator", "--operator-namespace", "k8up"];
        argv.extend_from_slice(flags);
        let args = Cli::try_parse_from(argv).map(|c| c.args);
        let settings = args.ok().and_then(|a| OperatorSettings::from_args(a).ok());
        settings.unwrap_or_else(|| unreachable!("fixture settings are valid"))
    }

    #[test]
    fn only_the_configured_global_credentials_become_secret_keys() {
        let s = settings(&[
            "--globalrepopassword",
            "pw",
            "--globalrestores3secretaccesskey",
            "restore-secret",
        ]);
        let secret = global_credentials_secret(&s, "shop");
        let data = secret.as_ref().and_then(|s| s.data.clone()).unwrap_or_default();
        let keys: Vec<&str> = data.keys().map(String::as_str).collect();
        assert_eq!(keys, [KEY_REPO_PASSWORD, KEY_RESTORE_SECRET_ACCESS_KEY]);
        assert_eq!(
            data.get(KEY_REPO_PASSWORD).map(|v| v.0.as_slice()),
            Some(&b"pw"[..])
        );
        let meta = secret.map(|s| s.metadata).unwrap_or_default();
        assert_eq!(meta.name.as_deref(), Some(GLOBAL_CREDENTIALS_SECRET));
        assert_eq!(meta.namespace.as_deref(), Some("shop"));
        assert!(has_global_credential(&s, KEY_REPO_PASSWORD));
        assert!(!has_global_credential(&s, KEY_ACCESS_KEY_ID));
    }

    #[test]
    fn without_global_credentials_no_secret_is_mirrored() {
        assert!(global_credentials_secret(&settings(&[]), "shop").is_none());
    }

    #[test]
    fn the_debug_output_of_the_credentials_hides_the_values() {
        let s = settings(&["--globalsecretaccesskey", "hunter2"]);
        let dump = format!("{:?}", global_credentials(&s));
        assert!(!dump.contains("hunter2"), "{dump}");
    }
}
