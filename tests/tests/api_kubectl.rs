//! kubectl against the sandbox API server over HTTPS with the generated kubeconfig: apply, get,
//! patch, delete, logs and exec work as against a cluster.

mod api_common;

use std::path::Path;
use std::sync::Arc;

use k8up_tests::api::{ApiConfig, ApiServer};
use serde_json::Value;

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

struct Kubectl {
    kubeconfig: std::path::PathBuf,
    _dir: tempfile::TempDir,
    _server: Arc<ApiServer>,
}

impl Kubectl {
    async fn start() -> Result<Self> {
        let server = ApiServer::new(ApiConfig::default())?;
        server.set_node_agent(api_common::EchoAgent::shared());
        let addr = server.serve_tls("127.0.0.1:0".parse()?).await?;
        let dir = tempfile::tempdir()?;
        let kubeconfig = dir.path().join("kubeconfig");
        std::fs::write(&kubeconfig, server.kubeconfig_yaml(&format!("https://{addr}")))?;
        Ok(Self {
            kubeconfig,
            _dir: dir,
            _server: server,
        })
    }

    fn path(&self, name: &str) -> std::path::PathBuf {
        self._dir.path().join(name)
    }

    /// Run kubectl; (exit code, stdout, stderr).
    async fn run(&self, args: &[&str], stdin: Option<&Path>) -> Result<(i32, String, String)> {
        let mut cmd = tokio::process::Command::new("kubectl");
        cmd.arg("--kubeconfig").arg(&self.kubeconfig).args(args);
        cmd.env("HOME", self._dir.path());
        if let Some(f) = stdin {
            cmd.stdin(std::fs::File::open(f)?);
        }
        let out = cmd.output().await?;
        Ok((
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ))
    }

    async fn ok(&self, args: &[&str]) -> Result<String> {
        let (code, out, err) = self.run(args, None).await?;
        if code != 0 {
            return Err(format!("kubectl {args:?} failed ({code}): {err}{out}").into());
        }
        Ok(out)
    }
}

const MANIFEST: &str = r#"
apiVersion: v1
kind: Namespace
metadata:
  name: demo
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: demo
  labels:
    app: demo
data:
  mode: fast
---
apiVersion: v1
kind: Pod
metadata:
  name: app
  namespace: demo
spec:
  containers:
  - name: main
    image: busybox
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_applies_gets_patches_and_deletes_over_https() -> Result {
    let k = Kubectl::start().await?;
    let manifest = k.path("manifest.yaml");
    std::fs::write(&manifest, MANIFEST)?;
    let out = k
        .ok(&[
            "apply",
            "--validate=false",
            "-f",
            manifest.to_str().ok_or("path")?,
        ])
        .await?;
    assert!(out.contains("configmap/settings created"), "{out}");
    // A second apply is a three-way merge against the last-applied annotation.
    std::fs::write(&manifest, MANIFEST.replace("mode: fast", "mode: slow"))?;
    let out = k
        .ok(&[
            "apply",
            "--validate=false",
            "-f",
            manifest.to_str().ok_or("path")?,
        ])
        .await?;
    assert!(out.contains("configmap/settings configured"), "{out}");
    assert!(out.contains("namespace/demo unchanged"), "{out}");

    let json: Value = serde_json::from_str(
        &k.ok(&["get", "configmap", "settings", "-n", "demo", "-o", "json"])
            .await?,
    )?;
    assert_eq!(json["data"]["mode"], "slow");

    k.ok(&[
        "patch",
        "configmap",
        "settings",
        "-n",
        "demo",
        "--type",
        "merge",
        "-p",
        r#"{"data":{"extra":"1"}}"#,
    ])
    .await?;
    k.ok(&[
        "patch",
        "configmap",
        "settings",
        "-n",
        "demo",
        "-p",
        r#"{"metadata":{"labels":{"tier":"x"}}}"#,
    ])
    .await?;
    let json: Value = serde_json::from_str(
        &k.ok(&["get", "cm", "-n", "demo", "-l", "tier=x", "-o", "json"])
            .await?,
    )?;
    assert_eq!(json["items"][0]["data"]["extra"], "1");

    let table = k.ok(&["get", "pods", "-n", "demo"]).await?;
    assert!(table.contains("app"), "{table}");

    let out = k.ok(&["delete", "configmap", "settings", "-n", "demo"]).await?;
    assert!(out.contains("deleted"), "{out}");
    let (code, _, err) = k
        .run(&["get", "configmap", "settings", "-n", "demo"], None)
        .await?;
    assert_ne!(code, 0);
    assert!(err.contains("NotFound") || err.contains("not found"), "{err}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_logs_and_exec_reach_the_node_agent() -> Result {
    let k = Kubectl::start().await?;
    let manifest = k.path("manifest.yaml");
    std::fs::write(&manifest, MANIFEST)?;
    k.ok(&[
        "apply",
        "--validate=false",
        "-f",
        manifest.to_str().ok_or("path")?,
    ])
    .await?;
    let logs = k.ok(&["logs", "app", "-n", "demo"]).await?;
    assert_eq!(logs, "app line 1\napp line 2\napp line 3\n");
    let out = k
        .ok(&["exec", "app", "-n", "demo", "--", "echo", "hello", "world"])
        .await?;
    assert_eq!(out, "hello world\n");
    let input = k.path("input");
    std::fs::write(&input, "piped through stdin")?;
    let (code, out, err) = k
        .run(&["exec", "-i", "app", "-n", "demo", "--", "cat"], Some(&input))
        .await?;
    assert_eq!((code, out.as_str()), (0, "piped through stdin"), "{err}");
    let (code, _, err) = k
        .run(&["exec", "app", "-n", "demo", "--", "exit", "4"], None)
        .await?;
    assert_eq!(code, 4, "{err}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_applies_a_crd_and_then_its_custom_resources() -> Result {
    let k = Kubectl::start().await?;
    let crd = k.path("crd.yaml");
    std::fs::write(
        &crd,
        r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: gizmos.test.k8up.io
spec:
  group: test.k8up.io
  scope: Namespaced
  names: {kind: Gizmo, plural: gizmos, singular: gizmo, shortNames: [gz]}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              color: {type: string, enum: [red, blue]}
"#,
    )?;
    k.ok(&["apply", "--validate=false", "-f", crd.to_str().ok_or("path")?])
        .await?;
    let cr = k.path("cr.yaml");
    std::fs::write(
        &cr,
        "apiVersion: test.k8up.io/v1\nkind: Gizmo\nmetadata: {name: g1, namespace: default}\nspec: {color: red}\n",
    )?;
    k.ok(&["apply", "--validate=false", "-f", cr.to_str().ok_or("path")?])
        .await?;
    let json: Value = serde_json::from_str(&k.ok(&["get", "gz", "g1", "-o", "json"]).await?)?;
    assert_eq!(json["spec"]["color"], "red");
    std::fs::write(
        &cr,
        "apiVersion: test.k8up.io/v1\nkind: Gizmo\nmetadata: {name: g1, namespace: default}\nspec: {color: green}\n",
    )?;
    let (code, _, err) = k
        .run(
            &["apply", "--validate=false", "-f", cr.to_str().ok_or("path")?],
            None,
        )
        .await?;
    assert_ne!(code, 0);
    assert!(err.contains("Unsupported value: \"green\""), "{err}");
    // kubectl's default validation is server-side and strict: unknown fields are refused.
    std::fs::write(
        &cr,
        "apiVersion: test.k8up.io/v1\nkind: Gizmo\nmetadata: {name: g2, namespace: default}\nspec: {colour: red}\n",
    )?;
    let (code, _, err) = k.run(&["apply", "-f", cr.to_str().ok_or("path")?], None).await?;
    assert_ne!(code, 0);
    assert!(err.contains("unknown field \"spec.colour\""), "{err}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_apply_works_with_default_validation_and_server_side() -> Result {
    let k = Kubectl::start().await?;
    let manifest = k.path("manifest.yaml");
    std::fs::write(&manifest, MANIFEST)?;
    let (code, out, err) = k
        .run(&["apply", "-f", manifest.to_str().ok_or("path")?], None)
        .await?;
    assert_eq!(code, 0, "{err}{out}");
    std::fs::write(&manifest, MANIFEST.replace("mode: fast", "mode: ssa"))?;
    let (code, out, err) = k
        .run(
            &["apply", "--server-side", "-f", manifest.to_str().ok_or("path")?],
            None,
        )
        .await?;
    assert_eq!(code, 0, "{err}{out}");
    let json: Value = serde_json::from_str(
        &k.ok(&["get", "configmap", "settings", "-n", "demo", "-o", "json"])
            .await?,
    )?;
    assert_eq!(json["data"]["mode"], "ssa");
    Ok(())
}
