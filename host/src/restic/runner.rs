//! Runs restic: spawns the process, enforces a deadline on every call (killing it on expiry), streams stdout,
//! keeps a redacted tail of stderr and maps exit codes to classified errors.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::command::{CallKind, ResticCommand};

/// How much of restic's stderr is kept for error messages.
const STDERR_TAIL: usize = 2048;

/// A failed restic call. `is_permanent` tells whether retrying without a change can help.
#[derive(Debug, thiserror::Error)]
pub enum ResticError {
    /// The binary could not be started.
    #[error("failed to start restic {command}: {source}")]
    Spawn {
        /// Sub-command.
        command: String,
        /// Cause.
        source: std::io::Error,
    },
    /// The deadline passed; the process was killed.
    #[error("restic {command} did not finish within {timeout:?} and was killed")]
    Timeout {
        /// Sub-command.
        command: String,
        /// The deadline.
        timeout: Duration,
    },
    /// The repository does not exist (exit 10 on 0.17+, or the 0.14 message).
    #[error("restic {command} failed: the repository does not exist: {stderr}")]
    RepositoryMissing {
        /// Sub-command.
        command: String,
        /// Tail of stderr.
        stderr: String,
    },
    /// Another client holds a conflicting lock (exit 11 on 0.17+, or the 0.14 message).
    #[error("restic {command} failed: the repository is locked: {stderr}")]
    Locked {
        /// Sub-command.
        command: String,
        /// Tail of stderr.
        stderr: String,
    },
    /// Wrong repository password (exit 12 on 0.17+, or the 0.14 message).
    #[error("restic {command} failed: wrong repository password")]
    WrongPassword {
        /// Sub-command.
        command: String,
    },
    /// Any other non-zero exit.
    #[error("restic {command} failed with exit code {code:?}: {stderr}")]
    Failed {
        /// Sub-command.
        command: String,
        /// Exit code (None when killed by a signal).
        code: Option<i32>,
        /// Tail of stderr.
        stderr: String,
    },
    /// Reading from or writing to the process failed.
    #[error("failed to talk to restic {command}: {source}")]
    Io {
        /// Sub-command.
        command: String,
        /// Cause.
        source: std::io::Error,
    },
}

impl ResticError {
    /// Errors that will repeat until someone changes the configuration or the repository.
    pub fn is_permanent(&self) -> bool {
        match self {
            ResticError::Spawn { .. }
            | ResticError::RepositoryMissing { .. }
            | ResticError::WrongPassword { .. } => true,
            ResticError::Failed { stderr, .. } => is_usage_error(stderr),
            ResticError::Timeout { .. } | ResticError::Locked { .. } | ResticError::Io { .. } => false,
        }
    }

    /// Tail of restic's stderr, when the error carries one.
    pub fn stderr(&self) -> Option<&str> {
        match self {
            ResticError::RepositoryMissing { stderr, .. }
            | ResticError::Locked { stderr, .. }
            | ResticError::Failed { stderr, .. } => Some(stderr),
            _ => None,
        }
    }
}

fn is_usage_error(stderr: &str) -> bool {
    [
        "unknown flag",
        "unknown shorthand flag",
        "invalid argument",
        "no matching ID found",
        "invalid id",
    ]
    .iter()
    .any(|m| stderr.contains(m))
}

/// Replaces secret values (passwords, keys, URL credentials) in text that is logged or reported.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    secrets: Vec<String>,
}

impl Redactor {
    /// Collects the secrets from our environment and the given extra values.
    pub fn from_env(extra: &[&str]) -> Self {
        const SECRET_ENV: &[&str] = &[
            "RESTIC_PASSWORD",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_SESSION_TOKEN",
            "AZURE_ACCOUNT_KEY",
            "B2_ACCOUNT_KEY",
            "GOOGLE_ACCESS_TOKEN",
            "OS_PASSWORD",
            "PASSWORD",
            "RESTORE_SECRETACCESSKEY",
        ];
        let mut secrets: Vec<String> = SECRET_ENV.iter().filter_map(|k| std::env::var(k).ok()).collect();
        secrets.extend(extra.iter().map(|s| (*s).to_owned()));
        Self::new(secrets)
    }

    /// A redactor for exactly these values (empty and very short ones are ignored: they would mangle text).
    pub fn new(secrets: impl IntoIterator<Item = String>) -> Self {
        let mut secrets: Vec<String> = secrets.into_iter().filter(|s| s.len() >= 3).collect();
        // Longest first, so a secret containing another is replaced whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        secrets.dedup();
        Self { secrets }
    }

    /// Adds the password part of `scheme://user:password@host` URLs inside `value` (REST repositories).
    pub fn with_url_credentials(mut self, value: &str) -> Self {
        if let Some(start) = value.find("://") {
            let rest = &value[start + 3..];
            if let Some(at) = rest.find('@') {
                let userinfo = &rest[..at];
                if let Some((_, pw)) = userinfo.split_once(':') {
                    self = Self::new(self.secrets.into_iter().chain([pw.to_owned()]));
                }
            }
        }
        self
    }

    /// The text with every secret replaced by `***`.
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for s in &self.secrets {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), "***");
            }
        }
        out
    }
}

/// Spawns restic processes with deadlines.
#[derive(Debug, Clone)]
pub struct Runner {
    bin: PathBuf,
    meta_timeout: Duration,
    data_timeout: Duration,
    redactor: Redactor,
}

/// A finished call.
#[derive(Debug, Clone, Default)]
pub struct Output {
    /// Everything restic printed on stdout (empty for streamed calls).
    pub stdout: String,
    /// The redacted tail of stderr.
    pub stderr: String,
    /// Exit code 3: a snapshot was created but some files could not be read.
    pub partial: bool,
}

/// A running restic process whose stdin/stdout the caller drives.
#[derive(Debug)]
pub struct Running {
    child: Child,
    /// Its stdout (taken by the caller).
    pub stdout: Option<ChildStdout>,
    /// Its stdin when requested (drop it to send EOF).
    pub stdin: Option<ChildStdin>,
    stderr: JoinHandle<String>,
    deadline: Instant,
    timeout: Duration,
    command: String,
    redactor: Redactor,
}

impl Runner {
    /// A runner for this binary with the two deadline classes.
    pub fn new(
        bin: impl Into<PathBuf>,
        meta_timeout: Duration,
        data_timeout: Duration,
        redactor: Redactor,
    ) -> Self {
        Self {
            bin: bin.into(),
            meta_timeout,
            data_timeout,
            redactor,
        }
    }

    /// The redactor (for other log lines of the wrapper).
    pub fn redactor(&self) -> &Redactor {
        &self.redactor
    }

    /// Starts `cmd`; with `stdin` its stdin is a pipe, otherwise `/dev/null`.
    pub fn spawn(&self, cmd: &ResticCommand, stdin: bool) -> Result<Running, ResticError> {
        let name = cmd.name();
        let timeout = match cmd.kind {
            CallKind::Meta => self.meta_timeout,
            CallKind::Data => self.data_timeout,
        };
        tracing::debug!(command = %self.redactor.redact(&cmd.args.join(" ")), "running restic");
        let mut child = Command::new(&self.bin)
            .args(&cmd.args)
            .envs(cmd.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(if stdin { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| ResticError::Spawn {
                command: name.clone(),
                source,
            })?;
        let stdout = child.stdout.take();
        let stdin = child.stdin.take();
        let stderr = match child.stderr.take() {
            Some(err) => tokio::spawn(collect_stderr(err, name.clone(), self.redactor.clone())),
            None => tokio::spawn(async { String::new() }),
        };
        Ok(Running {
            child,
            stdout,
            stdin,
            stderr,
            deadline: Instant::now() + timeout,
            timeout,
            command: name,
            redactor: self.redactor.clone(),
        })
    }

    /// Runs `cmd` to completion and returns its whole stdout.
    pub async fn output(&self, cmd: &ResticCommand) -> Result<Output, ResticError> {
        let mut running = self.spawn(cmd, false)?;
        let mut stdout = running.stdout.take();
        let command = running.command.clone();
        let deadline = running.deadline;
        let read = async {
            let mut buf = Vec::new();
            if let Some(out) = stdout.as_mut() {
                out.read_to_end(&mut buf).await?;
            }
            Ok::<_, std::io::Error>(buf)
        };
        let buf = match tokio::time::timeout_at(deadline, read).await {
            Ok(Ok(buf)) => buf,
            Ok(Err(source)) => return Err(ResticError::Io { command, source }),
            Err(_) => return Err(running.kill_for_timeout().await),
        };
        let mut out = running.finish().await?;
        out.stdout = String::from_utf8_lossy(&buf).into_owned();
        Ok(out)
    }

    /// Runs `cmd`, handing each stdout line to `on_line` as it arrives.
    pub async fn stream(
        &self,
        cmd: &ResticCommand,
        mut on_line: impl FnMut(&str),
    ) -> Result<Output, ResticError> {
        let mut running = self.spawn(cmd, false)?;
        let stdout = running.stdout.take();
        let command = running.command.clone();
        let deadline = running.deadline;
        let read = async {
            if let Some(out) = stdout {
                let mut lines = BufReader::new(out).lines();
                while let Some(line) = lines.next_line().await? {
                    on_line(&line);
                }
            }
            Ok::<_, std::io::Error>(())
        };
        match tokio::time::timeout_at(deadline, read).await {
            Ok(Ok(())) => {}
            Ok(Err(source)) => return Err(ResticError::Io { command, source }),
            Err(_) => return Err(running.kill_for_timeout().await),
        }
        running.finish().await
    }
}

impl Running {
    /// When the deadline of this call passes.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Sub-command name (for messages).
    pub fn command(&self) -> &str {
        &self.command
    }

    /// Kills the process (used when its input turned out to be bad: no snapshot may be committed).
    pub async fn kill(mut self) {
        drop(self.stdin.take());
        if let Err(e) = self.child.kill().await {
            tracing::warn!(command = %self.command, error = %e, "failed to kill restic");
        }
        self.stderr.abort();
    }

    async fn kill_for_timeout(self) -> ResticError {
        let err = ResticError::Timeout {
            command: self.command.clone(),
            timeout: self.timeout,
        };
        self.kill().await;
        err
    }

    /// Waits for the exit (until the deadline) and maps the exit code.
    pub async fn finish(mut self) -> Result<Output, ResticError> {
        drop(self.stdin.take());
        let status = match tokio::time::timeout_at(self.deadline, self.child.wait()).await {
            Ok(Ok(s)) => s,
            Ok(Err(source)) => {
                return Err(ResticError::Io {
                    command: self.command.clone(),
                    source,
                });
            }
            Err(_) => return Err(self.kill_for_timeout().await),
        };
        let stderr = (&mut self.stderr).await.unwrap_or_default();
        let stderr = self.redactor.redact(&stderr);
        classify(&self.command, status.code(), stderr)
    }
}

/// Maps an exit code (and, for restic 0.14 which only knows 0/1/3, the message) to a result.
pub fn classify(command: &str, code: Option<i32>, stderr: String) -> Result<Output, ResticError> {
    let command = command.to_owned();
    match code {
        Some(0) => Ok(Output {
            stderr,
            ..Output::default()
        }),
        Some(3) => Ok(Output {
            stderr,
            partial: true,
            ..Output::default()
        }),
        Some(10) => Err(ResticError::RepositoryMissing { command, stderr }),
        Some(11) => Err(ResticError::Locked { command, stderr }),
        Some(12) => Err(ResticError::WrongPassword { command }),
        code => {
            if stderr.contains("wrong password") {
                Err(ResticError::WrongPassword { command })
            } else if stderr.contains("repository is already locked")
                || stderr.contains("unable to create lock")
            {
                Err(ResticError::Locked { command, stderr })
            } else if stderr.contains("Is there a repository at the following location?")
                || stderr.contains("repository does not exist")
            {
                Err(ResticError::RepositoryMissing { command, stderr })
            } else {
                Err(ResticError::Failed {
                    command,
                    code,
                    stderr,
                })
            }
        }
    }
}

async fn collect_stderr(err: tokio::process::ChildStderr, command: String, redactor: Redactor) -> String {
    let mut tail = String::new();
    let mut lines = BufReader::new(err).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let line = redactor.redact(&line);
        tracing::info!(command = %command, "restic: {line}");
        tail.push_str(&line);
        tail.push('\n');
        if tail.len() > STDERR_TAIL * 2 {
            let cut = tail.len() - STDERR_TAIL;
            let cut = (cut..tail.len())
                .find(|i| tail.is_char_boundary(*i))
                .unwrap_or(tail.len());
            tail.drain(..cut);
        }
    }
    tail.trim_end().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case::ok(Some(0), "", "ok")]
    #[case::partial(Some(3), "some files unreadable", "partial")]
    #[case::missing(Some(10), "", "missing")]
    #[case::locked(Some(11), "", "locked")]
    #[case::password(Some(12), "", "password")]
    #[case::password_014(Some(1), "Fatal: wrong password or no key found", "password")]
    #[case::locked_014(
        Some(1),
        "Fatal: unable to create lock in backend: repository is already locked by PID 1",
        "locked"
    )]
    #[case::missing_014(
        Some(1),
        "Fatal: unable to open config file: Stat: stat /r/config: no such file or directory\nIs there a repository at the following location?",
        "missing"
    )]
    #[case::fatal(Some(1), "Fatal: connection refused", "failed")]
    #[case::signal(None, "", "failed")]
    fn exit_codes_map_to_classified_results(
        #[case] code: Option<i32>,
        #[case] stderr: &str,
        #[case] want: &str,
    ) {
        let got = match classify("backup", code, stderr.to_owned()) {
            Ok(o) if o.partial => "partial",
            Ok(_) => "ok",
            Err(ResticError::RepositoryMissing { .. }) => "missing",
            Err(ResticError::Locked { .. }) => "locked",
            Err(ResticError::WrongPassword { .. }) => "password",
            Err(ResticError::Failed { .. }) => "failed",
            Err(e) => panic!("{e}"),
        };
        assert_eq!(got, want);
    }

    #[test]
    fn wrong_passwords_are_permanent_and_locks_temporary() {
        let pw = classify("init", Some(12), String::new()).err();
        assert!(pw.is_some_and(|e| e.is_permanent()));
        let lock = classify("prune", Some(11), String::new()).err();
        assert!(lock.is_some_and(|e| !e.is_permanent()));
        let net = classify("backup", Some(1), "dial tcp: connection refused".into()).err();
        assert!(net.is_some_and(|e| !e.is_permanent()));
    }

    #[test]
    fn secrets_and_url_passwords_are_redacted() {
        let r = Redactor::new(["s3cr3t-key".to_owned(), "x".to_owned()])
            .with_url_credentials("rest:https://user:hunter22@host/repo");
        assert_eq!(
            r.redact("key s3cr3t-key at https://user:hunter22@host/repo x"),
            "key *** at https://user:***@host/repo x"
        );
    }
}
