//! The `sandbox` binary: `serve` runs the sandbox cluster in the foreground for kubectl; `demo`
//! starts it with the operator and shows a Schedule backing up a PVC and a Restore bringing it back.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use k8up_tests::cluster::{Sandbox, SandboxConfig};

#[derive(Parser)]
#[command(
    name = "sandbox",
    about = "A Kubernetes-API test cluster that runs pods as local processes"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the sandbox in the foreground until Ctrl-C/SIGTERM.
    Serve {
        /// Where to write the admin kubeconfig.
        #[arg(long, env = "SANDBOX_KUBECONFIG")]
        kubeconfig: PathBuf,
        /// Scratch directory (default: a fresh temporary directory, removed on exit).
        #[arg(long, env = "SANDBOX_SCRATCH")]
        scratch: Option<PathBuf>,
        /// The k8up binary that `k8up` images run (default: $K8UP_BINARY or target/debug/k8up).
        #[arg(long, env = "K8UP_BINARY")]
        k8up_binary: Option<PathBuf>,
        /// HTTPS port (0 picks a free one).
        #[arg(long, default_value_t = 0)]
        https_port: u16,
    },
    /// Start the sandbox and the operator; a Job writes files into a PVC, a Schedule backs the PVC up into a
    /// restic repository (restic-rest-server), a Restore brings the files back into a second PVC, and the
    /// two are compared. Then keep serving (the Schedule keeps firing) for kubectl.
    Demo {
        /// Where to write the admin kubeconfig.
        #[arg(long, default_value = "/tmp/k8up-sandbox-demo.kubeconfig")]
        kubeconfig: PathBuf,
        /// Exit after the demo instead of serving until Ctrl-C.
        #[arg(long)]
        exit: bool,
    },
}

async fn wait_for_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("failed to listen for SIGTERM")?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r.context("failed to listen for Ctrl-C")?,
        _ = term.recv() => {}
    }
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match cli.command {
        Cmd::Serve {
            kubeconfig,
            scratch,
            k8up_binary,
            https_port,
        } => {
            let cfg = SandboxConfig {
                kubeconfig_path: Some(kubeconfig),
                scratch_dir: scratch,
                k8up_binary,
                https_addr: ([127, 0, 0, 1], https_port).into(),
                ..SandboxConfig::default()
            };
            let sandbox = Sandbox::start(cfg).await.context("failed to start the sandbox")?;
            eprintln!(
                "sandbox: serving at {} (plain HTTP at {})",
                sandbox.https_url(),
                sandbox.http_url()
            );
            eprintln!(
                "sandbox: kubeconfig written to {}",
                sandbox.kubeconfig_path().display()
            );
            wait_for_signal().await?;
            eprintln!("sandbox: stopping");
            let kc = sandbox.kubeconfig_path().to_path_buf();
            sandbox.shutdown().await;
            // The kubeconfig points at a server that is gone now.
            let _ = std::fs::remove_file(kc);
        }
        Cmd::Demo { kubeconfig, exit } => {
            let cfg = SandboxConfig {
                kubeconfig_path: Some(kubeconfig),
                ..SandboxConfig::default()
            };
            let sandbox = Sandbox::start(cfg).await.context("failed to start the sandbox")?;
            let result = k8up_tests::demo::run(&sandbox).await;
            let kc = sandbox.kubeconfig_path().display().to_string();
            match &result {
                Ok(_) => {
                    println!("\nThe sandbox is running. Continue with kubectl:");
                    println!("  export KUBECONFIG={kc}");
                    println!("  kubectl get nodes");
                    println!("  kubectl -n demo get schedules,effectiveschedules,backups,restores,snapshots");
                    println!("  kubectl -n demo get jobs,pods,pvc,pv");
                    println!("  kubectl -n demo logs job/write-files");
                    println!(
                        "  kubectl -n demo create job hello --image=busybox -- sh -c 'echo hello from the sandbox'"
                    );
                }
                Err(e) => eprintln!("demo failed: {e:#}"),
            }
            if !exit && result.is_ok() {
                println!("Press Ctrl-C to stop the sandbox.");
                wait_for_signal().await?;
            }
            let kc_path = sandbox.kubeconfig_path().to_path_buf();
            let result = match result {
                Ok(running) => {
                    running.stop().await;
                    Ok(())
                }
                Err(e) => Err(e),
            };
            sandbox.shutdown().await;
            let _ = std::fs::remove_file(kc_path);
            result?;
        }
    }
    Ok(())
}
