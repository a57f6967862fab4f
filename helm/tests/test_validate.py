"""Every rendered object validates against the Kubernetes 1.33 OpenAPI schemas (PyPI `kubernetes-validate`,
offline, strict: unknown fields fail). ServiceMonitor and PrometheusRule have no schema there; they are checked
against the subset of prometheus-operator's monitoring.coreos.com/v1 schema that the chart uses."""

from __future__ import annotations

import base64
import re

import jsonschema
import kubernetes_validate
import pytest
import yaml

from chart_helpers import CHART, render

KUBERNETES_VERSION = "1.33.0"

EVERYTHING_ON = {
    "metrics": {
        "service": {"type": "NodePort", "nodePort": 30080, "ipFamilyPolicy": "PreferDualStack", "ipFamilies": ["IPv4"]},
        "serviceMonitor": {"enabled": True, "additionalLabels": {"release": "prom"}},
        "prometheusRule": {
            "enabled": True,
            "additionalRules": [{"alert": "Custom", "expr": "vector(1)", "for": "5m", "labels": {"severity": "info"}}],
        },
        "grafanaDashboard": {"enabled": True},
    },
    "k8up": {
        "timezone": "Europe/Zurich",
        "operatorNamespace": "ops",
        "globalResources": {"requests": {"cpu": "10m", "memory": "32Mi"}, "limits": {"cpu": "1", "memory": "1Gi"}},
        "envVars": [{"name": "BACKUP_GLOBALACCESSKEYID", "valueFrom": {"secretKeyRef": {"name": "s3", "key": "id"}}}],
        "pluginOverrides": {"backup": "p"},
        "pluginLimits": {"timeoutMs": 2000, "memoryMiB": 96},
    },
    "plugins": [{"name": "p", "base64": base64.b64encode(b"\x00asm\x0d\x00\x01\x00").decode()}],
    "imagePullSecrets": [{"name": "pull"}],
    "podAnnotations": {"a": "b"},
    "tolerations": [{"key": "k", "operator": "Exists"}],
    "nodeSelector": {"kubernetes.io/os": "linux"},
    "priorityClassName": "high",
    "serviceAccount": {"annotations": {"iam": "role"}},
}

# prometheus-operator's Duration pattern.
DURATION = r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"
STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
METADATA = {
    "type": "object",
    "required": ["name", "namespace"],
    "properties": {"name": {"type": "string"}, "namespace": {"type": "string"}, "labels": STRING_MAP},
}
MONITORING_SCHEMAS = {
    "ServiceMonitor": {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "apiVersion": {"const": "monitoring.coreos.com/v1"},
            "metadata": METADATA,
            "spec": {
                "type": "object",
                "additionalProperties": False,
                "required": ["endpoints", "selector"],
                "properties": {
                    "endpoints": {
                        "type": "array",
                        "minItems": 1,
                        "items": {
                            "type": "object",
                            "additionalProperties": False,
                            "properties": {
                                "port": {"type": "string"},
                                "path": {"type": "string"},
                                "interval": {"type": "string", "pattern": DURATION},
                            },
                        },
                    },
                    "namespaceSelector": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {"matchNames": {"type": "array", "items": {"type": "string"}}},
                    },
                    "selector": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {"matchLabels": STRING_MAP},
                    },
                },
            },
        },
    },
    "PrometheusRule": {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "apiVersion": {"const": "monitoring.coreos.com/v1"},
            "metadata": METADATA,
            "spec": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "groups": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "additionalProperties": False,
                            "required": ["name", "rules"],
                            "properties": {
                                "name": {"type": "string", "minLength": 1},
                                "rules": {
                                    "type": "array",
                                    "items": {
                                        "type": "object",
                                        "additionalProperties": False,
                                        "required": ["expr"],
                                        "oneOf": [{"required": ["alert"]}, {"required": ["record"]}],
                                        "properties": {
                                            "alert": {"type": "string"},
                                            "record": {"type": "string"},
                                            "expr": {"type": "string", "minLength": 1},
                                            "for": {"type": "string", "pattern": DURATION},
                                            "labels": STRING_MAP,
                                            "annotations": STRING_MAP,
                                        },
                                    },
                                },
                            },
                        },
                    }
                },
            },
        },
    },
}

DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")


def rendered():
    return render(EVERYTHING_ON)


def ids(objects):
    return [f"{o['kind']}/{o['metadata']['name']}" for o in objects]


OBJECTS = rendered()


@pytest.mark.parametrize("obj", OBJECTS, ids=ids(OBJECTS))
def test_every_rendered_object_is_valid_for_kubernetes_1_33(obj):
    if obj["kind"] in MONITORING_SCHEMAS:
        jsonschema.validate(obj, MONITORING_SCHEMAS[obj["kind"]])
    else:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
    assert DNS_SUBDOMAIN.match(obj["metadata"]["name"]), obj["metadata"]["name"]
    for value in obj["metadata"].get("labels", {}).values():
        assert len(value) <= 63


def test_every_kind_of_the_chart_was_validated():
    assert {o["kind"] for o in OBJECTS} == {
        "ClusterRole",
        "ClusterRoleBinding",
        "ConfigMap",
        "Deployment",
        "PrometheusRule",
        "Service",
        "ServiceAccount",
        "ServiceMonitor",
    }


@pytest.mark.parametrize("path", sorted((CHART / "crds").glob("*.yaml")), ids=lambda p: p.name)
def test_every_chart_crd_is_a_valid_custom_resource_definition(path):
    kubernetes_validate.validate(yaml.safe_load(path.read_text()), KUBERNETES_VERSION, strict=True)


def test_a_wrong_field_is_caught_by_the_validation():
    """The validation is real: a typo in a rendered Deployment fails it."""
    deployment = next(o for o in OBJECTS if o["kind"] == "Deployment")
    broken = yaml.safe_load(yaml.safe_dump(deployment))
    broken["spec"]["template"]["spec"]["containers"][0]["envv"] = []
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def test_the_operator_env_has_no_duplicate_names():
    deployment = next(o for o in OBJECTS if o["kind"] == "Deployment")
    names = [v["name"] for v in deployment["spec"]["template"]["spec"]["containers"][0]["env"]]
    assert len(names) == len(set(names))
