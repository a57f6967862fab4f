//! Turns a pod's spec into what the runner needs: volumes materialised on disk, each container's
//! environment (`env`, `envFrom`, `valueFrom`, `$(VAR)` expansion) and its program.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{
    ConfigMap, Container, KeyToPath, PersistentVolume, PersistentVolumeClaim, Pod, Secret,
};
use kube::{Api, Client};

use super::KubeletConfig;
use super::state::POD_IP;
use crate::runtime::expand::expand;
use crate::runtime::images::{HostPrograms, program_for};
use crate::runtime::{BindMount, DEFAULT_PATH};

/// Where the ServiceAccount credentials appear in a container.
pub const SERVICE_ACCOUNT_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// Why a container cannot be configured (the kubelet's `CreateContainerConfigError`).
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    /// A referenced object or key does not exist (yet); retried.
    #[error("{0}")]
    Missing(String),
    /// The spec uses something the sandbox does not support.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// Reading from the API server failed.
    #[error("failed to read {what}")]
    Api {
        what: String,
        #[source]
        source: kube::Error,
    },
    /// Writing a volume's files failed.
    #[error("failed to write {path:?}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A pod's volumes on disk: name -> (host path, read-only).
#[derive(Debug, Default, Clone)]
pub struct PodVolumes {
    by_name: HashMap<String, (PathBuf, bool)>,
}

async fn get_opt<K>(api: &Api<K>, name: &str, what: &str) -> Result<Option<K>, PrepareError>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    api.get_opt(name).await.map_err(|source| PrepareError::Api {
        what: format!("{what} {name}"),
        source,
    })
}

fn write_file(path: &Path, bytes: &[u8], mode: u32) -> Result<(), PrepareError> {
    use std::os::unix::fs::PermissionsExt;
    let err = |source| PrepareError::Write {
        path: path.to_path_buf(),
        source,
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(err)?;
    }
    std::fs::write(path, bytes).map_err(err)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(err)
}

/// Writes `data` as files into `dir` honouring `items` (key -> path, mode) and `default_mode`.
fn materialise(
    dir: &Path,
    data: &BTreeMap<String, Vec<u8>>,
    items: Option<&[KeyToPath]>,
    default_mode: Option<i32>,
    what: &str,
) -> Result<(), PrepareError> {
    std::fs::create_dir_all(dir).map_err(|source| PrepareError::Write {
        path: dir.to_path_buf(),
        source,
    })?;
    let mode = |m: Option<i32>| m.or(default_mode).map(|m| (m as u32) & 0o7777).unwrap_or(0o644);
    match items {
        Some(items) => {
            for it in items {
                let bytes = data
                    .get(&it.key)
                    .ok_or_else(|| PrepareError::Missing(format!("key {:?} not found in {what}", it.key)))?;
                if it.path.split('/').any(|c| c == "..") {
                    return Err(PrepareError::Unsupported(format!(
                        "item path {:?} in {what}",
                        it.path
                    )));
                }
                write_file(&dir.join(&it.path), bytes, mode(it.mode))?;
            }
        }
        None => {
            for (k, bytes) in data {
                write_file(&dir.join(k), bytes, mode(None))?;
            }
        }
    }
    Ok(())
}

fn secret_data(s: &Secret) -> BTreeMap<String, Vec<u8>> {
    let mut out: BTreeMap<String, Vec<u8>> = s
        .data
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.0.clone()))
        .collect();
    for (k, v) in s.string_data.iter().flatten() {
        out.insert(k.clone(), v.as_bytes().to_vec());
    }
    out
}

fn configmap_data(c: &ConfigMap) -> BTreeMap<String, Vec<u8>> {
    let mut out: BTreeMap<String, Vec<u8>> = c
        .binary_data
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.0.clone()))
        .collect();
    for (k, v) in c.data.iter().flatten() {
        out.insert(k.clone(), v.as_bytes().to_vec());
    }
    out
}

/// Resolves the host directory of a bound PVC.
pub async fn pvc_path(client: &Client, namespace: &str, claim: &str) -> Result<PathBuf, PrepareError> {
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), namespace);
    let pvc = get_opt(&pvcs, claim, "persistentvolumeclaim")
        .await?
        .ok_or_else(|| PrepareError::Missing(format!("persistentvolumeclaim {claim:?} not found")))?;
    let pv_name = pvc
        .spec
        .as_ref()
        .and_then(|s| s.volume_name.clone())
        .filter(|n| !n.is_empty())
        .ok_or_else(|| PrepareError::Missing(format!("persistentvolumeclaim {claim:?} is not bound")))?;
    let pvs: Api<PersistentVolume> = Api::all(client.clone());
    let pv = get_opt(&pvs, &pv_name, "persistentvolume")
        .await?
        .ok_or_else(|| PrepareError::Missing(format!("persistentvolume {pv_name:?} not found")))?;
    let spec = pv.spec.unwrap_or_default();
    let path = spec
        .local
        .map(|l| l.path)
        .or(spec.host_path.map(|h| h.path))
        .ok_or_else(|| {
            PrepareError::Unsupported(format!(
                "persistentvolume {pv_name:?} is neither local nor hostPath"
            ))
        })?;
    Ok(PathBuf::from(path))
}

/// Materialises every volume of `pod` under `pod_dir/volumes`, plus the ServiceAccount directory.
pub async fn prepare_volumes(
    client: &Client,
    cfg: &KubeletConfig,
    pod: &Pod,
    pod_dir: &Path,
) -> Result<PodVolumes, PrepareError> {
    let ns = pod.metadata.namespace.clone().unwrap_or_else(|| "default".into());
    let spec = pod.spec.clone().unwrap_or_default();
    let mut out = PodVolumes::default();
    let vol_dir = pod_dir.join("volumes");
    for v in spec.volumes.iter().flatten() {
        let dir = vol_dir.join(&v.name);
        if let Some(c) = &v.persistent_volume_claim {
            let path = pvc_path(client, &ns, &c.claim_name).await?;
            out.by_name
                .insert(v.name.clone(), (path, c.read_only.unwrap_or(false)));
        } else if let Some(s) = &v.secret {
            let name = s.secret_name.clone().unwrap_or_default();
            let api: Api<Secret> = Api::namespaced(client.clone(), &ns);
            match get_opt(&api, &name, "secret").await? {
                Some(secret) => materialise(
                    &dir,
                    &secret_data(&secret),
                    s.items.as_deref(),
                    s.default_mode,
                    &format!("secret {name:?}"),
                )?,
                None if s.optional == Some(true) => materialise(&dir, &BTreeMap::new(), None, None, "")?,
                None => return Err(PrepareError::Missing(format!("secret {name:?} not found"))),
            }
            out.by_name.insert(v.name.clone(), (dir, true));
        } else if let Some(c) = &v.config_map {
            let name = c.name.clone();
            let api: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
            match get_opt(&api, &name, "configmap").await? {
                Some(cm) => materialise(
                    &dir,
                    &configmap_data(&cm),
                    c.items.as_deref(),
                    c.default_mode,
                    &format!("configmap {name:?}"),
                )?,
                None if c.optional == Some(true) => materialise(&dir, &BTreeMap::new(), None, None, "")?,
                None => return Err(PrepareError::Missing(format!("configmap {name:?} not found"))),
            }
            out.by_name.insert(v.name.clone(), (dir, true));
        } else if v.empty_dir.is_some() {
            std::fs::create_dir_all(&dir).map_err(|source| PrepareError::Write {
                path: dir.clone(),
                source,
            })?;
            out.by_name.insert(v.name.clone(), (dir, false));
        } else {
            return Err(PrepareError::Unsupported(format!(
                "volume {:?}: only persistentVolumeClaim, secret, configMap and emptyDir are supported",
                v.name
            )));
        }
    }
    if spec.automount_service_account_token != Some(false) {
        let sa = spec
            .service_account_name
            .clone()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "default".into());
        let token = (cfg.tokens)(&ns, &sa)
            .ok_or_else(|| PrepareError::Missing(format!("no token for serviceaccount {ns}/{sa}")))?;
        let dir = pod_dir.join("serviceaccount");
        write_file(&dir.join("token"), token.as_bytes(), 0o644)?;
        write_file(&dir.join("ca.crt"), cfg.ca_pem.as_bytes(), 0o644)?;
        write_file(&dir.join("namespace"), ns.as_bytes(), 0o644)?;
        out.by_name.insert(SERVICE_ACCOUNT_VOLUME.into(), (dir, true));
    }
    Ok(out)
}

/// The internal name of the ServiceAccount volume.
const SERVICE_ACCOUNT_VOLUME: &str = "\0serviceaccount";

/// The bind mounts of one container.
pub fn container_mounts(volumes: &PodVolumes, c: &Container) -> Result<Vec<BindMount>, PrepareError> {
    let mut out = Vec::new();
    for m in c.volume_mounts.iter().flatten() {
        let (path, ro) = volumes
            .by_name
            .get(&m.name)
            .ok_or_else(|| PrepareError::Unsupported(format!("volumeMount {:?} names no volume", m.name)))?;
        let mut source = path.clone();
        if let Some(sub) = m.sub_path.as_ref().filter(|s| !s.is_empty()) {
            if sub.split('/').any(|c| c == "..") || sub.starts_with('/') {
                return Err(PrepareError::Unsupported(format!("subPath {sub:?}")));
            }
            source = source.join(sub);
            if !source.exists() {
                std::fs::create_dir_all(&source).map_err(|e| PrepareError::Write {
                    path: source.clone(),
                    source: e,
                })?;
            }
        }
        out.push(BindMount {
            source,
            target: m.mount_path.clone(),
            read_only: *ro || m.read_only == Some(true),
        });
    }
    if let Some((dir, _)) = volumes.by_name.get(SERVICE_ACCOUNT_VOLUME)
        && !out
            .iter()
            .any(|m| m.target.trim_end_matches('/') == SERVICE_ACCOUNT_DIR)
    {
        out.push(BindMount {
            source: dir.clone(),
            target: SERVICE_ACCOUNT_DIR.into(),
            read_only: true,
        });
    }
    Ok(out)
}

/// Reads a `fieldRef` path of the pod.
fn field_ref(pod: &Pod, path: &str) -> Result<String, PrepareError> {
    let m = &pod.metadata;
    let spec = pod.spec.clone().unwrap_or_default();
    let label = |prefix: &str, map: Option<&BTreeMap<String, String>>| {
        path.strip_prefix(prefix)
            .and_then(|r| r.strip_suffix("']"))
            .map(|k| map.and_then(|m| m.get(k)).cloned().unwrap_or_default())
    };
    Ok(match path {
        "metadata.name" => m.name.clone().unwrap_or_default(),
        "metadata.namespace" => m.namespace.clone().unwrap_or_default(),
        "metadata.uid" => m.uid.clone().unwrap_or_default(),
        "spec.nodeName" => spec.node_name.unwrap_or_default(),
        "spec.serviceAccountName" => spec.service_account_name.unwrap_or_else(|| "default".into()),
        "status.podIP" | "status.hostIP" => POD_IP.into(),
        "status.podIPs" | "status.hostIPs" => POD_IP.into(),
        _ => {
            if let Some(v) = label("metadata.labels['", m.labels.as_ref()) {
                v
            } else if let Some(v) = label("metadata.annotations['", m.annotations.as_ref()) {
                v
            } else {
                return Err(PrepareError::Unsupported(format!("fieldRef {path:?}")));
            }
        }
    })
}

/// The HTTPS endpoint pods reach the API server at.
#[derive(Debug, Clone)]
pub struct ServiceEndpoint {
    pub host: String,
    pub port: u16,
}

/// The complete environment of a container, in Kubernetes order: service variables, `envFrom`, then
/// `env` (each value expanded against what is defined before it); `PATH`, `HOME` and `HOSTNAME`
/// default as an image and the kubelet would set them.
pub async fn container_env(
    client: &Client,
    pod: &Pod,
    c: &Container,
    api: &ServiceEndpoint,
) -> Result<Vec<(String, String)>, PrepareError> {
    let ns = pod.metadata.namespace.clone().unwrap_or_else(|| "default".into());
    let mut env: Vec<(String, String)> = Vec::new();
    let set = |env: &mut Vec<(String, String)>, k: String, v: String| {
        if let Some(e) = env.iter_mut().find(|(n, _)| *n == k) {
            e.1 = v;
        } else {
            env.push((k, v));
        }
    };
    let port = api.port.to_string();
    for (k, v) in [
        ("KUBERNETES_SERVICE_HOST", api.host.clone()),
        ("KUBERNETES_SERVICE_PORT", port.clone()),
        ("KUBERNETES_SERVICE_PORT_HTTPS", port.clone()),
        ("KUBERNETES_PORT", format!("tcp://{}:{port}", api.host)),
        ("KUBERNETES_PORT_443_TCP", format!("tcp://{}:{port}", api.host)),
        ("KUBERNETES_PORT_443_TCP_PROTO", "tcp".into()),
        ("KUBERNETES_PORT_443_TCP_ADDR", api.host.clone()),
        ("KUBERNETES_PORT_443_TCP_PORT", port.clone()),
    ] {
        set(&mut env, k.to_string(), v);
    }
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    for from in c.env_from.iter().flatten() {
        let prefix = from.prefix.clone().unwrap_or_default();
        let (data, optional, what) = if let Some(s) = &from.secret_ref {
            (
                get_opt(&secrets, &s.name, "secret")
                    .await?
                    .map(|s| secret_data(&s)),
                s.optional,
                format!("secret {:?}", s.name),
            )
        } else if let Some(cm) = &from.config_map_ref {
            (
                get_opt(&configmaps, &cm.name, "configmap")
                    .await?
                    .map(|c| configmap_data(&c)),
                cm.optional,
                format!("configmap {:?}", cm.name),
            )
        } else {
            continue;
        };
        match data {
            Some(data) => {
                for (k, v) in data {
                    set(
                        &mut env,
                        format!("{prefix}{k}"),
                        String::from_utf8_lossy(&v).into_owned(),
                    );
                }
            }
            None if optional == Some(true) => {}
            None => return Err(PrepareError::Missing(format!("{what} not found"))),
        }
    }
    for e in c.env.iter().flatten() {
        let value = if let Some(from) = &e.value_from {
            if let Some(r) = &from.secret_key_ref {
                let s = get_opt(&secrets, &r.name, "secret").await?;
                match s.and_then(|s| secret_data(&s).remove(&r.key)) {
                    Some(v) => String::from_utf8_lossy(&v).into_owned(),
                    None if r.optional == Some(true) => continue,
                    None => {
                        return Err(PrepareError::Missing(format!(
                            "key {:?} of secret {:?} not found",
                            r.key, r.name
                        )));
                    }
                }
            } else if let Some(r) = &from.config_map_key_ref {
                let cm = get_opt(&configmaps, &r.name, "configmap").await?;
                match cm.and_then(|c| configmap_data(&c).remove(&r.key)) {
                    Some(v) => String::from_utf8_lossy(&v).into_owned(),
                    None if r.optional == Some(true) => continue,
                    None => {
                        return Err(PrepareError::Missing(format!(
                            "key {:?} of configmap {:?} not found",
                            r.key, r.name
                        )));
                    }
                }
            } else if let Some(r) = &from.field_ref {
                field_ref(pod, &r.field_path)?
            } else {
                return Err(PrepareError::Unsupported(format!(
                    "valueFrom of env {:?}",
                    e.name
                )));
            }
        } else {
            let snapshot = env.clone();
            expand(e.value.as_deref().unwrap_or(""), |n| {
                snapshot.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone())
            })
        };
        set(&mut env, e.name.clone(), value);
    }
    let pod_name = pod.metadata.name.clone().unwrap_or_default();
    let hostname = pod
        .spec
        .as_ref()
        .and_then(|s| s.hostname.clone())
        .unwrap_or(pod_name);
    for (k, v) in [
        ("PATH", DEFAULT_PATH.to_string()),
        ("HOME", "/".to_string()),
        ("HOSTNAME", hostname),
    ] {
        if !env.iter().any(|(n, _)| n == k) {
            env.push((k.to_string(), v));
        }
    }
    Ok(env)
}

/// argv and program binds of a container, with `$(VAR)` expanded in command and args.
pub fn container_program(
    c: &Container,
    env: &[(String, String)],
    hosts: &HostPrograms,
) -> Result<(Vec<String>, Vec<BindMount>), PrepareError> {
    let look = |n: &str| env.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
    let command: Vec<String> = c.command.iter().flatten().map(|s| expand(s, look)).collect();
    let args: Vec<String> = c.args.iter().flatten().map(|s| expand(s, look)).collect();
    let image = c.image.clone().unwrap_or_default();
    let p =
        program_for(&image, &command, &args, hosts).map_err(|e| PrepareError::Unsupported(e.to_string()))?;
    let binds = p
        .binds
        .into_iter()
        .map(|(source, target)| BindMount {
            source,
            target,
            read_only: true,
        })
        .collect();
    Ok((p.argv, binds))
}
