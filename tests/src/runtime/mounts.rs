//! The mount plan of one container: a shell script run inside a fresh mount namespace that builds the
//! container's root and bind-mounts its volumes, then `chroot`s into that root.
//!
//! # Strategy (why nothing is left on the host)
//!
//! Every container process starts as `unshare --mount --uts --propagation private -- /bin/sh -c SCRIPT`,
//! so every mount below exists only in the container's own namespace and disappears with its last
//! process; the host namespace is never mounted into, which is also what makes removing the scratch
//! directory safe. The script:
//!
//! 1. mounts a tmpfs on the container's `root` directory (inside the sandbox scratch dir);
//! 2. mirrors the host's `/` into it: each top-level host directory is recursively bind-mounted
//!    **read-only** (so a container cannot leave files on the host outside its volumes), each top-level
//!    symlink (`/bin -> usr/bin`) is recreated; `/proc` is bound read-write, `/tmp` is a private scratch
//!    directory, `/run` is an empty directory of the tmpfs (so `/var/run/secrets/...` lands there), and
//!    `/dev` is a small tmpfs with the usual device nodes bound in (and room for `/dev/termination-log`);
//!    `/mnt`, `/old_root`, `/farm` and `lost+found` are left out;
//! 3. creates every missing mount point. A missing path under the root tmpfs is simply created there
//!    (`/data/pvc-a`, `/k8up`, `/restore`, `/.cache`). A missing path under a read-only host directory
//!    (e.g. `/usr/local/bin/k8up`) "shadows" that directory first: its current content is bound aside,
//!    a tmpfs is mounted on it and every entry is bound back, so new entries go to the tmpfs;
//! 4. bind-mounts the volumes (read-only ones remounted `ro`), writes the hostname, touches a ready
//!    marker in the scratch dir and `exec`s `chroot ROOT env -C WORKDIR -- ARGV...`.
//!
//! `exec` keeps the process id, so the pid the kubelet holds *is* the container process and
//! `/proc/<pid>/ns/mnt` is the namespace `pods/exec` enters.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

/// One bind mount into the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindMount {
    /// Host path (a directory or a file) to expose.
    pub source: PathBuf,
    /// Absolute path inside the container.
    pub target: String,
    /// Remount read-only after binding.
    pub read_only: bool,
}

/// Everything the script needs besides the bind mounts.
#[derive(Debug, Clone)]
pub struct RootLayout {
    /// Empty host directory on which the container's root tmpfs is mounted (inside the namespace).
    pub root: PathBuf,
    /// Host directory used as the container's `/tmp`.
    pub tmp: PathBuf,
    /// Empty host directory under which shadowed directories are set aside.
    pub stash: PathBuf,
    /// File touched once the namespace is ready, just before the program starts.
    pub ready_marker: PathBuf,
    /// UTS hostname of the container.
    pub hostname: String,
    /// Working directory inside the container (created when missing, as the kubelet does).
    pub working_dir: String,
}

/// Why a mount plan could not be made.
#[derive(Debug, thiserror::Error)]
pub enum MountError {
    /// A mount path is relative or contains `..`.
    #[error("invalid mount path {0:?}: must be absolute without '..'")]
    InvalidPath(String),
    /// A path component that must be a directory is a file.
    #[error("failed to create mount point {0:?}: a parent is not a directory")]
    NotADirectory(String),
    /// Symlinks loop while resolving a path.
    #[error("failed to resolve mount path {0:?}: too many symlinks")]
    SymlinkLoop(String),
    /// Reading the host file system failed.
    #[error("failed to inspect host path {path:?}")]
    Inspect {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Host top-level directories a container does not see.
const HIDDEN_TOP_LEVEL: &[&str] = &[
    "mnt",
    "old_root",
    "farm",
    "lost+found",
    "tmp",
    "run",
    "dev",
    "proc",
];

/// Device nodes bound into the container's `/dev`.
const DEVICES: &[&str] = &["null", "zero", "full", "random", "urandom", "tty"];

/// What a path of the container's view currently is.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Node {
    /// A directory of a tmpfs the script owns: entries may be created freely.
    Owned,
    /// A directory of a volume (its host directory): entries are created in the volume.
    Volume(PathBuf),
    /// A read-only view of a host directory: creating entries needs a shadow first.
    Host(PathBuf),
    /// A symlink with this target.
    Symlink(PathBuf),
    /// A regular file (or device) of the view.
    File,
}

/// What resolving one component found.
enum Found {
    Dir,
    File,
    Symlink(PathBuf),
    Missing,
}

/// Builds the setup script (see the module docs). `argv` is appended by the caller as `"$@"`.
pub fn setup_script(
    layout: &RootLayout,
    mounts: &[BindMount],
    termination_log: Option<(&Path, &str)>,
) -> Result<String, MountError> {
    let mut b = Builder::new(layout.root.clone(), layout.stash.clone());
    b.line("set -e".to_string());
    b.line("mount --make-rprivate /".to_string());
    b.line(format!(
        "mount -t tmpfs -o mode=0755 k8up-sandbox-root {}",
        q(&layout.root)
    ));
    b.mirror_host_root()?;
    b.special_dirs(&layout.tmp);

    // Pass 1: create every mount point (this may shadow host directories); pass 2: bind. Binding
    // only after all shadows keeps a later shadow from hiding an earlier bind.
    let mut resolved: Vec<(PathBuf, &BindMount, bool)> = Vec::new();
    for m in mounts {
        let is_file = std::fs::metadata(&m.source)
            .map(|md| !md.is_dir())
            .unwrap_or(false);
        let target = b.ensure(&m.target, is_file)?;
        resolved.push((target, m, is_file));
    }
    let termination = match termination_log {
        Some((source, target)) => Some((b.ensure(target, true)?, source)),
        None => None,
    };
    let working_dir = b.ensure(&layout.working_dir, false)?;
    resolved.sort_by_key(|(t, _, _)| t.components().count());
    for (target, m, is_file) in &resolved {
        let dst = b.in_root(target);
        // The target may be inside a volume bound just before: create it there.
        if *is_file {
            b.line(format!("[ -e {d} ] || touch {d}", d = q(&dst)));
        } else {
            b.line(format!("mkdir -p {}", q(&dst)));
        }
        b.line(format!("mount --bind {} {}", q(&m.source), q(&dst)));
        if m.read_only {
            b.line(format!("mount -o remount,bind,ro {}", q(&dst)));
        }
    }
    if let Some((target, source)) = termination {
        b.line(format!("mount --bind {} {}", q(source), q(&b.in_root(&target))));
    }
    let hostname: String = layout.hostname.chars().take(63).collect();
    b.line(format!(
        "printf '%s' {} > /proc/sys/kernel/hostname",
        q(Path::new(&hostname))
    ));
    b.line(format!(": > {}", q(&layout.ready_marker)));
    b.line(format!(
        "exec /usr/sbin/chroot {} /usr/bin/env -C {} -- \"$@\"",
        q(&layout.root),
        q(&working_dir)
    ));
    Ok(b.lines.join("\n"))
}

struct Builder {
    root: PathBuf,
    stash: PathBuf,
    stash_count: usize,
    view: BTreeMap<PathBuf, Node>,
    lines: Vec<String>,
}

impl Builder {
    fn new(root: PathBuf, stash: PathBuf) -> Self {
        let mut view = BTreeMap::new();
        view.insert(PathBuf::from("/"), Node::Owned);
        Builder {
            root,
            stash,
            stash_count: 0,
            view,
            lines: Vec::new(),
        }
    }

    fn line(&mut self, l: String) {
        self.lines.push(l);
    }

    /// The host path of a container path (below the root mount point).
    fn in_root(&self, p: &Path) -> PathBuf {
        let rel = p.strip_prefix("/").unwrap_or(p);
        if rel.as_os_str().is_empty() {
            self.root.clone()
        } else {
            self.root.join(rel)
        }
    }

    fn mirror_host_root(&mut self) -> Result<(), MountError> {
        let entries = std::fs::read_dir("/").map_err(|source| MountError::Inspect {
            path: "/".into(),
            source,
        })?;
        let mut names: Vec<_> = entries.filter_map(|e| e.ok()).map(|e| e.file_name()).collect();
        names.sort();
        for name in names {
            let Some(n) = name.to_str() else { continue };
            if HIDDEN_TOP_LEVEL.contains(&n) {
                continue;
            }
            let host = Path::new("/").join(n);
            let pod = PathBuf::from("/").join(n);
            let md = std::fs::symlink_metadata(&host).map_err(|source| MountError::Inspect {
                path: host.clone(),
                source,
            })?;
            let dst = self.in_root(&pod);
            if md.file_type().is_symlink() {
                let target = std::fs::read_link(&host).map_err(|source| MountError::Inspect {
                    path: host.clone(),
                    source,
                })?;
                self.line(format!("ln -s {} {}", q(&target), q(&dst)));
                self.view.insert(pod, Node::Symlink(target));
            } else if md.is_dir() {
                self.line(format!("mkdir {}", q(&dst)));
                self.line(format!("mount --rbind {} {}", q(&host), q(&dst)));
                self.line(format!("mount -o remount,bind,ro {}", q(&dst)));
                self.view.insert(pod, Node::Host(host));
            }
            // Top-level host files (.dockerenv and the like) are not part of a container's root.
        }
        Ok(())
    }

    fn special_dirs(&mut self, tmp: &Path) {
        for (name, node) in [
            ("proc", Node::Host("/proc".into())),
            ("tmp", Node::Volume(tmp.to_path_buf())),
        ] {
            let pod = PathBuf::from("/").join(name);
            let dst = self.in_root(&pod);
            let src = match &node {
                Node::Host(p) | Node::Volume(p) => p.clone(),
                _ => continue,
            };
            self.line(format!("mkdir {}", q(&dst)));
            self.line(format!("mount --rbind {} {}", q(&src), q(&dst)));
            self.view.insert(pod, node);
        }
        let run = self.in_root(Path::new("/run"));
        self.line(format!("mkdir {}", q(&run)));
        self.view.insert("/run".into(), Node::Owned);

        let dev = self.in_root(Path::new("/dev"));
        self.line(format!("mkdir {}", q(&dev)));
        self.line(format!(
            "mount -t tmpfs -o mode=0755,nosuid k8up-sandbox-dev {}",
            q(&dev)
        ));
        self.view.insert("/dev".into(), Node::Owned);
        for d in DEVICES {
            let host = Path::new("/dev").join(d);
            if host.exists() {
                let dst = dev.join(d);
                self.line(format!("touch {}", q(&dst)));
                self.line(format!("mount --bind {} {}", q(&host), q(&dst)));
                self.view.insert(Path::new("/dev").join(d), Node::File);
            }
        }
        for (name, target) in [
            ("fd", "/proc/self/fd"),
            ("stdin", "/proc/self/fd/0"),
            ("stdout", "/proc/self/fd/1"),
            ("stderr", "/proc/self/fd/2"),
            ("ptmx", "pts/ptmx"),
        ] {
            self.line(format!("ln -s {} {}", q(Path::new(target)), q(&dev.join(name))));
            self.view
                .insert(Path::new("/dev").join(name), Node::Symlink(target.into()));
        }
        for (name, how) in [
            ("pts", "--rbind /dev/pts"),
            ("shm", "-t tmpfs -o mode=1777 k8up-sandbox-shm"),
        ] {
            self.line(format!("mkdir {}", q(&dev.join(name))));
            self.line(format!("mount {how} {}", q(&dev.join(name))));
            self.view.insert(Path::new("/dev").join(name), Node::Owned);
        }
    }

    /// The kind of the directory `dir` (already resolved), derived from its nearest known ancestor.
    fn dir_kind(&self, dir: &Path) -> Node {
        let mut cur = dir.to_path_buf();
        let mut rel = Vec::new();
        loop {
            if let Some(n) = self.view.get(&cur) {
                let mut rel_path = PathBuf::new();
                for c in rel.iter().rev() {
                    rel_path.push(c);
                }
                return match n {
                    Node::Host(h) => Node::Host(h.join(rel_path)),
                    Node::Volume(v) => Node::Volume(v.join(rel_path)),
                    other => other.clone(),
                };
            }
            let Some(name) = cur.file_name().map(|n| n.to_os_string()) else {
                return Node::Owned;
            };
            rel.push(name);
            if !cur.pop() {
                return Node::Owned;
            }
        }
    }

    fn find(&self, parent: &Path, child: &Path) -> Result<Found, MountError> {
        if let Some(n) = self.view.get(child) {
            return Ok(match n {
                Node::Symlink(t) => Found::Symlink(t.clone()),
                Node::File => Found::File,
                _ => Found::Dir,
            });
        }
        let host_parent = match self.dir_kind(parent) {
            Node::Host(h) | Node::Volume(h) => h,
            _ => return Ok(Found::Missing),
        };
        let Some(name) = child.file_name() else {
            return Ok(Found::Dir);
        };
        let host = host_parent.join(name);
        match std::fs::symlink_metadata(&host) {
            Ok(md) if md.file_type().is_symlink() => {
                let t = std::fs::read_link(&host).map_err(|source| MountError::Inspect {
                    path: host.clone(),
                    source,
                })?;
                Ok(Found::Symlink(t))
            }
            Ok(md) if md.is_dir() => Ok(Found::Dir),
            Ok(_) => Ok(Found::File),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Found::Missing),
            Err(source) => Err(MountError::Inspect { path: host, source }),
        }
    }

    /// Makes `path` exist in the container view (a file when `file`), following symlinks as the
    /// container would; returns the resolved path.
    fn ensure(&mut self, path: &str, file: bool) -> Result<PathBuf, MountError> {
        let mut comps = components(path)?;
        let mut cur = PathBuf::from("/");
        let mut hops = 0;
        while !comps.is_empty() {
            let c = comps.remove(0);
            let child = cur.join(&c);
            let last = comps.is_empty();
            match self.find(&cur, &child)? {
                Found::Symlink(t) => {
                    hops += 1;
                    if hops > 40 {
                        return Err(MountError::SymlinkLoop(path.to_string()));
                    }
                    let abs = if t.is_absolute() { t } else { cur.join(t) };
                    let mut next = components(&abs.to_string_lossy()).unwrap_or_default();
                    // `..` in a symlink target: resolve lexically against the root.
                    next.extend(comps.drain(..));
                    comps = next;
                    cur = PathBuf::from("/");
                }
                Found::Dir => cur = child,
                Found::File if last && file => cur = child,
                Found::File => return Err(MountError::NotADirectory(path.to_string())),
                Found::Missing => {
                    let kind = self.dir_kind(&cur);
                    if let Node::Host(_) = kind {
                        self.shadow(&cur);
                    }
                    let dst = self.in_root(&child);
                    if last && file {
                        self.line(format!("touch {}", q(&dst)));
                        self.view.insert(child.clone(), Node::File);
                    } else {
                        self.line(format!("mkdir {}", q(&dst)));
                        let node = match self.dir_kind(&cur) {
                            Node::Volume(v) => Node::Volume(v.join(&c)),
                            _ => Node::Owned,
                        };
                        self.view.insert(child.clone(), node);
                    }
                    cur = child;
                }
            }
        }
        Ok(cur)
    }

    /// Turns the read-only host directory `dir` of the view into a tmpfs holding the same entries.
    fn shadow(&mut self, dir: &Path) {
        self.stash_count += 1;
        let stash = self.stash.join(self.stash_count.to_string());
        let d = q(&self.in_root(dir));
        let s = q(&stash);
        self.line(format!("mkdir -p {s}"));
        self.line(format!("mount --rbind {d} {s}"));
        self.line(format!("mount -t tmpfs -o mode=0755 k8up-sandbox-shadow {d}"));
        self.line(format!(
            "for e in {s}/* {s}/.[!.]* {s}/..?*; do [ -e \"$e\" ] || [ -L \"$e\" ] || continue; n=${{e##*/}}; \
             if [ -L \"$e\" ]; then ln -s \"$(readlink \"$e\")\" {d}/\"$n\"; \
             elif [ -d \"$e\" ]; then mkdir {d}/\"$n\"; mount --rbind \"$e\" {d}/\"$n\"; \
             else touch {d}/\"$n\"; mount --bind \"$e\" {d}/\"$n\"; fi; done"
        ));
        self.view.insert(dir.to_path_buf(), Node::Owned);
    }
}

/// Normal components of an absolute path; `..` and relative paths are refused.
fn components(path: &str) -> Result<Vec<String>, MountError> {
    let p = Path::new(path);
    if !p.is_absolute() {
        return Err(MountError::InvalidPath(path.to_string()));
    }
    let mut out = Vec::new();
    for c in p.components() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(n) => out.push(n.to_string_lossy().into_owned()),
            Component::ParentDir => {
                if out.pop().is_none() {
                    return Err(MountError::InvalidPath(path.to_string()));
                }
            }
            Component::Prefix(_) => return Err(MountError::InvalidPath(path.to_string())),
        }
    }
    Ok(out)
}

/// Single-quotes a path for `sh`.
pub fn q(p: &Path) -> String {
    format!("'{}'", p.to_string_lossy().replace('\'', "'\\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout() -> RootLayout {
        RootLayout {
            root: "/s/root".into(),
            tmp: "/s/tmp".into(),
            stash: "/s/stash".into(),
            ready_marker: "/s/ready".into(),
            hostname: "pod-a".into(),
            working_dir: "/".into(),
        }
    }

    #[test]
    fn missing_top_level_mount_points_are_created_in_the_root_tmpfs() {
        let m = BindMount {
            source: "/s/vol".into(),
            target: "/data/pvc-a".into(),
            read_only: true,
        };
        let s = setup_script(&layout(), &[m], None).unwrap();
        assert!(
            s.contains("mkdir '/s/root/data'\nmkdir '/s/root/data/pvc-a'"),
            "{s}"
        );
        assert!(s.contains(
            "mount --bind '/s/vol' '/s/root/data/pvc-a'\nmount -o remount,bind,ro '/s/root/data/pvc-a'"
        ));
        assert!(!s.contains("k8up-sandbox-shadow"));
    }

    #[test]
    fn var_run_secrets_resolves_through_the_symlink_into_the_private_run() {
        if std::fs::read_link("/var/run").ok() != Some(PathBuf::from("/run")) {
            return; // this host has a real /var/run; covered by the other tests
        }
        let m = BindMount {
            source: "/s/sa".into(),
            target: "/var/run/secrets/kubernetes.io/serviceaccount".into(),
            read_only: true,
        };
        let s = setup_script(&layout(), &[m], None).unwrap();
        assert!(
            s.contains("mount --bind '/s/sa' '/s/root/run/secrets/kubernetes.io/serviceaccount'"),
            "{s}"
        );
        assert!(!s.contains("k8up-sandbox-shadow"));
    }

    #[test]
    fn a_missing_path_under_a_host_directory_shadows_that_directory() {
        let m = BindMount {
            source: "/s/k8up".into(),
            target: "/usr/local/bin/k8up-test-missing".into(),
            read_only: true,
        };
        let s = setup_script(&layout(), &[m], None).unwrap();
        assert!(
            s.contains("mount -t tmpfs -o mode=0755 k8up-sandbox-shadow '/s/root/usr/local/bin'"),
            "{s}"
        );
    }

    #[test]
    fn parent_directory_components_are_refused() {
        let m = BindMount {
            source: "/s/x".into(),
            target: "../etc".into(),
            read_only: false,
        };
        assert!(matches!(
            setup_script(&layout(), &[m], None),
            Err(MountError::InvalidPath(_))
        ));
    }
}
