//! The README demo command's program (`sandbox demo --exit`) runs to the end: a Schedule backs a PVC up
//! with the real plugins, wrapper and restic, and a Restore brings every file back.

use std::process::Command;

#[test]
fn the_readme_demo_backs_up_a_pvc_by_schedule_and_restores_it() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let kubeconfig = dir.path().join("kubeconfig");
    let out = Command::new(env!("CARGO_BIN_EXE_sandbox"))
        .args(["demo", "--exit", "--kubeconfig"])
        .arg(&kubeconfig)
        .output()
        .expect("the sandbox binary runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "demo failed:\n{stdout}\n{stderr}");
    for expected in [
        "the Schedule created Backup demo/demo-backup-",
        "Completed (Succeeded)",
        "restored www/file-1.txt (7 bytes)",
        "every file of demo/data came back byte for byte in demo/restored",
    ] {
        assert!(stdout.contains(expected), "missing {expected:?} in:\n{stdout}");
    }
    assert!(
        !kubeconfig.exists(),
        "the kubeconfig of a stopped sandbox is removed"
    );
}
