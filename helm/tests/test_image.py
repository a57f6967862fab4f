"""The root Dockerfile agrees with what the chart, the Job builder and the test suite assume.

The image cannot be built here (no Docker engine), so these tests read the Dockerfile: the user it runs as,
its entrypoint, the directories the wrapper writes to, and the restic version (the one the suite runs).
"""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from chart_helpers import CHART, REPO, find, render

DOCKERFILE = (REPO / "Dockerfile").read_text()


def instructions(name: str) -> list[str]:
    """The arguments of every `NAME ...` instruction of the final stage (line continuations joined)."""
    final = DOCKERFILE[DOCKERFILE.rindex("\nFROM ") :]
    joined = re.sub(r"\\\n\s*", " ", final)
    return [line.split(None, 1)[1] for line in joined.splitlines() if line.startswith(name + " ")]


def test_the_image_runs_as_the_uid_of_the_chart_and_of_the_jobs():
    assert instructions("USER") == ["65532:65532"]
    pod = find(render(), "Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsUser"] == 65532
    assert pod["securityContext"]["runAsGroup"] == 65532
    jobs = (REPO / "host/src/jobs/mod.rs").read_text()
    assert "pub const DEFAULT_UID: i64 = 65532;" in jobs


def test_the_entrypoint_is_where_the_jobs_command_expects_k8up():
    assert instructions("ENTRYPOINT") == ['["/usr/local/bin/k8up"]']
    args = (REPO / "host/src/operator/settings/args.rs").read_text()
    assert 'default_value = "/usr/local/bin/k8up,restic"' in args
    copies = " ".join(instructions("COPY"))
    assert "/usr/local/bin/k8up" in copies and "/usr/local/bin/restic" in copies


@pytest.mark.parametrize("path", ["/data", "/k8up", "/.cache"])
def test_the_writable_directories_belong_to_the_runtime_user(path: str):
    owned = [c for c in instructions("COPY") if c.startswith("--from=build --chown=65532:65532 ")]
    assert any(c.endswith(" " + path) for c in owned), f"{path} is not copied with owner 65532"


def test_restic_is_pinned_to_the_version_the_tests_run():
    pinned = re.search(r"^ARG RESTIC_VERSION=(\S+)$", DOCKERFILE, re.M)
    assert pinned, "the Dockerfile does not pin restic"
    upstream = pinned.group(1).split("-")[0]
    restic = shutil.which("restic")
    if restic is None:
        pytest.skip("restic is not installed (tests/setup installs it)")
    version = subprocess.run([restic, "version"], capture_output=True, text=True, check=True).stdout
    assert version.startswith(f"restic {upstream} "), f"Dockerfile pins {upstream}, the tests run {version!r}"


def test_the_rust_toolchain_of_the_build_stage_is_the_pinned_one():
    toolchain = re.search(r'channel = "([^"]+)"', (REPO / "rust-toolchain.toml").read_text()).group(1)
    assert f"rust:{toolchain}-" in DOCKERFILE


def test_the_default_image_tag_is_the_chart_app_version():
    app_version = re.search(r"^appVersion: (\S+)$", (CHART / "Chart.yaml").read_text(), re.M).group(1)
    pod = find(render(), "Deployment")["spec"]["template"]["spec"]
    assert pod["containers"][0]["image"] == f"ghcr.io/k8up-rs/k8up:v{app_version}"
