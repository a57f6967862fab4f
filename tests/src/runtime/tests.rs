//! Tests of the runner with real namespaces (the machines run as root).

use std::path::Path;
use std::time::Duration;

use tokio::io::AsyncReadExt;

use super::*;

fn spec(dir: &Path, argv: &[&str], mounts: Vec<BindMount>) -> ContainerSpec {
    ContainerSpec {
        argv: argv.iter().map(|s| s.to_string()).collect(),
        env: vec![
            ("PATH".into(), DEFAULT_PATH.into()),
            ("GREETING".into(), "hello".into()),
        ],
        mounts,
        layout: RootLayout {
            root: dir.join("root"),
            tmp: dir.join("tmp"),
            stash: dir.join("stash"),
            ready_marker: dir.join("ready"),
            hostname: "pod-under-test".into(),
            working_dir: "/work-dir-of-pod".into(),
        },
        log_path: dir.join("log"),
        termination_log: Some((dir.join("termination-log"), "/dev/termination-log".into())),
    }
}

async fn run(spec: &ContainerSpec) -> (i32, String) {
    let mut child = spawn_container(spec).unwrap();
    let status = child.wait().await.unwrap();
    (
        exit_code(&status),
        std::fs::read_to_string(&spec.log_path).unwrap_or_default(),
    )
}

#[tokio::test]
async fn a_container_writes_into_a_volume_mounted_at_a_path_missing_on_the_host() {
    assert!(!Path::new("/data-sbx-runtime-test").exists());
    let dir = tempfile::tempdir().unwrap();
    let vol = dir.path().join("vol");
    std::fs::create_dir(&vol).unwrap();
    let m = BindMount {
        source: vol.clone(),
        target: "/data-sbx-runtime-test/pvc-a".into(),
        read_only: false,
    };
    let s = spec(
        dir.path(),
        &[
            "sh",
            "-c",
            "echo $GREETING > /data-sbx-runtime-test/pvc-a/f && pwd && hostname && echo done > /dev/termination-log",
        ],
        vec![m],
    );
    let (code, log) = run(&s).await;
    assert_eq!(code, 0, "{log}");
    assert_eq!(log, "/work-dir-of-pod\npod-under-test\n");
    assert_eq!(std::fs::read_to_string(vol.join("f")).unwrap(), "hello\n");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("termination-log")).unwrap(),
        "done\n"
    );
    assert!(
        !Path::new("/data-sbx-runtime-test").exists(),
        "mount point leaked onto the host"
    );
    assert!(
        !Path::new("/work-dir-of-pod").exists(),
        "working dir leaked onto the host"
    );
}

#[tokio::test]
async fn a_read_only_volume_refuses_writes_and_the_host_root_is_read_only() {
    let dir = tempfile::tempdir().unwrap();
    let vol = dir.path().join("vol");
    std::fs::create_dir(&vol).unwrap();
    let m = BindMount {
        source: vol.clone(),
        target: "/ro".into(),
        read_only: true,
    };
    let s = spec(
        dir.path(),
        &[
            "sh",
            "-c",
            "touch /ro/x; a=$?; touch /etc/sbx-runtime-test; b=$?; touch /tmp/ok; echo $a $b $?",
        ],
        vec![m],
    );
    let (code, log) = run(&s).await;
    assert_eq!(code, 0, "{log}");
    assert!(log.ends_with("1 1 0\n"), "{log}");
    assert!(!vol.join("x").exists());
    assert!(!Path::new("/etc/sbx-runtime-test").exists());
    assert!(
        dir.path().join("tmp/ok").exists(),
        "the pod's /tmp is its scratch tmp"
    );
}

#[tokio::test]
async fn a_file_bound_under_a_host_directory_is_visible_without_touching_the_host() {
    let dir = tempfile::tempdir().unwrap();
    let prog = dir.path().join("prog");
    std::fs::write(&prog, "#!/bin/sh\necho from-prog \"$@\"\n").unwrap();
    std::fs::set_permissions(&prog, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let m = BindMount {
        source: prog,
        target: "/usr/local/bin/sbx-runtime-test-prog".into(),
        read_only: true,
    };
    let s = spec(dir.path(), &["sbx-runtime-test-prog", "arg"], vec![m]);
    let (code, log) = run(&s).await;
    assert_eq!(code, 0, "{log}");
    assert_eq!(log, "from-prog arg\n");
    assert!(!Path::new("/usr/local/bin/sbx-runtime-test-prog").exists());
}

#[tokio::test]
async fn exec_runs_inside_the_container_namespace_and_streams_output() {
    let dir = tempfile::tempdir().unwrap();
    let vol = dir.path().join("vol");
    std::fs::create_dir(&vol).unwrap();
    std::fs::write(vol.join("f"), "volume-content").unwrap();
    let m = BindMount {
        source: vol,
        target: "/data-sbx-exec-test".into(),
        read_only: false,
    };
    let s = spec(dir.path(), &["sleep", "infinity"], vec![m]);
    let mut child = spawn_container(&s).unwrap();
    assert!(wait_ready(&s.layout.ready_marker, &mut child).await);
    let pid = child.id().unwrap();
    let stdio = ExecStdio {
        stdin: false,
        stdout: true,
        stderr: true,
    };
    let argv: Vec<String> = ["sh", "-c", "cat /data-sbx-exec-test/f; pwd; exit 3"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let mut exec = spawn_exec(pid, &argv, &s.env, stdio).unwrap();
    let mut out = String::new();
    exec.stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .await
        .unwrap();
    let st = exec.wait().await.unwrap();
    assert_eq!(exit_code(&st), 3);
    assert_eq!(out, "volume-content/work-dir-of-pod\n");
    let st = stop_group(&mut child, Duration::from_secs(5)).await.unwrap();
    assert_eq!(exit_code(&st), 128 + 15);
}
