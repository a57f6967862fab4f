//! Tests of the S3 target resolution.

use super::*;
use k8up_plugin_sdk::testing::request;
use k8up_plugin_sdk::{Action, KeyRef, ValueSource, VolumeMount, kv};

fn s3(json: &str) -> S3Spec {
    serde_json::from_str(json).unwrap_or_else(|err| unreachable!("bad fixture {json}: {err}"))
}

fn global_request() -> PlanRequest {
    let mut req = request(Action::Restore);
    req.settings.extra = vec![
        kv(EXTRA_ENDPOINT, "http://global-s3:8333/"),
        kv(EXTRA_BUCKET, "restores"),
        kv(EXTRA_ACCESS_KEY_ID_SECRET, "k8up-global-restore/access-key-id"),
        kv(
            EXTRA_SECRET_ACCESS_KEY_SECRET,
            "k8up-global-restore/secret-access-key",
        ),
        kv("insecure-allow-podexec-spdy-fallback", "false"),
    ];
    req
}

fn refusal(req: &PlanRequest, spec: Option<&S3Spec>) -> String {
    match S3Target::resolve(req, spec) {
        Err(PluginError::InvalidSpec(message)) => message,
        other => unreachable!("expected invalid-spec, got {other:?}"),
    }
}

#[test]
fn the_global_target_is_used_when_the_spec_names_none() {
    let target = S3Target::resolve(&global_request(), None).unwrap_or_else(|err| unreachable!("{err:?}"));
    assert_eq!(target.url, "http://global-s3:8333/restores");
    assert_eq!(
        target.access_key_id,
        env_secret("RESTORE_ACCESSKEYID", "k8up-global-restore", "access-key-id")
    );
    assert_eq!(
        target.secret_access_key,
        env_secret(
            "RESTORE_SECRETACCESSKEY",
            "k8up-global-restore",
            "secret-access-key"
        )
    );
}

#[test]
fn each_field_of_the_spec_wins_over_its_global_counterpart() {
    let req = global_request();
    let spec = s3(r#"{"endpoint":"https://own.example.com/prefix/","bucket":"",
            "secretAccessKeySecretRef":{"name":"own-creds","key":"secret","optional":true}}"#);
    let target = S3Target::resolve(&req, Some(&spec)).unwrap_or_else(|err| unreachable!("{err:?}"));
    assert_eq!(target.url, "https://own.example.com/prefix/restores");
    assert_eq!(
        target.access_key_id,
        env_secret("RESTORE_ACCESSKEYID", "k8up-global-restore", "access-key-id")
    );
    assert_eq!(
        target.secret_access_key.value,
        ValueSource::SecretKey(KeyRef {
            name: "own-creds".into(),
            key: "secret".into(),
            optional: true
        })
    );
    let job = target.apply(Job::new(""));
    assert_eq!(
        job.env_literal_value("RESTORE_S3ENDPOINT"),
        Some("https://own.example.com/prefix/restores")
    );
    assert!(job.has_env("RESTORE_ACCESSKEYID") && job.has_env("RESTORE_SECRETACCESSKEY"));
    assert_eq!(job.env.len(), 3);
}

#[test]
fn a_target_without_endpoint_bucket_or_credentials_is_refused_naming_the_field() {
    let bare = request(Action::Archive);
    assert!(refusal(&bare, None).starts_with("restoreMethod.s3.endpoint is not set"));
    let spec = s3(r#"{"endpoint":"http://s3:9000"}"#);
    assert!(refusal(&bare, Some(&spec)).starts_with("restoreMethod.s3.bucket is not set"));
    let spec = s3(r#"{"endpoint":"http://s3:9000","bucket":"b"}"#);
    assert!(refusal(&bare, Some(&spec)).starts_with("restoreMethod.s3.accessKeyIDSecretRef is not set"));
    let spec =
        s3(r#"{"endpoint":"http://s3:9000","bucket":"b","accessKeyIDSecretRef":{"name":"c","key":"id"}}"#);
    assert!(refusal(&bare, Some(&spec)).starts_with("restoreMethod.s3.secretAccessKeySecretRef is not set"));
    let spec = s3(r#"{"accessKeyIDSecretRef":{"name":"","key":"id"}}"#);
    assert!(refusal(&global_request(), Some(&spec)).contains("needs both name and key"));
}

#[test]
fn endpoints_need_a_scheme_and_a_host_and_never_carry_credentials() {
    let req = global_request();
    let cases = [
        ("s3.example.com", "needs the scheme"),
        ("ftp://s3.example.com", "needs the scheme"),
        ("https://", "has no host"),
        ("https://s3 example.com", "spaces"),
        ("https://user:hunter2@s3.example.com", "carries credentials"),
        ("https://s3.example.com/?X-Amz-Signature=hunter2", "query"),
    ];
    for (endpoint, reason) in cases {
        let spec = S3Spec {
            endpoint: Some(endpoint.into()),
            ..S3Spec::default()
        };
        let message = refusal(&req, Some(&spec));
        assert!(
            message.starts_with("restoreMethod.s3.endpoint") && message.contains(reason),
            "{endpoint}: {message}"
        );
        assert!(!message.contains("hunter2"), "a secret leaked into {message}");
    }
    let spec = s3(r#"{"bucket":"a/b"}"#);
    assert!(refusal(&req, Some(&spec)).contains("is not a bucket name"));
}

#[test]
fn a_malformed_global_credential_reference_is_refused_with_advice() {
    for broken in ["no-slash", "/key", "secret/", "a/b/c"] {
        let mut req = global_request();
        req.settings.extra.push(kv(EXTRA_ACCESS_KEY_ID_SECRET, broken));
        let message = refusal(&req, None);
        assert!(
            message.contains(EXTRA_ACCESS_KEY_ID_SECRET) && message.contains("accessKeyIDSecretRef"),
            "{broken}: {message}"
        );
    }
}

#[test]
fn tls_options_become_restore_args_and_a_lone_client_cert_is_refused() {
    assert_eq!(tls_args(None), Ok(vec![]));
    let tls: TlsOptions = serde_json::from_str(
        r#"{"caCert":"/certs/ca.crt","clientCert":"/certs/tls.crt","clientKey":"/certs/tls.key"}"#,
    )
    .unwrap_or_default();
    assert_eq!(
        tls_args(Some(&tls)),
        Ok(vec![
            "--restoreCaCert".to_string(),
            "/certs/ca.crt".into(),
            "--restoreClientCert".into(),
            "/certs/tls.crt".into(),
            "--restoreClientKey".into(),
            "/certs/tls.key".into(),
        ])
    );
    let ca_only: TlsOptions =
        serde_json::from_str(r#"{"caCert":"/ca.crt","clientCert":""}"#).unwrap_or_default();
    assert_eq!(
        tls_args(Some(&ca_only)),
        Ok(vec!["--restoreCaCert".to_string(), "/ca.crt".into()])
    );
    let lone: TlsOptions = serde_json::from_str(r#"{"clientKey":"/k"}"#).unwrap_or_default();
    assert!(matches!(tls_args(Some(&lone)), Err(PluginError::InvalidSpec(m)) if m.contains("clientCert")));
}

#[test]
fn method_volume_mounts_are_added_once_and_incomplete_ones_are_refused() {
    let method: RestoreMethod = serde_json::from_str(
        r#"{"volumeMounts":[{"name":"ca","mountPath":"/certs","readOnly":true},
                            {"name":"ca","mountPath":"/certs","readOnly":true}]}"#,
    )
    .unwrap_or_default();
    let job = with_volume_mounts(Job::new(""), &method).unwrap_or_else(|err| unreachable!("{err:?}"));
    assert_eq!(
        job.volume_mounts,
        [VolumeMount {
            name: "ca".into(),
            mount_path: "/certs".into(),
            read_only: true,
            sub_path: None
        }]
    );
    let broken: RestoreMethod =
        serde_json::from_str(r#"{"volumeMounts":[{"name":"ca"}]}"#).unwrap_or_default();
    assert!(matches!(
        with_volume_mounts(Job::new(""), &broken),
        Err(PluginError::InvalidSpec(_))
    ));
}
