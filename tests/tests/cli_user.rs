//! `k8up cli restore|backup|snapshots` as a user runs them: the built binary (`$K8UP_BINARY` or
//! `target/debug/k8up`; `cargo test --workspace --test cli_user --test cli` builds it) as a subprocess
//! against the sandbox through its kubeconfig, asserting on the objects it creates and on what it prints.
//!
//! The Snapshot resources are created by the tests (as the operator would mirror them), so a restore's
//! snapshot resolution is checked without restic.

// Helpers outside `#[test]` functions fail the calling test by panicking, like assertions do.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod e2e_common;
mod operator_common;

use std::fmt::Debug;
use std::process::Output;

use e2e_common::namespace;
use k8s_openapi::NamespaceResourceScope;
use k8up::crd::{Backup, Restore, Snapshot};
use k8up_tests::cluster::{Sandbox, default_k8up_binary};
use kube::api::{ListParams, PostParams};
use kube::{Api, Client, Resource};
use operator_common::*;
use serde::de::DeserializeOwned;
use serde_json::json;

const OLD_APP: &str = "1111aaaa5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e";
const NEW_APP: &str = "2222bbbb5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e";
const NEWEST_DB: &str = "2222cccc5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e";
/// In namespace `default` and newer than everything in `team-a`: a restore in `team-a` must never pick it.
const OTHER_NAMESPACE: &str = "9999dddd5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e";

/// Runs `k8up cli <args> --kubeconfig <sandbox>` (`args` split at whitespace) with an empty environment, so
/// no `NAMESPACE` or `KUBECONFIG` of the caller leaks in.
async fn cli(sb: &Sandbox, args: &str) -> Output {
    cli_with_kubeconfig(sb.kubeconfig_path().to_str().unwrap(), args).await
}

async fn cli_with_kubeconfig(kubeconfig: &str, args: &str) -> Output {
    let binary = default_k8up_binary().expect("no k8up binary: build it with `cargo build -p k8up`");
    tokio::process::Command::new(&binary)
        .arg("cli")
        .args(args.split_whitespace())
        .args(["--kubeconfig", kubeconfig])
        .env_clear()
        .env("NO_COLOR", "1")
        .output()
        .await
        .unwrap_or_else(|e| panic!("failed to run {}: {e}", binary.display()))
}

/// The repository Secrets `restore` requires.
const SECRETS: &str = "--secretRef repo-password --s3secretRef repo-s3";

/// `k8up cli restore -n <ns> <args> <SECRETS>`.
async fn restore(sb: &Sandbox, ns: &str, args: &str) -> Output {
    cli(sb, &format!("restore -n {ns} {args} {SECRETS}")).await
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Asserts success and returns stdout.
fn succeeded(out: &Output) -> String {
    let (o, e) = (stdout(out), stderr(out));
    assert!(out.status.success(), "k8up cli failed ({}): {o}{e}", out.status);
    o
}

/// Asserts exit status 1 (what `main` returns for a failed command) and returns stderr.
fn failed(out: &Output) -> String {
    assert_eq!(out.status.code(), Some(1), "{}{}", stdout(out), stderr(out));
    stderr(out)
}

/// A Snapshot resource as the operator mirrors one (named after the id's first 8 characters).
async fn snapshot(client: &Client, ns: &str, id: &str, date: &str, path: &str) {
    let snapshot: Snapshot = serde_json::from_value(json!({
        "apiVersion": "k8up.io/v1",
        "kind": "Snapshot",
        "metadata": { "name": &id[..8] },
        "spec": {
            "id": id,
            "date": date,
            "paths": [path],
            "hostname": ns,
            "repository": format!("s3:http://minio:9000/{ns}"),
            "tags": ["daily"],
        },
    }))
    .unwrap();
    Api::<Snapshot>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &snapshot)
        .await
        .unwrap();
}

/// A sandbox with namespace `team-a` holding three snapshots (two of `/data/app`, the newest of all of
/// `/data/db`) and namespace `default` holding a newer one.
async fn sandbox_with_snapshots() -> Sandbox {
    let sb = sandbox().await;
    let client = sb.client();
    namespace(&client, "team-a").await;
    snapshot(&client, "team-a", NEW_APP, "2024-05-02T10:00:00Z", "/data/app").await;
    snapshot(&client, "team-a", NEWEST_DB, "2024-05-03T10:00:00Z", "/data/db").await;
    snapshot(&client, "team-a", OLD_APP, "2024-05-01T10:00:00Z", "/data/app").await;
    snapshot(
        &client,
        "default",
        OTHER_NAMESPACE,
        "2024-06-01T10:00:00Z",
        "/data/app",
    )
    .await;
    sb
}

/// Every object of kind `K` in `ns`.
async fn list<K>(client: &Client, ns: &str) -> Vec<K>
where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()> + Clone + DeserializeOwned + Debug,
{
    let api = Api::<K>::namespaced(client.clone(), ns);
    api.list(&ListParams::default()).await.unwrap().items
}

/// The object `ns/name` of kind `K`.
async fn get<K>(client: &Client, ns: &str, name: &str) -> K
where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()> + Clone + DeserializeOwned + Debug,
{
    let api = Api::<K>::namespaced(client.clone(), ns);
    api.get(name).await.unwrap_or_else(|e| panic!("{ns}/{name}: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_creates_the_restore_in_its_namespace_with_the_full_id_of_the_resolved_snapshot() {
    let sb = sandbox_with_snapshots().await;
    let client = sb.client();

    // `latest` with a claim: the newest snapshot of /data/app in team-a (not the newer /data/db one, not the
    // newer one in `default`).
    let out = succeeded(&restore(&sb, "team-a", "--claimName app").await);
    let created: Vec<Restore> = list(&client, "team-a").await;
    assert_eq!(created.len(), 1, "{out}");
    let first = &created[0];
    let name = first.metadata.name.clone().unwrap();
    let suffix = name.strip_prefix("cli-restore-").unwrap();
    let random = suffix
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    assert!(suffix.len() == 5 && random, "{name}");
    assert_eq!(first.spec.snapshot.as_deref(), Some(NEW_APP));
    assert_eq!(
        serde_json::to_value(&first.spec.restore_method).unwrap(),
        json!({ "folder": { "claimName": "app" } })
    );
    assert_eq!(
        serde_json::to_value(&first.spec.runnable.backend).unwrap(),
        json!({
            "repoPasswordSecretRef": { "name": "repo-password", "key": "password" },
            "s3": {
                "accessKeyIDSecretRef": { "name": "repo-s3", "key": "username" },
                "secretAccessKeySecretRef": { "name": "repo-s3", "key": "password" },
            },
        })
    );
    assert!(out.contains(&format!("created Restore team-a/{name}\n")), "{out}");
    let chosen = format!("snapshot: {NEW_APP} (2024-05-02T10:00:00Z, /data/app)\n");
    assert!(out.contains(&chosen), "{out}");
    let in_default: Vec<Restore> = list(&client, "default").await;
    assert!(in_default.is_empty(), "K8up's bug: created in default");

    // An id prefix resolves to the full id, whatever the claim; `--namespace` is `-n`.
    let args = format!("restore --namespace team-a --snapshot 1111 --claimName app {SECRETS}");
    succeeded(&cli(&sb, &format!("{args} --restoreName pick-old --runAsUser 1000")).await);
    let old: Restore = get(&client, "team-a", "pick-old").await;
    assert_eq!(old.spec.snapshot.as_deref(), Some(OLD_APP));
    let security = old.spec.runnable.pod_security_context;
    assert_eq!(security.and_then(|c| c.run_as_user), Some(1000));

    // `latest` without a claim is the newest of the namespace; the s3 method uploads to the given target.
    let target = "--restoreToS3Endpoint http://target:9000 --restoreToS3Bucket restores \
                  --restoreToS3Secret target-s3 --RestoreToS3SecretUsernameKey id";
    let repository = "--s3endpoint http://minio:9000 --s3bucket team-a";
    let args = format!("--restoreName to-s3 --restoreMethod s3 {target} {repository}");
    succeeded(&restore(&sb, "team-a", &args).await);
    let to_s3: Restore = get(&client, "team-a", "to-s3").await;
    assert_eq!(to_s3.spec.snapshot.as_deref(), Some(NEWEST_DB));
    assert_eq!(
        serde_json::to_value(&to_s3.spec.restore_method).unwrap(),
        json!({ "s3": {
            "endpoint": "http://target:9000",
            "bucket": "restores",
            "accessKeyIDSecretRef": { "name": "target-s3", "key": "id" },
            "secretAccessKeySecretRef": { "name": "target-s3", "key": "password" },
        }})
    );
    let s3 = to_s3.spec.runnable.backend.unwrap().s3.unwrap();
    assert_eq!(
        (s3.endpoint.as_deref(), s3.bucket.as_deref()),
        (Some("http://minio:9000"), Some("team-a"))
    );

    // A dry run prints the object it would create and creates nothing.
    let yaml = succeeded(&restore(&sb, "team-a", "--restoreName dry --claimName app --dry-run").await);
    let printed: Restore = serde_yaml::from_str(&yaml).unwrap();
    assert_eq!(printed.metadata.namespace.as_deref(), Some("team-a"));
    assert_eq!(printed.spec.snapshot.as_deref(), Some(NEW_APP));
    assert_eq!(list::<Restore>(&client, "team-a").await.len(), 3);
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_fails_with_a_message_and_creates_nothing_when_the_snapshot_or_a_flag_is_wrong() {
    let sb = sandbox_with_snapshots().await;
    let client = sb.client();

    let err = failed(&restore(&sb, "team-a", "--claimName app --snapshot 2222").await);
    let ambiguous = "id prefix 2222 matches 2 snapshots in namespace team-a; give more characters of one of:";
    assert!(err.contains(ambiguous), "{err}");
    let listed = err.contains(NEW_APP) && err.contains(NEWEST_DB) && !err.contains(OLD_APP);
    assert!(listed, "{err}");

    let err = failed(&restore(&sb, "team-a", "--claimName app --snapshot 9999").await);
    let unknown = "no snapshot in namespace team-a matches id prefix 9999; candidates: ";
    assert!(err.contains(unknown), "{err}");
    // The candidates are team-a's, newest first; `default`'s snapshot 9999dddd is not one of them.
    let at = |id: &str| err.find(id).unwrap_or_else(|| panic!("{id} missing: {err}"));
    assert!(at(NEWEST_DB) < at(NEW_APP) && at(NEW_APP) < at(OLD_APP), "{err}");
    assert!(!err.contains(OTHER_NAMESPACE), "{err}");

    let err = failed(&restore(&sb, "team-a", "--claimName web").await);
    assert!(
        err.contains("no snapshot of /data/web in namespace team-a"),
        "{err}"
    );

    namespace(&client, "empty").await;
    let err = failed(&restore(&sb, "empty", "--claimName app").await);
    assert!(err.contains("no Snapshot resources in namespace empty"), "{err}");

    // Flags are checked before any API call: an unreadable kubeconfig is never reached.
    let args = format!("restore -n team-a {SECRETS}");
    let err = failed(&cli_with_kubeconfig("/nonexistent/kubeconfig", &args).await);
    let claim = "missing --claimName: --restoreMethod pvc restores into this PVC";
    assert!(err.contains(claim), "{err}");
    let err = failed(&restore(&sb, "team-a", "--restoreMethod s3 --restoreToS3Bucket restores").await);
    let target = "missing --restoreToS3Endpoint, --restoreToS3Secret: --restoreMethod s3";
    assert!(err.contains(target), "{err}");

    for ns in ["team-a", "default", "empty"] {
        assert!(list::<Restore>(&client, ns).await.is_empty(), "a Restore in {ns}");
    }
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_creates_a_tagged_backup_in_its_namespace_and_wait_reports_how_it_ended() {
    let sb = sandbox().await;
    let client = sb.client();
    namespace(&client, "quiet").await;
    namespace(&client, "broken").await;
    // Every backup Job fails; a namespace without PVCs has nothing to back up and succeeds at once.
    bound_pvc(&client, "broken", "data").await;
    let planner = ScriptPlanner {
        default_script: Some("echo disk on fire >&2; exit 1".to_owned()),
    };
    let controllers = start_operator_with(&client, settings(&[]), planner);

    let out = succeeded(&cli(&sb, "backup -n quiet --name nightly --tags cli,manual --tag x").await);
    assert_eq!(out, "created Backup quiet/nightly\n");
    let nightly: Backup = get(&client, "quiet", "nightly").await;
    let tags = ["cli", "manual", "x"].map(str::to_owned).to_vec();
    assert_eq!(nightly.spec.tags, Some(tags));
    // No repository flag: the Backup leaves the repository to the operator's global settings.
    assert_eq!(nightly.spec.runnable.backend, None);
    assert!(list::<Backup>(&client, "default").await.is_empty());

    let out = succeeded(&cli(&sb, "backup -n quiet --wait --wait-timeout 60s").await);
    let name = out
        .lines()
        .next()
        .unwrap()
        .strip_prefix("created Backup quiet/")
        .unwrap();
    assert!(
        name.starts_with("cli-backup-") && name.len() == "cli-backup-".len() + 5,
        "{out}"
    );
    let verdict = format!("Backup quiet/{name} succeeded: nothing to backup\n");
    assert!(out.ends_with(&verdict), "{out}");

    let args = "backup -n broken --name doomed --wait --wait-timeout 60s --secretRef repo-password";
    let output = cli(&sb, args).await;
    let err = failed(&output);
    assert_eq!(stdout(&output), "created Backup broken/doomed\n");
    assert!(
        err.contains("the Backup broken/doomed failed (Failed): "),
        "{err}"
    );
    let doomed: Backup = get(&client, "broken", "doomed").await;
    let completed = doomed.status.unwrap().condition("Completed").cloned().unwrap();
    assert_eq!(completed.reason, "Failed");
    assert!(err.contains(&completed.message), "{err}");
    let password = doomed.spec.runnable.backend.unwrap().repo_password_secret_ref;
    assert_eq!(password.map(|r| r.name).as_deref(), Some("repo-password"));

    controllers.shutdown().await;
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_lists_only_the_namespace_newest_first_and_all_namespaces_on_request() {
    let sb = sandbox_with_snapshots().await;

    let table = succeeded(&cli(&sb, "snapshots -n team-a").await);
    let rows: Vec<Vec<&str>> = table.lines().map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(rows.len(), 4, "{table}");
    assert_eq!(rows[0], ["ID", "DATE", "HOST", "PATHS", "TAGS", "REPOSITORY"]);
    let newest = ["2222cccc", "2024-05-03T10:00:00Z", "team-a", "/data/db", "daily"];
    assert_eq!(rows[1][..5], newest, "{table}");
    assert_eq!(rows[1][5], "s3:http://minio:9000/team-a", "{table}");
    let ids: Vec<&str> = rows[1..].iter().map(|r| r[0]).collect();
    assert_eq!(ids, ["2222cccc", "2222bbbb", "1111aaaa"], "{table}");

    let table = succeeded(&cli(&sb, "snapshots --all-namespaces").await);
    let rows: Vec<Vec<&str>> = table.lines().map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(rows.len(), 5, "{table}");
    assert_eq!(rows[0][..2], ["NAMESPACE", "ID"], "{table}");
    assert_eq!(rows[1][..2], ["default", "9999dddd"], "{table}");

    let json = succeeded(&cli(&sb, "snapshots -n team-a -o json").await);
    let listed: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(listed["kind"], "List");
    let items = listed["items"].as_array().unwrap();
    let ids: Vec<&str> = items.iter().map(|i| i["spec"]["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [NEWEST_DB, NEW_APP, OLD_APP]);
    assert!(!json.contains("managedFields"), "{json}");

    let yaml = succeeded(&cli(&sb, "snapshots -n default -o yaml").await);
    let listed: serde_json::Value = serde_yaml::from_str(&yaml).unwrap();
    assert_eq!(listed["items"].as_array().unwrap().len(), 1, "{yaml}");
    assert_eq!(listed["items"][0]["spec"]["id"], OTHER_NAMESPACE);
    sb.shutdown().await;
}
