"""Helpers of the chart tests: render the chart with Helm's own engine and look objects up.

The chart is rendered in-process by the PyPI package `helm-python-sdk` (Helm v4's Go SDK behind a C ABI,
so the templates go through the real Helm engine, offline). Install the test dependencies with
`tests/setup` or `python3 -m pip install pytest helm-python-sdk kubernetes-validate`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import helm_python as helm
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm" / "k8up"
RELEASE = "k8up-test"
RELEASE_NAMESPACE = "release-ns"
OVERRIDE_NAMESPACE = "override-ns"
# What `k8up.fullname` gives for RELEASE: the release name already contains the chart name.
FULLNAME = RELEASE


def render_files(
    values: dict[str, Any] | None = None,
    *,
    namespace: str = RELEASE_NAMESPACE,
    name: str = RELEASE,
    chart_dir: Path = CHART,
) -> dict[str, str]:
    """Render every template like `helm template`, returning template path -> rendered text."""
    with helm.Chart.load(chart_dir) as chart:
        return chart.render(values or {}, name=name, namespace=namespace, is_install=True)


def render(values: dict[str, Any] | None = None, **kwargs: Any) -> list[dict[str, Any]]:
    """Render the chart and parse every Kubernetes object out of the templates (NOTES.txt excluded)."""
    objects: list[dict[str, Any]] = []
    for path, text in sorted(render_files(values, **kwargs).items()):
        if path.endswith("NOTES.txt"):
            continue
        for doc in yaml.safe_load_all(text):
            if doc:
                objects.append(doc)
    return objects


def find_all(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    """Every object of one kind."""
    return [o for o in objects if o.get("kind") == kind]


def find(objects: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    """The one object of `kind` (and `name`, when given); fails the test when there is not exactly one."""
    matches = [o for o in find_all(objects, kind) if name is None or o["metadata"]["name"] == name]
    names = [o["metadata"]["name"] for o in find_all(objects, kind)]
    assert len(matches) == 1, f"expected one {kind} named {name!r}, rendered: {names}"
    return matches[0]


def operator_container(objects: list[dict[str, Any]]) -> dict[str, Any]:
    """The `k8up-operator` container of the operator Deployment."""
    deployment = find(objects, "Deployment", FULLNAME)
    containers = deployment["spec"]["template"]["spec"]["containers"]
    return next(c for c in containers if c["name"] == "k8up-operator")


def env_of(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The operator container's env list, in order."""
    return operator_container(objects)["env"]


def env_value(objects: list[dict[str, Any]], name: str) -> str | None:
    """The literal value of one operator env var, None when it is absent or comes from valueFrom."""
    for var in env_of(objects):
        if var["name"] == name:
            return var.get("value")
    return None
