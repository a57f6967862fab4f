//! The fault suite of manifests: malformed Backups, Schedules, Restores, Prunes, Checks, Archives,
//! PreBackupPods and PodConfigs (wrong types, unknown or conflicting backends, negative counts, bad cron
//! expressions and durations, huge strings, unicode, bad references, quantities and selectors), each either
//! refused by the CRD schema at create time or reported by the operator in a condition, against one sandbox
//! with the operator running in-process with the built-in plugins. Afterwards the operator is still healthy
//! (every controller still creates Jobs for well-formed objects), nothing panicked, and nothing was made for
//! a malformed object (no Job, no pre-backup Deployment, no object of a Schedule).
//!
//! The sandbox API server checks the structural schema but not CEL (`x-kubernetes-validations`): rules the
//! CRDs state as CEL are expected to be caught by the operator's own re-check, as on a cluster whose objects
//! predate the rules.
//!
//! Cases whose current behaviour is not what a user would expect are marked `// DEFECT:` with that
//! behaviour; their expectation records what happens today, so the suite stays green while the defect stays
//! visible.

// Helpers outside `#[test]` functions fail the calling test by panicking, like assertions do.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod e2e_common;
mod operator_common;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::Parser;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::events::v1::Event;
use k8up::crd::{Archive, Backup, Check, PodConfig, PreBackupPod, Prune, Restore, Schedule};
use k8up::operator::Controllers;
use k8up::operator::metrics::Metrics;
use k8up::operator::settings::{OperatorArgs, OperatorSettings};
use k8up::plugin::PluginPlanner;
use kube::api::{ApiResource, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::{Value, json};

use e2e_common::{NS, namespace, pvc_with};
use operator_common::{LIMIT, sandbox};

/// Panics anywhere in this process (controller tasks included), recorded by the hook [`record_panics`]
/// installs.
static PANICS: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// The rest URL that [`Case`]s write for "a well-formed repository"; each case gets its own repository
/// (`http://rest.invalid:8000/<case>`) in its place, so that no case waits behind another one's Job.
const GOOD_URL: &str = "http://rest.invalid:8000/CASE";

/// A well-formed backend (a rest repository and a password Secret) of the case it appears in.
fn good() -> Value {
    json!({
        "repoPasswordSecretRef": { "name": "backup-repo", "key": "password" },
        "rest": { "url": GOOD_URL },
    })
}

/// A well-formed S3 restore target.
fn s3_target() -> Value {
    json!({
        "endpoint": "http://s3.invalid:9000",
        "bucket": "restores",
        "accessKeyIDSecretRef": { "name": "s3-credentials", "key": "username" },
        "secretAccessKeySecretRef": { "name": "s3-credentials", "key": "password" },
    })
}

/// A `kind` object whose spec is `spec` plus a well-formed backend.
fn action(kind: &str, spec: Value) -> Value {
    let mut spec = spec;
    spec["backend"] = good();
    json!({ "kind": kind, "spec": spec })
}

/// A Schedule with a well-formed backend and the sub-spec `sub` for `job_type`.
fn scheduled(job_type: &str, sub: Value) -> Value {
    json!({ "kind": "Schedule", "spec": { "backend": good(), job_type: sub } })
}

/// `n` bytes of `c`.
fn huge(c: char, n: usize) -> String {
    std::iter::repeat_n(c, n).collect()
}

const KIB: usize = 1024;
const MIB: usize = 1024 * KIB;

/// What must become of one malformed manifest.
#[derive(Debug, Clone)]
enum Expect {
    /// The API server refuses the create; its message contains this.
    Rejected(&'static str),
    /// Accepted; the object (or its probe) gets this condition, with a message containing `message`.
    Condition {
        type_: &'static str,
        status: &'static str,
        reason: &'static str,
        message: &'static str,
    },
    /// Accepted and started: its Jobs are created (the well-formed objects; or a `// DEFECT:` case).
    Started,
    /// Accepted by the API server, but it does not decode as the operator's typed model (a typed list of
    /// the kind fails with this message). The operator decodes its watches object by object: it reports
    /// `Ready=False/InvalidSpec` naming the field (the message contains this) and keeps serving every other
    /// object, also after a restart (a fresh list) while the object exists.
    Unreadable(&'static str),
}

/// `Ready=False`, reason `InvalidSpec`: the operator's own validation or a plugin refused the spec.
fn invalid(message: &'static str) -> Expect {
    Expect::Condition {
        type_: "Ready",
        status: "False",
        reason: "InvalidSpec",
        message,
    }
}

/// `Ready=False`, reason `CreationFailed`: planning or creating the Jobs failed (retried with backoff).
fn creation_failed(message: &'static str) -> Expect {
    Expect::Condition {
        type_: "Ready",
        status: "False",
        reason: "CreationFailed",
        message,
    }
}

/// A Schedule's `Ready=False`, reason `InvalidSchedule`.
fn invalid_schedule(message: &'static str) -> Expect {
    Expect::Condition {
        type_: "Ready",
        status: "False",
        reason: "InvalidSchedule",
        message,
    }
}

/// One malformed manifest.
#[derive(Debug, Clone)]
struct Case {
    /// The object's name (unless the manifest sets one) and the case's name in failure reports.
    name: &'static str,
    /// `kind` and `spec` (and `metadata`, when the case is about it); `apiVersion`, name and namespace are
    /// filled in.
    manifest: Value,
    /// A Backup (same name) that uses the object, created after it: where the outcome shows for kinds
    /// without a status (PodConfig, PreBackupPod).
    probe: Option<Value>,
    /// A namespace of its own (created by the test) instead of [`NS`], for objects that affect every
    /// Backup of their namespace.
    namespace: Option<&'static str>,
    /// Created with `fieldValidation=Strict` (server-side apply), as `kubectl apply` does by default.
    strict: bool,
    expect: Expect,
}

fn case(name: &'static str, manifest: Value, expect: Expect) -> Case {
    Case {
        name,
        manifest,
        probe: None,
        namespace: None,
        strict: false,
        expect,
    }
}

impl Case {
    fn probe(mut self, probe: Value) -> Self {
        self.probe = Some(probe);
        self
    }

    fn in_namespace(mut self, namespace: &'static str) -> Self {
        self.namespace = Some(namespace);
        self
    }

    fn strict(mut self) -> Self {
        self.strict = true;
        self
    }

    fn namespace(&self) -> &'static str {
        self.namespace.unwrap_or(NS)
    }
}

/// A Backup that uses PodConfig `name` (the probe of a PodConfig case).
fn backup_with_pod_config(name: &str) -> Value {
    json!({ "kind": "Backup", "spec": { "backend": good(), "podConfigRef": { "name": name } } })
}

/// A Backup of the case's namespace, which uses every PreBackupPod there (the probe of a PreBackupPod case).
fn backup_of_namespace() -> Value {
    json!({ "kind": "Backup", "spec": { "backend": good() } })
}

/// A PreBackupPod with the given pod template.
fn pre_backup_pod(pod: Value) -> Value {
    json!({ "kind": "PreBackupPod", "spec": { "backupCommand": "mysqldump --all-databases", "pod": pod } })
}

/// Every malformed manifest and what must become of it.
fn cases() -> Vec<Case> {
    vec![
        // --- wrong types: the structural schema refuses them ---
        case(
            "type-keepjobs-string",
            action("Backup", json!({ "keepJobs": "three" })),
            Expect::Rejected("spec.keepJobs in body must be of type integer"),
        ),
        case(
            "type-tags-object",
            action("Backup", json!({ "tags": { "daily": true } })),
            Expect::Rejected("spec.tags in body must be of type array"),
        ),
        case(
            "type-promurl-int",
            action("Backup", json!({ "promURL": 9091 })),
            Expect::Rejected("spec.promURL in body must be of type string"),
        ),
        case(
            "type-spec-list",
            json!({ "kind": "Backup", "spec": [{ "backend": good() }] }),
            Expect::Rejected("spec in body must be of type object"),
        ),
        case(
            "type-rest-url-int",
            json!({ "kind": "Check", "spec": { "backend": { "rest": { "url": 8000 } } } }),
            Expect::Rejected("spec.backend.rest.url in body must be of type string"),
        ),
        case(
            "type-retention-list",
            action("Prune", json!({ "retention": [{ "keepLast": 1 }] })),
            Expect::Rejected("spec.retention in body must be of type object"),
        ),
        case(
            "type-deadline-string",
            action("Check", json!({ "activeDeadlineSeconds": "60s" })),
            Expect::Rejected("spec.activeDeadlineSeconds in body must be of type integer"),
        ),
        case(
            "type-deadline-float",
            action("Prune", json!({ "activeDeadlineSeconds": 1.5 })),
            Expect::Rejected("spec.activeDeadlineSeconds in body must be of type integer"),
        ),
        case(
            "type-delete-string",
            json!({ "kind": "Restore", "spec": {
                "backend": good(), "restoreMethod": { "s3": s3_target() }, "delete": "yes",
            } }),
            Expect::Rejected("spec.delete in body must be of type boolean"),
        ),
        case(
            "type-volumes-object",
            json!({ "kind": "Archive", "spec": {
                "backend": good(), "volumes": { "name": "certs", "secret": { "secretName": "certs" } },
            } }),
            Expect::Rejected("spec.volumes in body must be of type array"),
        ),
        case(
            "type-schedule-backup-string",
            scheduled("backup", json!("@daily")),
            Expect::Rejected("spec.backup in body must be of type object"),
        ),
        case(
            "type-schedule-cron-int",
            scheduled("check", json!({ "schedule": 5 })),
            Expect::Rejected("spec.check.schedule in body must be of type string"),
        ),
        case(
            "type-podconfig-template-list",
            json!({ "kind": "PodConfig", "spec": { "template": [] } }),
            Expect::Rejected("spec.template in body must be of type object"),
        ),
        case(
            "type-prebackuppod-pod-string",
            pre_backup_pod(json!("mysql")),
            Expect::Rejected("spec.pod in body must be of type object"),
        )
        .in_namespace("fault-pbp-type"),
        // --- backends: unknown, absent, several, incomplete ---
        case(
            "backend-unknown-strict",
            json!({ "kind": "Backup", "spec": { "backend": {
                "repoPasswordSecretRef": { "name": "backup-repo", "key": "password" },
                "ftp": { "url": "ftp://backup.example" },
            } } }),
            Expect::Rejected("unknown field \"spec.backend.ftp\""),
        )
        .strict(),
        // Without strict field validation the API server drops the unknown field; what is left names no
        // storage type, and this operator has no global repository to fall back to.
        case(
            "backend-unknown",
            json!({ "kind": "Backup", "spec": { "backend": {
                "repoPasswordSecretRef": { "name": "backup-repo", "key": "password" },
                "ftp": { "url": "ftp://backup.example" },
            } } }),
            invalid("no S3 endpoint"),
        ),
        case(
            "backend-absent",
            json!({ "kind": "Backup", "spec": {} }),
            invalid("no repository password"),
        ),
        // CEL refuses two storage types on a cluster; the operator's re-check reports them here.
        case(
            "backend-two",
            json!({ "kind": "Backup", "spec": { "backend": {
                "repoPasswordSecretRef": { "name": "backup-repo", "key": "password" },
                "rest": { "url": "http://rest.invalid:8000/" },
                "s3": { "endpoint": "http://s3.invalid:9000", "bucket": "b" },
            } } }),
            invalid("backend sets more than one storage type (rest, s3)"),
        ),
        case(
            "backend-three",
            json!({ "kind": "Check", "spec": { "backend": {
                "repoPasswordSecretRef": { "name": "backup-repo", "key": "password" },
                "azure": { "container": "c" }, "gcs": { "bucket": "g" }, "s3": { "bucket": "s" },
            } } }),
            invalid("(azure, gcs, s3)"),
        ),
        case(
            "backend-rest-passwords-differ",
            json!({ "kind": "Backup", "spec": { "backend": {
                "repoPasswordSecretRef": { "name": "backup-repo", "key": "password" },
                "rest": {
                    "url": "http://rest.invalid:8000/",
                    "passwordSecretRef": { "name": "rest", "key": "password" },
                    "passwordSecretReg": { "name": "other", "key": "password" },
                },
            } } }),
            invalid("sets both passwordSecretRef and passwordSecretReg"),
        ),
        case(
            "backend-rest-empty-url",
            json!({ "kind": "Backup", "spec": { "backend": {
                "repoPasswordSecretRef": { "name": "backup-repo", "key": "password" },
                "rest": { "url": "" },
            } } }),
            invalid("spec.backend.rest.url is empty"),
        ),
        case(
            "backend-local-no-path",
            json!({ "kind": "Prune", "spec": { "backend": {
                "repoPasswordSecretRef": { "name": "backup-repo", "key": "password" },
                "local": {},
            } } }),
            invalid("spec.backend.local.mountPath is empty"),
        ),
        case(
            "backend-s3-no-bucket",
            json!({ "kind": "Archive", "spec": { "backend": {
                "repoPasswordSecretRef": { "name": "backup-repo", "key": "password" },
                "s3": { "endpoint": "http://s3.invalid:9000" },
            }, "restoreMethod": { "s3": s3_target() } } }),
            invalid("no S3 bucket"),
        ),
        // CEL refuses it on a cluster; the scheduler re-checks the spec of every object it would create
        // (it used to report Ready=True, and the problem showed only on the first tick's Backup).
        case(
            "backend-schedule-two",
            json!({ "kind": "Schedule", "spec": {
                "backend": {
                    "repoPasswordSecretRef": { "name": "backup-repo", "key": "password" },
                    "rest": { "url": "http://rest.invalid:8000/" },
                    "s3": { "endpoint": "http://s3.invalid:9000", "bucket": "b" },
                },
                "backup": { "schedule": "@yearly" },
            } }),
            invalid_schedule(
                "backup: the Backup it would create is invalid: spec.backend: backend sets more than one storage type",
            ),
        ),
        // --- negative keeps and history limits ---
        case(
            "negative-keeplast",
            action("Prune", json!({ "retention": { "keepLast": -1 } })),
            Expect::Rejected("spec.retention.keepLast in body should be greater than or equal to 0"),
        ),
        case(
            "negative-keepdaily",
            action("Prune", json!({ "retention": { "keepDaily": -14 } })),
            Expect::Rejected("spec.retention.keepDaily in body should be greater than or equal to 0"),
        ),
        case(
            "negative-keepjobs",
            action("Backup", json!({ "keepJobs": -1 })),
            Expect::Rejected("spec.keepJobs in body should be greater than or equal to 0"),
        ),
        case(
            "negative-schedule-history",
            json!({ "kind": "Schedule", "spec": {
                "backend": good(), "failedJobsHistoryLimit": -5, "backup": { "schedule": "@daily" },
            } }),
            Expect::Rejected("spec.failedJobsHistoryLimit in body should be greater than or equal to 0"),
        ),
        case(
            "negative-schedule-sub-history",
            json!({ "kind": "Schedule", "spec": {
                "backend": good(),
                "prune": { "schedule": "@daily", "successfulJobsHistoryLimit": -1 },
            } }),
            Expect::Rejected(
                "spec.prune.successfulJobsHistoryLimit in body should be greater than or equal to 0",
            ),
        ),
        case(
            "zero-deadline",
            action("Check", json!({ "activeDeadlineSeconds": 0 })),
            Expect::Rejected("spec.activeDeadlineSeconds in body should be greater than or equal to 1"),
        ),
        // --- bad cron expressions and @every durations ---
        case(
            "cron-minute-61",
            scheduled("backup", json!({ "schedule": "61 * * * *" })),
            invalid_schedule("the minute field \"61\" is invalid"),
        ),
        case(
            "cron-four-fields",
            scheduled("check", json!({ "schedule": "* * * *" })),
            invalid_schedule("expected 5 fields"),
        ),
        case(
            "cron-seconds-field",
            scheduled("prune", json!({ "schedule": "0 0 2 * * *" })),
            invalid_schedule("but found 6"),
        ),
        case(
            "cron-unknown-descriptor",
            scheduled("backup", json!({ "schedule": "@fortnightly" })),
            invalid_schedule("unknown descriptor \"@fortnightly\""),
        ),
        case(
            "cron-unknown-random",
            scheduled("backup", json!({ "schedule": "@minutely-random" })),
            invalid_schedule("unknown random descriptor"),
        ),
        case(
            "cron-every-millis",
            scheduled("backup", json!({ "schedule": "@every 500ms" })),
            invalid_schedule("at least 1s"),
        ),
        case(
            "cron-every-words",
            scheduled("check", json!({ "schedule": "@every soon" })),
            invalid_schedule("the @every interval \"soon\" is invalid"),
        ),
        case(
            "cron-empty",
            scheduled("backup", json!({ "schedule": "  " })),
            invalid_schedule("it is empty"),
        ),
        case(
            "cron-missing",
            scheduled("prune", json!({ "retention": { "keepLast": 3 } })),
            invalid_schedule("prune: `schedule` is not set"),
        ),
        case(
            "cron-fullwidth-digits",
            scheduled("backup", json!({ "schedule": "０ ２ * * *" })),
            invalid_schedule("the minute field"),
        ),
        // --- keepWithin durations and other retention rules ---
        case(
            "keepwithin-weeks",
            action("Prune", json!({ "retention": { "keepWithin": "2w" } })),
            Expect::Rejected("spec.retention.keepWithin in body should match"),
        ),
        case(
            "keepwithin-negative",
            action("Prune", json!({ "retention": { "keepWithinDaily": "-7d" } })),
            Expect::Rejected("spec.retention.keepWithinDaily in body should match"),
        ),
        case(
            "keepwithin-schedule-space",
            json!({ "kind": "Schedule", "spec": {
                "backend": good(),
                "prune": { "schedule": "@daily", "retention": { "keepWithinHourly": "1 d" } },
            } }),
            Expect::Rejected("spec.prune.retention.keepWithinHourly in body should match"),
        ),
        case(
            "keepwithin-zero",
            action("Prune", json!({ "retention": { "keepWithin": "0d0h" } })),
            invalid("retention.keepWithin"),
        ),
        case(
            "keeptags-comma",
            action("Prune", json!({ "retention": { "keepTags": ["db,web"] } })),
            invalid("contains a comma"),
        ),
        case(
            "retention-foreign-host",
            action("Prune", json!({ "retention": { "hostnames": ["production"] } })),
            invalid("is not this namespace's host"),
        ),
        // --- restore methods and restore filters ---
        case(
            "restore-no-method",
            json!({ "kind": "Restore", "spec": { "backend": good() } }),
            invalid("restoreMethod sets neither s3 nor folder"),
        ),
        case(
            "restore-empty-method",
            action("Restore", json!({ "restoreMethod": {} })),
            invalid("restoreMethod sets neither s3 nor folder"),
        ),
        // CEL refuses both on a cluster; the operator's re-check reports them here.
        case(
            "restore-both-methods",
            json!({ "kind": "Restore", "spec": { "backend": good(), "restoreMethod": {
                "s3": s3_target(), "folder": { "claimName": "app" },
            } } }),
            invalid("restoreMethod sets both s3 and folder"),
        ),
        case(
            "restore-folder-no-claim",
            action("Restore", json!({ "restoreMethod": { "folder": {} } })),
            Expect::Rejected("spec.restoreMethod.folder.claimName: Required value"),
        ),
        case(
            "restore-folder-empty-claim",
            action(
                "Restore",
                json!({ "restoreMethod": { "folder": { "claimName": "" } } }),
            ),
            invalid("restoreMethod.folder.claimName is empty"),
        ),
        case(
            "restore-folder-missing-pvc",
            action(
                "Restore",
                json!({ "restoreMethod": { "folder": { "claimName": "nowhere" } } }),
            ),
            invalid("PVC \"nowhere\" does not exist"),
        ),
        case(
            "restore-s3-no-scheme",
            json!({ "kind": "Restore", "spec": { "backend": good(), "restoreMethod": { "s3": {
                "endpoint": "s3.invalid:9000", "bucket": "restores",
                "accessKeyIDSecretRef": { "name": "s3-credentials", "key": "username" },
                "secretAccessKeySecretRef": { "name": "s3-credentials", "key": "password" },
            } } } }),
            invalid("needs the scheme http:// or https://"),
        ),
        case(
            "restore-s3-credentials-in-url",
            json!({ "kind": "Archive", "spec": { "backend": good(), "restoreMethod": { "s3": {
                "endpoint": "https://admin:hunter2@s3.invalid", "bucket": "restores",
            } } } }),
            invalid("carries credentials"),
        ),
        // A restoreTimeFilter that can never match a snapshot time ("YYYY-MM-DD hh:mm:ss") would restore
        // the latest snapshot instead.
        case(
            "restore-time-filter-words",
            json!({ "kind": "Restore", "spec": {
                "backend": good(),
                "restoreMethod": { "s3": s3_target() },
                "restoreTimeFilter": "last tuesday",
            } }),
            invalid("spec.restoreTimeFilter \"last tuesday\" can never match a snapshot time"),
        ),
        // --- huge strings ---
        case(
            "huge-object-name",
            json!({
                "kind": "Backup", "metadata": { "name": huge('a', 300) }, "spec": { "backend": good() },
            }),
            Expect::Rejected("a lowercase RFC 1123 subdomain"),
        ),
        case(
            "name-longer-than-job-names",
            json!({ "kind": "Prune", "metadata": { "name": huge('p', 60) }, "spec": { "backend": good() } }),
            invalid("the name is 60 characters long"),
        ),
        case(
            "huge-tag-1mib",
            action("Backup", json!({ "tags": [huge('t', MIB)] })),
            // Reported before planning (it used to break the plan policy's size limit, reported as a
            // transient CreationFailed and retried forever).
            invalid("spec.tags[0] is 1048576 bytes long"),
        ),
        case(
            "huge-cluster-name",
            action("Check", json!({ "clusterName": huge('c', 100 * KIB) })),
            invalid("spec.clusterName is 102400 bytes long"),
        ),
        case(
            "huge-rest-url",
            json!({ "kind": "Backup", "spec": { "backend": {
                "repoPasswordSecretRef": { "name": "backup-repo", "key": "password" },
                "rest": { "url": format!("http://{}:8000/", huge('h', 100 * KIB)) },
            } } }),
            // It used to reach a Job's RESTIC_REPOSITORY (the host sets that variable, so the plan size
            // limit did not apply).
            invalid("spec.backend.rest.url is 102413 bytes long"),
        ),
        case(
            "huge-pod-config-ref",
            action(
                "Backup",
                json!({ "podConfigRef": { "name": huge('n', 100 * KIB) } }),
            ),
            // Reading such a PodConfig used to fail in the client on every attempt (the URI is too long),
            // with only Warning Events.
            invalid("spec.podConfigRef.name \"nnnn"),
        ),
        // --- unicode ---
        case(
            "unicode-emoji-name",
            json!({ "kind": "Backup", "metadata": { "name": "backup-🚀" }, "spec": { "backend": good() } }),
            Expect::Rejected("a lowercase RFC 1123 subdomain"),
        ),
        case(
            "unicode-rtl-name",
            json!({
                "kind": "Check", "metadata": { "name": "check-\u{202e}kcehc" }, "spec": { "backend": good() },
            }),
            Expect::Rejected("a lowercase RFC 1123 subdomain"),
        ),
        case(
            "unicode-label-value",
            json!({
                "kind": "Backup", "metadata": { "labels": { "app": "café ☕" } }, "spec": { "backend": good() },
            }),
            // Refused like on a real API server, which checks the labels of every kind.
            Expect::Rejected("a valid label must be an empty string or consist of alphanumeric characters"),
        ),
        case(
            "unicode-nul-tag",
            action("Backup", json!({ "tags": ["daily\u{0}rm -rf"] })),
            // No process can receive it (a container runtime refuses such an argument).
            invalid("spec.tags[0] contains a NUL byte"),
        ),
        case(
            "unicode-nul-keep-tag",
            action("Prune", json!({ "retention": { "keepTags": ["a\u{0}b"] } })),
            invalid("spec.retention.keepTags[0] contains a NUL byte"),
        ),
        // --- secret references ---
        case(
            "secret-ref-no-key",
            json!({ "kind": "Backup", "spec": { "backend": {
                "repoPasswordSecretRef": { "name": "backup-repo" }, "rest": { "url": GOOD_URL },
            } } }),
            Expect::Rejected("spec.backend.repoPasswordSecretRef.key: Required value"),
        ),
        case(
            "secret-ref-empty",
            json!({ "kind": "Backup", "spec": { "backend": {
                "repoPasswordSecretRef": { "name": "", "key": "" }, "rest": { "url": GOOD_URL },
            } } }),
            // (It used to break the plan policy: a CreationFailed retried forever.)
            invalid("spec.backend.repoPasswordSecretRef.name is empty; name the Secret"),
        ),
        case(
            "secret-ref-empty-name",
            json!({ "kind": "Prune", "spec": { "backend": {
                "repoPasswordSecretRef": { "name": "", "key": "password" }, "rest": { "url": GOOD_URL },
            } } }),
            // A real API server refuses a Job referencing Secret "" (`secretKeyRef.name: Invalid value`); the
            // operator reports it before creating one.
            invalid("spec.backend.repoPasswordSecretRef.name is empty"),
        ),
        case(
            "secret-ref-bad-name",
            json!({ "kind": "Check", "spec": { "backend": {
                "repoPasswordSecretRef": { "name": "Backup_Repo!", "key": "password" },
                "rest": { "url": GOOD_URL },
            } } }),
            invalid("spec.backend.repoPasswordSecretRef.name \"Backup_Repo!\" is not a valid Secret name"),
        ),
        case(
            "secret-ref-bad-key",
            json!({ "kind": "Check", "spec": { "backend": {
                "repoPasswordSecretRef": { "name": "backup-repo", "key": "pass word" },
                "rest": { "url": GOOD_URL },
            } } }),
            invalid("spec.backend.repoPasswordSecretRef.key \"pass word\" is not a valid Secret key"),
        ),
        case(
            "secret-ref-restore-s3-empty",
            json!({ "kind": "Restore", "spec": { "backend": good(), "restoreMethod": { "s3": {
                "endpoint": "http://s3.invalid:9000", "bucket": "restores",
                "accessKeyIDSecretRef": { "name": "", "key": "" },
                "secretAccessKeySecretRef": { "name": "s3-credentials", "key": "password" },
            } } } }),
            invalid("spec.restoreMethod.s3.accessKeyIDSecretRef.name is empty"),
        ),
        // --- resource quantities ---
        case(
            "quantity-words",
            action(
                "Backup",
                json!({ "resources": { "limits": { "memory": "lots" } } }),
            ),
            // The CRD cannot check quantities (they are int-or-string); a real API server would refuse the
            // Job, so the operator reports it first.
            invalid("spec.resources.limits.memory: \"lots\" is not a Kubernetes quantity"),
        ),
        case(
            "quantity-negative",
            action("Check", json!({ "resources": { "requests": { "cpu": "-1" } } })),
            invalid("spec.resources.requests.cpu: \"-1\" is not a Kubernetes quantity"),
        ),
        // --- label selectors ---
        case(
            "selector-unknown-operator",
            json!({ "kind": "Backup", "spec": { "backend": good(), "labelSelectors": [
                { "matchExpressions": [{ "key": "app", "operator": "Maybe", "values": ["db"] }] },
            ] } }),
            // It would match nothing: a Backup that "succeeds" with nothing backed up.
            invalid(
                "spec.labelSelectors[0].matchExpressions[0].operator \"Maybe\" is not a selector operator",
            ),
        ),
        case(
            "selector-in-without-values",
            json!({ "kind": "Backup", "spec": { "backend": good(), "labelSelectors": [
                { "matchExpressions": [{ "key": "app", "operator": "In", "values": [] }] },
            ] } }),
            // Invalid in Kubernetes; it would match nothing.
            invalid(
                "spec.labelSelectors[0].matchExpressions[0]: the operator \"In\" needs at least one value",
            ),
        ),
        case(
            "selector-bad-label-value",
            json!({ "kind": "Backup", "spec": { "backend": good(), "labelSelectors": [
                { "matchLabels": { "app": "🚀 rocket" } },
            ] } }),
            invalid("spec.labelSelectors[0].matchLabels.app: \"🚀 rocket\" is not a label value"),
        ),
        case(
            "selector-no-operator",
            json!({ "kind": "Backup", "spec": { "backend": good(), "labelSelectors": [
                { "matchExpressions": [{ "key": "app" }] },
            ] } }),
            Expect::Rejected("spec.labelSelectors[0].matchExpressions[0].operator: Required value"),
        ),
        // --- PodConfig templates ---
        case(
            "podconfig-containers-string",
            json!({ "kind": "PodConfig", "spec": { "template": { "spec": { "containers": "main" } } } }),
            // The template is kept as written (preserve-unknown-fields), so the API server takes it; the
            // operator cannot read it back as a PodConfig and says so on the Backup using it (it used to
            // show only in Warning Events).
            creation_failed(
                "failed to read podconfigs: Error deserializing response: invalid type: string \"main\"",
            ),
        )
        .probe(backup_with_pod_config("podconfig-containers-string")),
        case(
            "podconfig-bad-volume-name",
            json!({ "kind": "PodConfig", "spec": { "template": { "spec": {
                "volumes": [{ "name": "Not_A_Label", "emptyDir": {} }],
            } } } }),
            creation_failed(
                "\"backup-podconfig-bad-volume-name-shared\" is invalid: spec.template.spec.volumes[0].name",
            ),
        )
        .probe(backup_with_pod_config("podconfig-bad-volume-name")),
        // --- PreBackupPods: each in a namespace of its own, since every Backup of a namespace uses them ---
        case(
            "prebackuppod-no-pod",
            json!({ "kind": "PreBackupPod", "spec": { "backupCommand": "mysqldump" } }),
            Expect::Rejected("spec.pod: Required value"),
        )
        .in_namespace("fault-pbp-no-pod"),
        case(
            "prebackuppod-containers-string",
            pre_backup_pod(json!({ "spec": { "containers": "mysql" } })),
            // Accepted (the pod template preserves unknown fields) but it does not decode: a Backup that
            // selects it fails before anything is made, naming it and the field (running without it would
            // lose its dump and still report success); the PreBackupPod gets a Warning Event.
            Expect::Condition {
                type_: "PreBackupPodReady",
                status: "False",
                reason: "InvalidSpec",
                message: "PreBackupPod prebackuppod-containers-string cannot be read (spec.pod.spec.containers",
            },
        )
        .probe(backup_of_namespace())
        .in_namespace("fault-pbp-containers"),
        case(
            "prebackuppod-no-image",
            pre_backup_pod(json!({ "spec": { "containers": [{ "name": "mysql" }] } })),
            // The pre-backup Deployment is refused on every attempt; the Backup says why (it used to show
            // only in Warning Events).
            creation_failed(
                "failed to create pre-backup deployment prebackuppod-no-image-prebackuppod-no-image: \
                 Deployment.apps \"prebackuppod-no-image-prebackuppod-no-image\" is invalid: \
                 spec.template.spec.containers[0].image: Required value",
            ),
        )
        .probe(backup_of_namespace())
        .in_namespace("fault-pbp-no-image"),
        // --- plugins and other k8up-rs extensions ---
        case(
            "plugin-unknown",
            action("Backup", json!({ "plugin": { "name": "no-such-plugin" } })),
            creation_failed("plugin no-such-plugin is not registered"),
        ),
        case(
            "plugin-empty-name",
            action("Check", json!({ "plugin": { "name": "" } })),
            Expect::Rejected("spec.plugin.name in body should be at least 1 chars long"),
        ),
        case(
            "plugin-bad-digest",
            action(
                "Prune",
                json!({ "plugin": { "name": "k8up-prune", "sha256": "XYZ" } }),
            ),
            Expect::Rejected("spec.plugin.sha256 in body should match"),
        ),
        case(
            "read-data-subset-pattern",
            action("Check", json!({ "readDataSubset": "half" })),
            Expect::Rejected("spec.readDataSubset in body should match"),
        ),
        case(
            "read-data-subset-zero-part",
            action("Check", json!({ "readDataSubset": "0/5" })),
            invalid("readDataSubset"),
        ),
        case(
            "read-data-subset-200-percent",
            action("Check", json!({ "readDataSubset": "200%" })),
            invalid("readDataSubset"),
        ),
        case(
            "volume-no-name",
            action(
                "Backup",
                json!({ "volumes": [{ "secret": { "secretName": "certs" } }] }),
            ),
            Expect::Rejected("spec.volumes[0].name: Required value"),
        ),
        case(
            "volume-mount-undeclared",
            json!({ "kind": "Check", "spec": { "backend": {
                "repoPasswordSecretRef": { "name": "backup-repo", "key": "password" },
                "rest": { "url": GOOD_URL },
                "volumeMounts": [{ "name": "ghost", "mountPath": "/certs" }],
            } } }),
            // (It used to break the plan policy: a CreationFailed retried forever.)
            invalid(
                "spec.backend.volumeMounts[0] mounts the volume \"ghost\", which spec.volumes does not declare",
            ),
        ),
        case(
            "archive-path-comma",
            json!({ "kind": "Archive", "spec": {
                "backend": good(), "restoreMethod": { "s3": s3_target() }, "paths": ["/data/a,/data/b"],
            } }),
            invalid("contains a comma"),
        ),
        // --- objects the API server stores but no typed list can read: reported, and the rest is served ---
        case(
            "unreadable-security-context",
            action("Backup", json!({ "podSecurityContext": { "runAsUser": "root" } })),
            // `podSecurityContext` is kept as written (preserve-unknown-fields), so a cluster takes
            // `runAsUser: "root"`, which no typed list of Backups can read. (Was a DEFECT: the operator's
            // typed watch then stopped reconciling every Backup after a relist.)
            Expect::Unreadable("invalid type: string \"root\", expected i64"),
        )
        .in_namespace("fault-unreadable-backup"),
        case(
            "unreadable-schedule-security-context",
            json!({ "kind": "Schedule", "spec": {
                "backend": good(),
                "podSecurityContext": { "fsGroup": "wheel" },
                "backup": { "schedule": "@yearly" },
            } }),
            // As above for Schedules (was a DEFECT: one such Schedule stopped every Schedule after a relist).
            Expect::Unreadable("invalid type: string \"wheel\", expected i64"),
        )
        .in_namespace("fault-unreadable-schedule"),
        case(
            "int32-keeplast-overflow",
            action("Prune", json!({ "retention": { "keepLast": 4_294_967_296_u64 } })),
            // `format: int32` alone bounds nothing everywhere (it used to be stored, then no typed list of
            // Prunes could read it); every int32 field of the CRDs carries an i32 `maximum`.
            Expect::Rejected("spec.retention.keepLast in body should be less than or equal to 2147483647"),
        )
        .in_namespace("fault-unreadable-prune"),
        case(
            "int32-keepjobs-overflow",
            action("Check", json!({ "keepJobs": 3_000_000_000_u64 })),
            // As above, for a history limit of a Check.
            Expect::Rejected("spec.keepJobs in body should be less than or equal to 2147483647"),
        )
        .in_namespace("fault-unreadable-check"),
        case(
            "unreadable-quantity-object",
            action(
                "Backup",
                json!({ "resources": { "limits": { "cpu": { "cores": 2 } } } }),
            ),
            // An int-or-string field holds an integer or a string, nothing else.
            Expect::Rejected("spec.resources.limits.cpu in body must be of type integer,string: \"object\""),
        )
        .in_namespace("fault-unreadable-quantity"),
    ]
}

/// The API resource of a k8up kind.
fn resource(kind: &str) -> ApiResource {
    match kind {
        "Backup" => ApiResource::erase::<Backup>(&()),
        "Schedule" => ApiResource::erase::<Schedule>(&()),
        "Restore" => ApiResource::erase::<Restore>(&()),
        "Archive" => ApiResource::erase::<Archive>(&()),
        "Check" => ApiResource::erase::<Check>(&()),
        "Prune" => ApiResource::erase::<Prune>(&()),
        "PreBackupPod" => ApiResource::erase::<PreBackupPod>(&()),
        "PodConfig" => ApiResource::erase::<PodConfig>(&()),
        other => panic!("no k8up kind {other}"),
    }
}

/// The `k8up.io/owned-by` prefix of a kind's Jobs.
fn job_type(kind: &str) -> Option<&'static str> {
    match kind {
        "Backup" => Some("backup"),
        "Restore" => Some("restore"),
        "Archive" => Some("archive"),
        "Check" => Some("check"),
        "Prune" => Some("prune"),
        _ => None,
    }
}

/// Replaces [`GOOD_URL`] (anywhere in `value`) with the repository of `name`.
fn own_repository(value: &mut Value, name: &str) {
    match value {
        Value::String(s) if s == GOOD_URL => *s = format!("http://rest.invalid:8000/{name}"),
        Value::Array(items) => items.iter_mut().for_each(|v| own_repository(v, name)),
        Value::Object(map) => map.values_mut().for_each(|v| own_repository(v, name)),
        _ => {}
    }
}

/// A manifest made whole: `apiVersion`, name (unless set) and namespace, the case's own repository.
fn object(manifest: &Value, name: &str, ns: &str) -> (String, DynamicObject) {
    let mut value = manifest.clone();
    value["apiVersion"] = json!("k8up.io/v1");
    let name = value["metadata"]["name"].as_str().unwrap_or(name).to_string();
    value["metadata"]["name"] = json!(name);
    value["metadata"]["namespace"] = json!(ns);
    own_repository(&mut value, &name);
    (name, serde_json::from_value(value).unwrap())
}

/// Creates `object` the way a client would: a POST, or server-side apply with strict field validation.
async fn create(
    client: &Client,
    ns: &str,
    name: &str,
    object: &DynamicObject,
    strict: bool,
) -> Result<(), kube::Error> {
    let kind = object.types.as_ref().map(|t| t.kind.clone()).unwrap_or_default();
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &resource(&kind));
    if strict {
        let params = PatchParams::apply("fault-manifests").validation_strict();
        api.patch(name, &params, &Patch::Apply(object)).await.map(drop)
    } else {
        api.create(&PostParams::default(), object).await.map(drop)
    }
}

/// The error message of a refused create.
fn message(error: &kube::Error) -> String {
    match error {
        kube::Error::Api(status) => status.message.clone(),
        other => other.to_string(),
    }
}

/// Where an accepted object must be looked at: (namespace, kind, name).
#[derive(Debug, Clone)]
struct Watched {
    case: &'static str,
    ns: &'static str,
    kind: String,
    name: String,
    expect: Expect,
}

/// What the test sees of an accepted object: its `status` (`null` when it has none or is gone) and the
/// Events about it as (type, reason, note).
#[derive(Debug, Default)]
struct Seen {
    status: Value,
    events: Vec<(String, String, String)>,
}

/// The object's status, and with `events` the Events about it (for a failure report).
async fn seen(client: &Client, w: &Watched, with_events: bool) -> Seen {
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), w.ns, &resource(&w.kind));
    let status = match api.get_opt(&w.name).await {
        Ok(Some(o)) => o.data.get("status").cloned().unwrap_or(Value::Null),
        _ => Value::Null,
    };
    let mut events = Vec::new();
    if with_events {
        let list = Api::<Event>::namespaced(client.clone(), w.ns)
            .list(&ListParams::default())
            .await
            .map(|l| l.items)
            .unwrap_or_default();
        events = list
            .into_iter()
            .filter(|e| {
                e.regarding.as_ref().is_some_and(|r| {
                    r.name.as_deref() == Some(w.name.as_str()) && r.kind.as_deref() == Some(w.kind.as_str())
                })
            })
            .map(|e| {
                (
                    e.type_.unwrap_or_default(),
                    e.reason.unwrap_or_default(),
                    e.note.unwrap_or_default(),
                )
            })
            .collect();
    }
    Seen { status, events }
}

fn satisfied(seen: &Seen, expect: &Expect) -> bool {
    let conditions = || seen.status["conditions"].as_array().into_iter().flatten();
    match expect {
        Expect::Rejected(_) | Expect::Unreadable(_) => false,
        Expect::Started => seen.status["started"] == json!(true),
        Expect::Condition {
            type_,
            status,
            reason,
            message,
        } => conditions().any(|c| {
            c["type"] == *type_
                && c["status"] == *status
                && c["reason"] == *reason
                && c["message"].as_str().is_some_and(|m| m.contains(message))
        }),
    }
}

/// Waits (at most [`LIMIT`]) until the object reaches its expectation; what was seen last when it does not.
async fn settle(client: &Client, w: &Watched) -> Result<(), Seen> {
    let deadline = tokio::time::Instant::now() + LIMIT;
    loop {
        let seen = seen(client, w, false).await;
        if satisfied(&seen, &w.expect) {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(self::seen(client, w, true).await);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// What was seen, as one line for failure reports (messages and notes cut to 300 characters).
fn describe(seen: &Seen) -> String {
    let cut = |s: &str| s.chars().take(300).collect::<String>();
    let conditions: Vec<String> = seen.status["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            let message = cut(c["message"].as_str().unwrap_or_default());
            format!("{}={} {}: {message}", c["type"], c["status"], c["reason"])
        })
        .collect();
    let events: Vec<String> = seen
        .events
        .iter()
        .map(|(t, r, n)| format!("{t} {r}: {}", cut(n)))
        .collect();
    format!(
        "started={} conditions [{}] events [{}]",
        seen.status["started"],
        conditions.join(" | "),
        events.join(" | ")
    )
}

/// The error of the operator's typed list of `kind` in `ns` (what its watch does at start and on relist).
async fn typed_list_error(client: &Client, kind: &str, ns: &str) -> Option<String> {
    async fn list<K>(client: &Client, ns: &str) -> Option<String>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
            + Clone
            + serde::de::DeserializeOwned
            + std::fmt::Debug,
    {
        Api::<K>::namespaced(client.clone(), ns)
            .list(&ListParams::default())
            .await
            .err()
            .map(|e| message(&e))
    }
    match kind {
        "Backup" => list::<Backup>(client, ns).await,
        "Schedule" => list::<Schedule>(client, ns).await,
        "Restore" => list::<Restore>(client, ns).await,
        "Archive" => list::<Archive>(client, ns).await,
        "Check" => list::<Check>(client, ns).await,
        "Prune" => list::<Prune>(client, ns).await,
        "PreBackupPod" => list::<PreBackupPod>(client, ns).await,
        "PodConfig" => list::<PodConfig>(client, ns).await,
        other => panic!("no k8up kind {other}"),
    }
}

#[derive(Parser)]
struct OperatorCli {
    #[command(flatten)]
    args: OperatorArgs,
}

/// Settings of `k8up operator` without any global repository, endpoint or password: every object must name
/// its repository, so an absent or unusable backend has nothing to fall back to.
fn operator_settings() -> OperatorSettings {
    let argv = ["operator", "--operator-namespace", NS, "--restartpolicy", "Never"];
    OperatorSettings::from_args(OperatorCli::try_parse_from(argv).unwrap().args).unwrap()
}

async fn start_operator(client: &Client) -> Controllers {
    let settings = operator_settings();
    let planner = PluginPlanner::with_builtins(&settings.plugins).await.unwrap();
    Controllers::start(
        client.clone(),
        Arc::new(settings),
        Arc::new(planner),
        Arc::new(Metrics::new()),
    )
}

/// Records every panic of the process in [`PANICS`] (and still prints it).
fn record_panics() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        PANICS
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(info.to_string());
        previous(info);
    }));
}

/// Well-formed objects of every action kind and a Schedule, created after all the malformed ones: each
/// controller must still work. (Schedules that are accepted fire `@yearly`, so none fires during the test.)
fn healthy() -> Vec<(&'static str, Value, Expect)> {
    vec![
        (
            "healthy-backup",
            json!({ "kind": "Backup", "spec": { "backend": good() } }),
            Expect::Started,
        ),
        (
            "healthy-check",
            json!({ "kind": "Check", "spec": { "backend": good() } }),
            Expect::Started,
        ),
        (
            "healthy-prune",
            action("Prune", json!({ "retention": { "keepLast": 3 } })),
            Expect::Started,
        ),
        (
            "healthy-restore",
            action("Restore", json!({ "restoreMethod": { "s3": s3_target() } })),
            Expect::Started,
        ),
        (
            "healthy-archive",
            action("Archive", json!({ "restoreMethod": { "s3": s3_target() } })),
            Expect::Started,
        ),
        (
            "healthy-schedule",
            scheduled("backup", json!({ "schedule": "@yearly" })),
            Expect::Condition {
                type_: "Ready",
                status: "True",
                reason: "Scheduled",
                message: "every schedule is valid",
            },
        ),
    ]
}

/// At most 500 characters of `text` (messages may quote huge fields).
fn cut(text: &str) -> String {
    text.chars().take(500).collect()
}

/// Creates every case except the unreadable ones, checking rejections on the spot; the accepted ones (or their
/// probes) to watch, and the failures so far.
async fn create_cases(client: &Client, cases: &[Case]) -> (Vec<Watched>, Vec<String>) {
    let mut failures = Vec::new();
    let mut watched = Vec::new();
    for c in cases
        .iter()
        .filter(|c| !matches!(c.expect, Expect::Unreadable(_)))
    {
        let ns = c.namespace();
        let (name, obj) = object(&c.manifest, c.name, ns);
        let kind = c.manifest["kind"].as_str().unwrap().to_string();
        let created = create(client, ns, &name, &obj, c.strict).await;
        match (&c.expect, created) {
            (Expect::Rejected(want), Err(e)) => {
                let got = message(&e);
                if !got.contains(want) {
                    failures.push(format!(
                        "{}: rejected, but not with {want:?}: {}",
                        c.name,
                        cut(&got)
                    ));
                }
            }
            (Expect::Rejected(want), Ok(())) => {
                failures.push(format!(
                    "{}: accepted, expected a rejection with {want:?}",
                    c.name
                ));
            }
            (_, Err(e)) => failures.push(format!("{}: rejected: {}", c.name, cut(&message(&e)))),
            (expect, Ok(())) => {
                let (kind, name) = match &c.probe {
                    Some(probe) => {
                        let (probe_name, probe_obj) = object(probe, c.name, ns);
                        if let Err(e) = create(client, ns, &probe_name, &probe_obj, false).await {
                            failures.push(format!("{}: probe rejected: {}", c.name, cut(&message(&e))));
                            continue;
                        }
                        (probe["kind"].as_str().unwrap().to_string(), probe_name)
                    }
                    None => (kind, name),
                };
                watched.push(Watched {
                    case: c.name,
                    ns,
                    kind,
                    name,
                    expect: expect.clone(),
                });
            }
        }
    }
    (watched, failures)
}

/// Waits for all of `watched` at once (each bounded by [`LIMIT`]); one failure per object that did not get
/// there.
async fn settle_all(client: &Client, watched: &[Watched]) -> Vec<String> {
    let outcomes = futures::future::join_all(watched.iter().map(|w| settle(client, w))).await;
    watched
        .iter()
        .zip(outcomes)
        .filter_map(|(w, outcome)| {
            let last = outcome.err()?;
            Some(format!(
                "{}: {} {} did not reach {:?}; last seen: {}",
                w.case,
                w.kind,
                w.name,
                w.expect,
                describe(&last)
            ))
        })
        .collect()
}

/// Creates the [`healthy`] objects; what to watch, and the `k8up.io/owned-by` values their Jobs carry.
async fn create_healthy(client: &Client) -> (Vec<Watched>, BTreeSet<String>) {
    let mut owners = BTreeSet::new();
    let mut watched = Vec::new();
    for (name, manifest, expect) in healthy() {
        let (name, obj) = object(&manifest, name, NS);
        let kind = manifest["kind"].as_str().unwrap().to_string();
        create(client, NS, &name, &obj, false).await.unwrap();
        if let Some(t) = job_type(&kind) {
            owners.insert(format!("{t}_{name}"));
        }
        watched.push(Watched {
            case: "the operator stopped working",
            ns: NS,
            kind,
            name,
            expect,
        });
    }
    (watched, owners)
}

/// Nothing half-made: Jobs exist for exactly the `allowed` owners, no pre-backup Deployment is left, and no
/// Schedule created an object.
async fn leftovers(client: &Client, allowed: &BTreeSet<String>) -> Vec<String> {
    let mut failures = Vec::new();
    let jobs = Api::<Job>::all(client.clone())
        .list(&ListParams::default())
        .await
        .unwrap();
    let owners: BTreeSet<String> = jobs
        .items
        .iter()
        .map(|j| {
            j.metadata
                .labels
                .as_ref()
                .and_then(|l| l.get("k8up.io/owned-by"))
                .cloned()
                .unwrap_or_else(|| format!("unlabelled job {:?}", j.metadata.name))
        })
        .collect();
    for owner in owners.difference(allowed) {
        failures.push(format!("a Job exists for a malformed object: {owner}"));
    }
    for owner in allowed.difference(&owners) {
        failures.push(format!("no Job for {owner}"));
    }
    let deployments = Api::<Deployment>::all(client.clone())
        .list(&ListParams::default())
        .await
        .unwrap();
    for d in deployments.items {
        failures.push(format!("a Deployment was left: {:?}", d.metadata.name));
    }
    for kind in ["Backup", "Check", "Prune", "Restore", "Archive"] {
        let api: Api<DynamicObject> = Api::all_with(client.clone(), &resource(kind));
        let made = api
            .list(&ListParams::default().labels("k8up.io/schedule"))
            .await
            .unwrap();
        for o in made.items {
            failures.push(format!("a Schedule created {kind} {:?}", o.metadata.name));
        }
    }
    failures
}

/// Creates the [`Expect::Unreadable`] cases, checks that a typed list of their kind fails on them, and
/// returns them to watch for the operator's report (`Ready=False/InvalidSpec` with the same message).
async fn create_unreadable(client: &Client, cases: &[Case]) -> (Vec<Watched>, Vec<String>) {
    let mut failures = Vec::new();
    let mut watched = Vec::new();
    for c in cases {
        let Expect::Unreadable(want) = c.expect else {
            continue;
        };
        let ns = c.namespace();
        let kind = c.manifest["kind"].as_str().unwrap();
        let (name, obj) = object(&c.manifest, c.name, ns);
        if let Err(e) = create(client, ns, &name, &obj, c.strict).await {
            failures.push(format!("{}: rejected: {}", c.name, cut(&message(&e))));
            continue;
        }
        match typed_list_error(client, kind, ns).await {
            Some(got) if got.contains(want) => {}
            Some(got) => failures.push(format!(
                "{}: the typed list of {kind} fails, but not with {want:?}: {}",
                c.name,
                cut(&got)
            )),
            None => failures.push(format!(
                "{}: the typed list of {kind} reads it now (give the case its real outcome)",
                c.name
            )),
        }
        watched.push(Watched {
            case: c.name,
            ns,
            kind: kind.to_string(),
            name,
            expect: invalid(want),
        });
    }
    (watched, failures)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_manifests_are_refused_or_reported_and_the_operator_keeps_working() {
    record_panics();
    let cases = cases();
    assert!(cases.len() >= 50, "only {} cases", cases.len());
    let names: BTreeSet<&str> = cases.iter().map(|c| c.name).collect();
    assert_eq!(names.len(), cases.len(), "case names must be unique");

    let sb = sandbox().await;
    let client = sb.client();
    // Every namespace has a PVC to back up, so a Backup that is wrongly accepted shows as a Job instead of
    // "nothing to back up".
    pvc_with(&client, NS, "app", "ReadWriteMany", json!({})).await;
    let own: BTreeSet<&str> = cases.iter().filter_map(|c| c.namespace).collect();
    for ns in &own {
        namespace(&client, ns).await;
        pvc_with(&client, ns, "app", "ReadWriteMany", json!({})).await;
    }
    let controllers = start_operator(&client).await;

    let (mut watched, mut failures) = create_cases(&client, &cases).await;
    let (unreadable, unreadable_failures) = create_unreadable(&client, &cases).await;
    failures.extend(unreadable_failures);
    watched.extend(unreadable);
    failures.extend(settle_all(&client, &watched).await);

    // A restart lists every kind afresh with all the malformed objects stored: the operator still works,
    // every controller handles a well-formed object created after them.
    controllers.shutdown().await;
    let controllers = start_operator(&client).await;
    let (health, mut allowed) = create_healthy(&client).await;
    failures.extend(settle_all(&client, &health).await);

    // Jobs exist only for the objects expected to start (the well-formed ones).
    allowed.extend(watched.iter().filter_map(|w| {
        let started = matches!(w.expect, Expect::Started);
        job_type(&w.kind)
            .filter(|_| started)
            .map(|t| format!("{t}_{}", w.name))
    }));
    failures.extend(leftovers(&client, &allowed).await);

    controllers.shutdown().await;
    sb.shutdown().await;
    let panics = PANICS.lock().unwrap_or_else(|p| p.into_inner()).clone();
    assert!(panics.is_empty(), "the operator panicked: {panics:#?}");
    assert!(
        failures.is_empty(),
        "{} failures among {} cases:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
