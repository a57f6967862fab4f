//! Builders for jobs and plans, and stable job name suffixes.

use crate::meta::{kv, lookup};
use crate::{EnvVar, Job, JobPlan, PlanRequest, PvcMount, Toleration, ValueSource, VolumeMount, env_literal};

/// The node label used to pin a Job to a node.
pub const HOSTNAME_LABEL: &str = "kubernetes.io/hostname";

/// Longest suffix [`stable_suffix`] returns; the host still has to fit
/// `<action>-<object>-<suffix>` into 63 characters.
const MAX_SUFFIX: usize = 30;

/// Turns any text (a node name, a PVC name, ...) into a Job name suffix that is a valid
/// DNS label fragment and the same on every call, so a restarted operator never plans a
/// second Job for the same group.
///
/// Lowercase letters, digits and `-` are kept; anything else becomes `-`. When the text had to
/// be changed or shortened, an 8-hex-digit hash of the original is appended, so two names that
/// map to the same text (`a.b` and `a-b`) still get different suffixes.
pub fn stable_suffix(text: &str) -> String {
    let cleaned: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let trimmed = cleaned.trim_matches('-');
    if trimmed == text && !trimmed.is_empty() && trimmed.len() <= MAX_SUFFIX {
        return trimmed.to_string();
    }
    let hash = short_hash(text);
    let keep = MAX_SUFFIX - hash.len() - 1;
    let head: String = trimmed.chars().take(keep).collect();
    let head = head.trim_end_matches('-');
    if head.is_empty() {
        hash
    } else {
        format!("{head}-{hash}")
    }
}

/// An 8-hex-digit stable hash of `text`, to tell apart groups whose names would otherwise clash
/// (for example the same node with different restic args).
pub fn short_hash(text: &str) -> String {
    format!("{:08x}", fnv1a(text.as_bytes()))
}

/// 32-bit FNV-1a: tiny, dependency-free and stable across platforms and releases.
fn fnv1a(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5_u32, |hash, b| {
        (hash ^ u32::from(*b)).wrapping_mul(0x0100_0193)
    })
}

impl Job {
    /// An empty Job: no args, env, mounts or placement; not exclusive.
    pub fn new(name_suffix: &str) -> Job {
        Job {
            name_suffix: name_suffix.to_string(),
            args: Vec::new(),
            env: Vec::new(),
            env_from: Vec::new(),
            pvc_mounts: Vec::new(),
            volume_mounts: Vec::new(),
            node_selector: Vec::new(),
            tolerations: Vec::new(),
            labels: Vec::new(),
            annotations: Vec::new(),
            exclusive: false,
        }
    }

    /// A Job that can reach the repository: the backend's credential env, `envFrom`, TLS args
    /// and volume mounts. The host adds `RESTIC_REPOSITORY`, `HOSTNAME`, `RESTIC_OPTIONS`,
    /// `--varDir` and the scratch volumes itself.
    pub fn for_backend(req: &PlanRequest, name_suffix: &str) -> Job {
        let backend = &req.backend;
        let mut job = Job::new(name_suffix);
        job.env = backend.env.clone();
        job.env_from = backend.env_from.clone();
        job.args = backend.tls_args.clone();
        job.volume_mounts = backend.volume_mounts.clone();
        job
    }

    /// Appends one argument.
    pub fn with_arg(mut self, arg: &str) -> Job {
        self.args.push(arg.to_string());
        self
    }

    /// Appends several arguments.
    pub fn with_args<S: AsRef<str>>(mut self, args: impl IntoIterator<Item = S>) -> Job {
        self.args.extend(args.into_iter().map(|a| a.as_ref().to_string()));
        self
    }

    /// Appends `flag value` once per value (`--tag a --tag b`).
    pub fn with_flag_each<S: AsRef<str>>(mut self, flag: &str, values: impl IntoIterator<Item = S>) -> Job {
        for value in values {
            self.args.push(flag.to_string());
            self.args.push(value.as_ref().to_string());
        }
        self
    }

    /// Appends `flag value` when there is a non-empty value.
    pub fn with_flag_opt(self, flag: &str, value: Option<&str>) -> Job {
        match value.filter(|v| !v.is_empty()) {
            Some(value) => self.with_flag_each(flag, [value]),
            None => self,
        }
    }

    /// Sets an environment variable, replacing an earlier one of the same name.
    pub fn with_env(mut self, var: EnvVar) -> Job {
        self.env.retain(|existing| existing.name != var.name);
        self.env.push(var);
        self
    }

    /// Sets a literal environment variable.
    pub fn with_env_literal(self, name: &str, value: &str) -> Job {
        self.with_env(env_literal(name, value))
    }

    /// Sets a literal environment variable when there is a non-empty value.
    pub fn with_env_opt(self, name: &str, value: Option<&str>) -> Job {
        match value.filter(|v| !v.is_empty()) {
            Some(value) => self.with_env_literal(name, value),
            None => self,
        }
    }

    /// Mounts an offered PVC.
    pub fn with_pvc_mount(mut self, claim_name: &str, mount_path: &str, read_only: bool) -> Job {
        self.pvc_mounts.push(PvcMount {
            claim_name: claim_name.to_string(),
            mount_path: mount_path.to_string(),
            read_only,
        });
        self
    }

    /// Mounts a volume declared in the object's `spec.volumes` (skipping an identical mount).
    pub fn with_volume_mount(mut self, mount: VolumeMount) -> Job {
        if !self.volume_mounts.contains(&mount) {
            self.volume_mounts.push(mount);
        }
        self
    }

    /// Pins the Job to a node with a `kubernetes.io/hostname` node selector.
    pub fn on_node(mut self, node: &str) -> Job {
        self.node_selector.retain(|pair| pair.key != HOSTNAME_LABEL);
        self.node_selector.push(kv(HOSTNAME_LABEL, node));
        self
    }

    /// Adds tolerations, skipping ones the Job already has.
    pub fn with_tolerations<'a>(mut self, tolerations: impl IntoIterator<Item = &'a Toleration>) -> Job {
        for toleration in tolerations {
            if !self.tolerations.contains(toleration) {
                self.tolerations.push(toleration.clone());
            }
        }
        self
    }

    /// Adds a label to the Job (the host adds its standard labels itself).
    pub fn with_label(mut self, key: &str, value: &str) -> Job {
        self.labels.push(kv(key, value));
        self
    }

    /// Adds an annotation to the Job.
    pub fn with_annotation(mut self, key: &str, value: &str) -> Job {
        self.annotations.push(kv(key, value));
        self
    }

    /// Marks the Job exclusive: nothing else may run on the repository meanwhile.
    pub fn exclusive(mut self) -> Job {
        self.exclusive = true;
        self
    }

    /// The literal value of an environment variable, if the Job sets one.
    pub fn env_literal_value(&self, name: &str) -> Option<&str> {
        self.env
            .iter()
            .rev()
            .find(|var| var.name == name)
            .and_then(|var| match &var.value {
                ValueSource::Literal(value) => Some(value.as_str()),
                _ => None,
            })
    }

    /// Whether the Job sets an environment variable of this name (in any way).
    pub fn has_env(&self, name: &str) -> bool {
        self.env.iter().any(|var| var.name == name)
    }

    /// Whether an argument is present.
    pub fn has_arg(&self, arg: &str) -> bool {
        self.args.iter().any(|a| a == arg)
    }

    /// The values following each occurrence of `flag` (`--tag a --tag b` gives `[a, b]`).
    pub fn flag_values(&self, flag: &str) -> Vec<&str> {
        self.args
            .windows(2)
            .filter(|w| w[0] == flag)
            .map(|w| w[1].as_str())
            .collect()
    }

    /// The node the Job is pinned to, if any.
    pub fn node(&self) -> Option<&str> {
        lookup(&self.node_selector, HOSTNAME_LABEL)
    }
}

impl JobPlan {
    /// A plan with these jobs and no message.
    pub fn with_jobs(jobs: Vec<Job>) -> JobPlan {
        JobPlan { jobs, message: None }
    }

    /// A plan with no jobs: the object completes as Succeeded with this message.
    pub fn nothing(message: &str) -> JobPlan {
        JobPlan {
            jobs: Vec::new(),
            message: Some(message.to_string()),
        }
    }

    /// The job with this name suffix.
    pub fn job(&self, name_suffix: &str) -> Option<&Job> {
        self.jobs.iter().find(|job| job.name_suffix == name_suffix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::request;
    use crate::{Action, env_secret};

    #[test]
    fn a_valid_short_name_is_its_own_suffix() {
        assert_eq!(stable_suffix("worker-1"), "worker-1");
        assert_eq!(stable_suffix("data"), "data");
    }

    #[test]
    fn names_that_clean_up_to_the_same_text_get_different_suffixes() {
        let dotted = stable_suffix("node.a");
        let dashed = stable_suffix("node-a");
        assert_eq!(dashed, "node-a");
        assert!(dotted.starts_with("node-a-"), "{dotted}");
        assert_ne!(dotted, dashed);
        assert_eq!(dotted, stable_suffix("node.a"), "same input, same suffix");
    }

    #[test]
    fn long_names_are_shortened_with_a_hash_and_stay_valid() {
        let long = "ip-10-0-1-23.eu-west-1.compute.internal";
        let suffix = stable_suffix(long);
        assert!(suffix.len() <= MAX_SUFFIX, "{suffix}");
        assert!(
            suffix
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        );
        assert!(!suffix.starts_with('-') && !suffix.ends_with('-'));
        assert_ne!(suffix, stable_suffix("ip-10-0-1-23.eu-west-1.compute.internal2"));
        assert_eq!(stable_suffix("..."), format!("{:08x}", fnv1a(b"...")));
    }

    #[test]
    fn a_backend_job_carries_the_backend_credentials_and_tls_args() {
        let mut req = request(Action::Check);
        req.backend.tls_args = vec!["--caCert".into(), "/certs/ca.crt".into()];
        let job = Job::for_backend(&req, "").with_arg("--check");
        assert_eq!(job.args, ["--caCert", "/certs/ca.crt", "--check"]);
        assert!(
            job.env
                .contains(&env_secret("RESTIC_PASSWORD", "backup-repo", "password"))
        );
    }

    #[test]
    fn setting_an_env_var_twice_keeps_the_last_value_once() {
        let job = Job::new("x")
            .with_env_literal("A", "1")
            .with_env_literal("A", "2")
            .with_env_opt("B", Some(""));
        assert_eq!(job.env.len(), 1);
        assert_eq!(job.env_literal_value("A"), Some("2"));
        assert!(!job.has_env("B"));
    }

    #[test]
    fn flag_values_and_placement_read_back_what_was_set() {
        let job = Job::new("x")
            .with_flag_each("--tag", ["a", "b"])
            .on_node("n1")
            .on_node("n2");
        assert_eq!(job.flag_values("--tag"), ["a", "b"]);
        assert_eq!(job.node(), Some("n2"));
        assert_eq!(job.node_selector.len(), 1);
    }
}
