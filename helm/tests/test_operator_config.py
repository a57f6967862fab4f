"""The environment the chart gives the operator is accepted by the real `k8up operator`.

Runs `k8up operator --check-config` (validate the configuration, print it, exit) with exactly the env of the
rendered Deployment, resolving the Downward API the way the kubelet would. Needs the built binary: the
workspace's `target/debug/k8up` (`cargo build --workspace`, which tests/run does first) or `$K8UP_BINARY`.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from chart_helpers import REPO, env_of, render

POD_NAMESPACE = "k8up-system"


def k8up_binary() -> Path:
    binary = Path(os.environ.get("K8UP_BINARY", REPO / "target" / "debug" / "k8up"))
    assert binary.is_file(), f"{binary} is missing: run `cargo build --workspace` first (or set K8UP_BINARY)"
    return binary


def operator_env(values: dict) -> dict[str, str]:
    """The operator container's env as the kubelet would set it (fieldRefs metadata.namespace and
    metadata.name resolved)."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    pod_fields = {"metadata.namespace": POD_NAMESPACE, "metadata.name": "k8up-operator-0"}
    for var in env_of(render(values, namespace=POD_NAMESPACE)):
        if "value" in var:
            env[var["name"]] = var["value"]
        else:
            field = var["valueFrom"]["fieldRef"]["fieldPath"]
            assert field in pod_fields, var
            env[var["name"]] = pod_fields[field]
    return env


def check_config(values: dict) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(k8up_binary()), "operator", "--check-config"],
        env=operator_env(values),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_operator_accepts_the_default_chart_configuration():
    result = check_config({})
    assert result.returncode == 0, result.stderr
    assert "error" not in result.stderr.lower()
    assert POD_NAMESPACE in result.stdout


def test_the_operator_accepts_every_setting_the_chart_can_give():
    result = check_config(
        {
            "k8up": {
                "timezone": "Europe/Zurich",
                "skipWithoutAnnotation": True,
                "skipSnapshotSync": True,
                "enableLeaderElection": False,
                "globalResources": {"requests": {"cpu": "10m", "memory": "32Mi"}, "limits": {"cpu": "1", "memory": "1Gi"}},
                "pluginOverrides": {"backup": "planner-b", "restore": "planner-r"},
                "pluginLimits": {"timeoutMs": 2000, "memoryMiB": 96},
                "pluginNamespace": "plugins",
            }
        }
    )
    assert result.returncode == 0, result.stderr
    assert "error" not in result.stderr.lower()
    for expected in ("Europe/Zurich", "planner-b", "planner-r", "plugins", "1Gi", "32Mi"):
        assert expected in result.stdout, f"{expected!r} not in the operator's configuration"
    # 96 MiB reached the operator as its memory cap.
    assert str(96 * 1024 * 1024) in result.stdout


@pytest.mark.parametrize(
    ("values", "flag"),
    [
        ({"k8up": {"globalResources": {"limits": {"memory": "lots"}}}}, "BACKUP_GLOBAL_MEMORY_LIMIT"),
        ({"k8up": {"globalResources": {"requests": {"cpu": "a lot"}}}}, "BACKUP_GLOBAL_CPU_REQUEST"),
    ],
)
def test_a_bad_value_is_reported_by_the_operator_under_the_env_var_the_chart_set(values, flag):
    """Proves the chart's env names reach the operator: a bad value is rejected and named."""
    result = check_config(values)
    assert result.returncode != 0
    assert flag in result.stderr
    assert "invalid operator configuration" in result.stderr
