//! Image name -> local program: the ONE place that says what a container image runs as in the sandbox.
//!
//! | image name                  | runs as                                                                 |
//! |-----------------------------|-------------------------------------------------------------------------|
//! | contains `k8up`             | the built `k8up` binary, bound at `/usr/local/bin/k8up` (its entrypoint); |
//! |                             | the host `restic` is bound at `/usr/local/bin/restic` as in the real image |
//! | anything else (busybox,     | an "app" image with shell semantics: `command` + `args` run as given,    |
//! | alpine, ubuntu, postgres..) | `command[0]` resolved on the host `PATH`; without `command`, `args` run   |
//! |                             | as the command (busybox's entrypoint is the shell); with neither, the    |
//! |                             | container runs `sleep infinity` (a long-lived app)                       |
//!
//! For the `k8up` image a `command[0]` whose file name is `k8up` (e.g. the default Job command
//! `/usr/local/bin/k8up restic`) runs the bound binary; any other command (`sh -c ...`) runs as given.

use std::path::{Path, PathBuf};

/// Where the `k8up` binary appears inside a container of the `k8up` image.
pub const K8UP_IN_CONTAINER: &str = "/usr/local/bin/k8up";
/// Where `restic` appears inside a container of the `k8up` image.
pub const RESTIC_IN_CONTAINER: &str = "/usr/local/bin/restic";

/// The kinds of images the sandbox knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageKind {
    /// The k8up image: entrypoint `k8up`.
    K8up,
    /// Any other image: a shell-like app image.
    App,
}

/// The table itself: (substring of the image name, kind). The first match wins; no match = `App`.
pub const IMAGE_TABLE: &[(&str, ImageKind)] = &[("k8up", ImageKind::K8up)];

/// Host programs an image needs bound into its containers.
#[derive(Debug, Clone, Default)]
pub struct HostPrograms {
    /// The built `k8up` binary.
    pub k8up: Option<PathBuf>,
    /// The host `restic` binary.
    pub restic: Option<PathBuf>,
}

/// What a container runs: its argv and the host files bound into it for that.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Program {
    /// argv; `argv[0]` is looked up on the container's `PATH` when it has no `/`.
    pub argv: Vec<String>,
    /// (host file, path in the container) pairs to bind read-only.
    pub binds: Vec<(PathBuf, String)>,
}

/// Why an image cannot run.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// The image is the k8up image but the sandbox was given no `k8up` binary.
    #[error("image {0:?} needs the k8up binary, which the sandbox was not given")]
    NoK8upBinary(String),
}

/// Classifies an image name with [`IMAGE_TABLE`].
pub fn image_kind(image: &str) -> ImageKind {
    IMAGE_TABLE
        .iter()
        .find(|(pat, _)| image.contains(pat))
        .map(|(_, k)| *k)
        .unwrap_or(ImageKind::App)
}

/// Maps an image plus the container's (already `$(VAR)`-expanded) command and args to a program.
pub fn program_for(
    image: &str,
    command: &[String],
    args: &[String],
    hosts: &HostPrograms,
) -> Result<Program, ImageError> {
    match image_kind(image) {
        ImageKind::App => {
            let argv = if !command.is_empty() {
                command.iter().chain(args).cloned().collect()
            } else if !args.is_empty() {
                args.to_vec()
            } else {
                vec!["sleep".to_string(), "infinity".to_string()]
            };
            Ok(Program {
                argv,
                binds: Vec::new(),
            })
        }
        ImageKind::K8up => {
            let k8up = hosts
                .k8up
                .clone()
                .ok_or_else(|| ImageError::NoK8upBinary(image.to_string()))?;
            let mut binds = vec![(k8up, K8UP_IN_CONTAINER.to_string())];
            if let Some(restic) = &hosts.restic {
                binds.push((restic.clone(), RESTIC_IN_CONTAINER.to_string()));
            }
            let argv = match command.first() {
                None => std::iter::once(K8UP_IN_CONTAINER.to_string())
                    .chain(args.iter().cloned())
                    .collect(),
                Some(c0) if Path::new(c0).file_name().is_some_and(|n| n == "k8up") => {
                    std::iter::once(K8UP_IN_CONTAINER.to_string())
                        .chain(command[1..].iter().cloned())
                        .chain(args.iter().cloned())
                        .collect()
                }
                Some(_) => command.iter().chain(args).cloned().collect(),
            };
            Ok(Program { argv, binds })
        }
    }
}

/// Finds an executable on `PATH` of this process (used to locate `restic`).
pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn an_app_image_without_command_sleeps_forever() {
        let p = program_for("busybox:1.36", &[], &[], &HostPrograms::default()).unwrap();
        assert_eq!(p.argv, s(&["sleep", "infinity"]));
    }

    #[test]
    fn an_app_image_runs_command_and_args_as_given() {
        let p = program_for(
            "docker.io/library/alpine",
            &s(&["sh", "-c"]),
            &s(&["echo hi"]),
            &HostPrograms::default(),
        )
        .unwrap();
        assert_eq!(p.argv, s(&["sh", "-c", "echo hi"]));
    }

    #[test]
    fn the_k8up_image_runs_the_bound_binary_for_the_default_job_command() {
        let hosts = HostPrograms {
            k8up: Some("/x/k8up".into()),
            restic: None,
        };
        let p = program_for(
            "ghcr.io/k8up-io/k8up:v2",
            &s(&["/usr/local/bin/k8up", "restic"]),
            &s(&["-varDir", "/k8up"]),
            &hosts,
        )
        .unwrap();
        assert_eq!(p.argv, s(&["/usr/local/bin/k8up", "restic", "-varDir", "/k8up"]));
        assert_eq!(
            p.binds,
            vec![(PathBuf::from("/x/k8up"), K8UP_IN_CONTAINER.to_string())]
        );
    }

    #[test]
    fn the_k8up_image_without_a_binary_is_an_error() {
        assert!(program_for("k8up", &[], &[], &HostPrograms::default()).is_err());
    }
}
