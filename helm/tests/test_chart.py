"""Chart tests in the style of K8up's (charts/k8up/test): the operator Deployment, Service, ServiceAccount,
monitoring objects and namespaces, plus lint, schema validation and the CRD copy."""

from __future__ import annotations

import json
import re
from pathlib import Path

import helm_python as helm
import pytest
import yaml

from chart_helpers import (
    CHART,
    FULLNAME,
    OVERRIDE_NAMESPACE,
    RELEASE_NAMESPACE,
    REPO,
    env_of,
    env_value,
    find,
    find_all,
    operator_container,
    render,
    render_files,
)

MONITORING_ON = {
    "metrics": {
        "serviceMonitor": {"enabled": True},
        "prometheusRule": {"enabled": True},
        "grafanaDashboard": {"enabled": True},
    }
}


# --- Deployment ------------------------------------------------------------------------------------


def test_the_operator_gets_k8ups_env_vars_in_k8ups_order_by_default():
    env = env_of(render())
    names = [v["name"] for v in env]
    assert names == [
        "BACKUP_IMAGE",
        "BACKUP_ENABLE_LEADER_ELECTION",
        "BACKUP_SKIP_WITHOUT_ANNOTATION",
        "BACKUP_GLOBAL_SKIP_SNAPSHOT_SYNC",
        "BACKUP_OPERATOR_NAMESPACE",
        "POD_NAME",
        "K8UP_PLUGIN_NAMESPACE",
    ]
    by_name = {v["name"]: v for v in env}
    assert by_name["BACKUP_ENABLE_LEADER_ELECTION"]["value"] == "true"
    assert by_name["BACKUP_SKIP_WITHOUT_ANNOTATION"]["value"] == "false"
    assert by_name["BACKUP_GLOBAL_SKIP_SNAPSHOT_SYNC"]["value"] == "false"
    assert by_name["BACKUP_OPERATOR_NAMESPACE"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
    assert by_name["POD_NAME"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert by_name["K8UP_PLUGIN_NAMESPACE"]["value"] == RELEASE_NAMESPACE


def test_boolean_settings_reach_their_env_vars():
    objects = render(
        {"k8up": {"enableLeaderElection": False, "skipWithoutAnnotation": True, "skipSnapshotSync": True}}
    )
    assert env_value(objects, "BACKUP_ENABLE_LEADER_ELECTION") == "false"
    assert env_value(objects, "BACKUP_SKIP_WITHOUT_ANNOTATION") == "true"
    assert env_value(objects, "BACKUP_GLOBAL_SKIP_SNAPSHOT_SYNC") == "true"


def test_the_backup_image_defaults_to_the_operator_image():
    objects = render({"image": {"registry": "reg.example", "repository": "team/k8up", "tag": "v9.9.9"}})
    container = operator_container(objects)
    assert container["image"] == "reg.example/team/k8up:v9.9.9"
    assert env_value(objects, "BACKUP_IMAGE") == "reg.example/team/k8up:v9.9.9"


def test_the_image_tag_defaults_to_the_app_version():
    app_version = yaml.safe_load((CHART / "Chart.yaml").read_text())["appVersion"]
    assert operator_container(render())["image"].endswith(f":v{app_version}")


def test_a_custom_backup_image_and_tag_replace_the_default():
    objects = render({"k8up": {"backupImage": {"repository": "mirror.example/k8up", "tag": "custom"}}})
    assert env_value(objects, "BACKUP_IMAGE") == "mirror.example/k8up:custom"
    assert not operator_container(objects)["image"].startswith("mirror.example")


def test_a_timezone_sets_tz_and_the_cron_time_zone():
    objects = render({"k8up": {"timezone": "Europe/Zurich"}})
    assert env_value(objects, "TZ") == "Europe/Zurich"
    assert env_value(objects, "K8UP_TIMEZONE") == "Europe/Zurich"
    assert env_value(render(), "TZ") is None


def test_an_operator_namespace_value_replaces_the_field_ref():
    env = {v["name"]: v for v in env_of(render({"k8up": {"operatorNamespace": "elsewhere"}}))}
    assert env["BACKUP_OPERATOR_NAMESPACE"] == {"name": "BACKUP_OPERATOR_NAMESPACE", "value": "elsewhere"}


def test_global_resources_become_env_vars_only_when_set():
    objects = render(
        {"k8up": {"globalResources": {"requests": {"cpu": "10m", "memory": "32Mi"}, "limits": {"cpu": "1", "memory": "1Gi"}}}}
    )
    assert env_value(objects, "BACKUP_GLOBAL_CPU_REQUEST") == "10m"
    assert env_value(objects, "BACKUP_GLOBAL_MEMORY_REQUEST") == "32Mi"
    assert env_value(objects, "BACKUP_GLOBAL_CPU_LIMIT") == "1"
    assert env_value(objects, "BACKUP_GLOBAL_MEMORY_LIMIT") == "1Gi"
    names = [v["name"] for v in env_of(render())]
    assert not [n for n in names if n.startswith("BACKUP_GLOBAL_") and n.endswith(("_REQUEST", "_LIMIT"))]


def test_extra_env_vars_come_last_and_keep_value_from():
    extra = [
        {"name": "BACKUP_GLOBALS3ENDPOINT", "value": "http://s3.example:9000"},
        {"name": "BACKUP_GLOBALACCESSKEYID", "valueFrom": {"secretKeyRef": {"name": "s3", "key": "id"}}},
    ]
    env = env_of(render({"k8up": {"envVars": extra}}))
    assert env[-2:] == extra


def test_plugin_overrides_and_limits_become_env_vars():
    objects = render(
        {
            "k8up": {
                "pluginOverrides": {"backup": "fast-backup", "restore": "my-restore"},
                "pluginLimits": {"timeoutMs": 2500, "memoryMiB": 128},
                "pluginNamespace": "plugins",
            }
        }
    )
    assert env_value(objects, "K8UP_PLUGIN_BACKUP") == "fast-backup"
    assert env_value(objects, "K8UP_PLUGIN_RESTORE") == "my-restore"
    assert env_value(objects, "K8UP_PLUGIN_PRUNE") is None
    assert env_value(objects, "K8UP_PLUGIN_TIMEOUT_MS") == "2500"
    assert env_value(objects, "K8UP_PLUGIN_MEMORY_MIB") == "128"
    assert env_value(objects, "K8UP_PLUGIN_NAMESPACE") == "plugins"
    names = [v["name"] for v in env_of(render())]
    assert "K8UP_PLUGIN_TIMEOUT_MS" not in names and "K8UP_PLUGIN_MEMORY_MIB" not in names


def test_a_plugin_override_for_an_unknown_action_fails_the_render():
    with pytest.raises(helm.HelmRenderError, match="unknown action \"bakup\""):
        render({"k8up": {"pluginOverrides": {"bakup": "x"}}})


def test_every_env_var_the_chart_sets_is_read_by_the_operator():
    """Guards against drift between the chart and `k8up operator`'s clap definitions (TZ is the libc one;
    POD_NAME is read directly, as the Lease holder identity and the Events' reporting instance)."""
    args = (REPO / "host" / "src" / "operator" / "settings" / "args.rs").read_text()
    known = set(re.findall(r'env\s*=\s*"([A-Z0-9_]+)"', args))
    assert known, "no env names found in args.rs: has the file moved?"
    objects = render(
        {
            "k8up": {
                "timezone": "UTC",
                "operatorNamespace": "x",
                "globalResources": {"requests": {"cpu": "1", "memory": "1"}, "limits": {"cpu": "1", "memory": "1"}},
                "pluginOverrides": {a: "p" for a in ["backup", "prune", "check", "archive", "restore"]},
                "pluginLimits": {"timeoutMs": 1, "memoryMiB": 1},
            }
        }
    )
    set_by_chart = {v["name"] for v in env_of(objects)} - {"TZ", "POD_NAME"}
    assert set_by_chart - known == set()


def test_the_operator_runs_as_non_root_with_a_read_only_root_and_no_capabilities():
    objects = render()
    pod = find(objects, "Deployment")["spec"]["template"]["spec"]
    container = operator_container(objects)
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 65532
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert container["args"] == ["operator"]


def test_the_operator_exposes_http_and_is_probed_on_healthz_and_readyz():
    container = operator_container(render())
    assert container["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}


def test_pod_scheduling_settings_are_passed_through():
    affinity = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}]
            }
        }
    }
    tolerations = [{"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"}]
    objects = render(
        {
            "affinity": affinity,
            "tolerations": tolerations,
            "nodeSelector": {"kubernetes.io/os": "linux"},
            "priorityClassName": "system-cluster-critical",
            "podAnnotations": {"a": "b"},
            "imagePullSecrets": [{"name": "pull"}],
        }
    )
    deployment = find(objects, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    assert pod["affinity"] == affinity
    assert pod["tolerations"] == tolerations
    assert pod["nodeSelector"] == {"kubernetes.io/os": "linux"}
    assert pod["priorityClassName"] == "system-cluster-critical"
    assert pod["imagePullSecrets"] == [{"name": "pull"}]
    assert deployment["spec"]["template"]["metadata"]["annotations"] == {"a": "b"}


def test_resources_default_to_k8ups_and_can_be_replaced():
    assert operator_container(render())["resources"] == {
        "limits": {"memory": "256Mi"},
        "requests": {"cpu": "20m", "memory": "128Mi"},
    }
    custom = {"requests": {"cpu": "1", "memory": "1Gi"}}
    # A map value is merged with the defaults, as with `helm --set`; null removes a default key.
    objects = render({"resources": {"requests": custom["requests"], "limits": None}})
    assert operator_container(objects)["resources"] == custom


def test_several_replicas_without_leader_election_fail_the_render():
    with pytest.raises(helm.HelmRenderError, match="needs k8up.enableLeaderElection"):
        render({"replicaCount": 2, "k8up": {"enableLeaderElection": False}})
    assert find(render({"replicaCount": 2}), "Deployment")["spec"]["replicas"] == 2


def test_labels_follow_the_helm_conventions():
    deployment = find(render(), "Deployment")
    labels = deployment["metadata"]["labels"]
    assert labels["app.kubernetes.io/name"] == "k8up"
    assert labels["app.kubernetes.io/instance"] == FULLNAME
    assert labels["app.kubernetes.io/managed-by"] == "Helm"
    assert deployment["spec"]["selector"]["matchLabels"] == deployment["spec"]["template"]["metadata"]["labels"]


# --- Namespaces ------------------------------------------------------------------------------------


def namespaced(objects):
    cluster_scoped = {"ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition"}
    return [o for o in objects if o["kind"] not in cluster_scoped]


def test_every_namespaced_object_lands_in_the_release_namespace_by_default():
    objects = namespaced(render(MONITORING_ON))
    assert len(objects) >= 6
    assert {o["metadata"]["namespace"] for o in objects} == {RELEASE_NAMESPACE}


def test_namespace_override_moves_every_namespaced_object():
    objects = namespaced(render({**MONITORING_ON, "namespaceOverride": OVERRIDE_NAMESPACE}))
    assert {o["metadata"]["namespace"] for o in objects} == {OVERRIDE_NAMESPACE}
    binding = find(render({"namespaceOverride": OVERRIDE_NAMESPACE}), "ClusterRoleBinding")
    assert binding["subjects"][0]["namespace"] == OVERRIDE_NAMESPACE


def test_the_cluster_role_binding_subject_is_in_the_release_namespace():
    binding = find(render(), "ClusterRoleBinding", FULLNAME)
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": FULLNAME, "namespace": RELEASE_NAMESPACE}]


# --- ServiceAccount --------------------------------------------------------------------------------


def test_the_default_service_account_is_named_after_the_release():
    objects = render()
    account = find(objects, "ServiceAccount")
    assert account["metadata"]["name"] == FULLNAME
    assert find(objects, "Deployment")["spec"]["template"]["spec"]["serviceAccountName"] == FULLNAME


def test_a_custom_service_account_name_is_used_everywhere():
    objects = render({"serviceAccount": {"name": "custom", "annotations": {"iam": "role"}}})
    account = find(objects, "ServiceAccount")
    assert account["metadata"]["name"] == "custom"
    assert account["metadata"]["annotations"] == {"iam": "role"}
    assert find(objects, "Deployment")["spec"]["template"]["spec"]["serviceAccountName"] == "custom"
    assert find(objects, "ClusterRoleBinding")["subjects"][0]["name"] == "custom"


def test_a_disabled_service_account_is_not_rendered_and_default_is_used():
    objects = render({"serviceAccount": {"create": False}})
    assert find_all(objects, "ServiceAccount") == []
    assert find(objects, "Deployment")["spec"]["template"]["spec"]["serviceAccountName"] == "default"
    objects = render({"serviceAccount": {"create": False, "name": "existing"}})
    assert find(objects, "Deployment")["spec"]["template"]["spec"]["serviceAccountName"] == "existing"


# --- Service ---------------------------------------------------------------------------------------


def test_the_metrics_service_selects_the_operator_pods_on_the_configured_port():
    objects = render({"metrics": {"service": {"port": 9090, "annotations": {"x": "y"}}}})
    service = find(objects, "Service", f"{FULLNAME}-metrics")
    pod_labels = find(objects, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["ports"] == [{"name": "http", "port": 9090, "targetPort": "http", "protocol": "TCP"}]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert service["spec"]["type"] == "ClusterIP"
    assert service["metadata"]["annotations"] == {"x": "y"}


def test_a_node_port_is_set_only_for_node_port_services():
    objects = render({"metrics": {"service": {"type": "NodePort", "nodePort": 30080}}})
    port = find(objects, "Service")["spec"]["ports"][0]
    assert port["nodePort"] == 30080
    port = find(render({"metrics": {"service": {"nodePort": 30080}}}), "Service")["spec"]["ports"][0]
    assert "nodePort" not in port


def test_ip_families_are_passed_to_the_service():
    spec = find(
        render({"metrics": {"service": {"ipFamilyPolicy": "PreferDualStack", "ipFamilies": ["IPv4", "IPv6"]}}}),
        "Service",
    )["spec"]
    assert spec["ipFamilyPolicy"] == "PreferDualStack"
    assert spec["ipFamilies"] == ["IPv4", "IPv6"]


# --- ServiceMonitor --------------------------------------------------------------------------------


def test_no_monitoring_objects_are_rendered_by_default():
    objects = render()
    assert find_all(objects, "ServiceMonitor") == []
    assert find_all(objects, "PrometheusRule") == []
    assert [o for o in find_all(objects, "ConfigMap") if o["metadata"]["name"].endswith("grafana-dashboard")] == []


def test_the_service_monitor_scrapes_the_metrics_service_at_the_configured_interval():
    objects = render({"metrics": {"serviceMonitor": {"enabled": True, "scrapeInterval": "1m10s"}}})
    monitor = find(objects, "ServiceMonitor", f"{FULLNAME}-monitor")
    service = find(objects, "Service")
    assert monitor["spec"]["endpoints"] == [{"port": "http", "path": "/metrics", "interval": "1m10s"}]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [RELEASE_NAMESPACE]}


def test_the_service_monitor_namespace_can_differ_from_the_services():
    objects = render(
        {"namespaceOverride": OVERRIDE_NAMESPACE, "metrics": {"serviceMonitor": {"enabled": True, "namespace": "monitoring"}}}
    )
    monitor = find(objects, "ServiceMonitor")
    assert monitor["metadata"]["namespace"] == "monitoring"
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [OVERRIDE_NAMESPACE]}


def test_the_service_monitor_gets_additional_labels():
    objects = render({"metrics": {"serviceMonitor": {"enabled": True, "additionalLabels": {"release": "prom"}}}})
    assert find(objects, "ServiceMonitor")["metadata"]["labels"]["release"] == "prom"


# --- PrometheusRule --------------------------------------------------------------------------------

CUSTOM_RULE = {"alert": "MyCustomRule", "expr": 'up{job="k8up"} == 0', "for": "5m", "labels": {"severity": "warning"}}


def rules_of(values):
    rule = find(render(values), "PrometheusRule")
    assert [g["name"] for g in rule["spec"]["groups"]] == ["K8up"]
    return rule["spec"]["groups"][0]["rules"]


def test_a_disabled_prometheus_rule_is_not_rendered_even_with_additional_rules():
    objects = render({"metrics": {"prometheusRule": {"enabled": False, "additionalRules": [CUSTOM_RULE]}}})
    assert find_all(objects, "PrometheusRule") == []


def test_the_prometheus_rule_namespace_follows_value_then_override_then_release():
    on = {"enabled": True}
    assert find(render({"metrics": {"prometheusRule": on}}), "PrometheusRule")["metadata"]["namespace"] == RELEASE_NAMESPACE
    objects = render({"namespaceOverride": OVERRIDE_NAMESPACE, "metrics": {"prometheusRule": on}})
    assert find(objects, "PrometheusRule")["metadata"]["namespace"] == OVERRIDE_NAMESPACE
    objects = render({"namespaceOverride": OVERRIDE_NAMESPACE, "metrics": {"prometheusRule": {**on, "namespace": "alt"}}})
    assert find(objects, "PrometheusRule")["metadata"]["namespace"] == "alt"


def test_the_prometheus_rule_gets_additional_labels():
    objects = render({"metrics": {"prometheusRule": {"enabled": True, "additionalLabels": {"my-custom-label": "my-value"}}}})
    assert find(objects, "PrometheusRule")["metadata"]["labels"]["my-custom-label"] == "my-value"


def test_the_default_alerts_are_k8ups():
    rules = {r["alert"]: r for r in rules_of({"metrics": {"prometheusRule": {"enabled": True}}})}
    assert list(rules) == [
        "K8upResticErrors",
        "K8upBackupNotRunning",
        "K8upArchiveFailed",
        "K8upBackupFailed",
        "K8upCheckFailed",
        "K8upPruneFailed",
        "K8upRestoreFailed",
    ]
    assert rules["K8upResticErrors"]["expr"] == "k8up_backup_restic_last_errors > 0"
    assert (
        rules["K8upBackupNotRunning"]["expr"]
        == "sum(rate(k8up_jobs_total[25h])) == 0 and on(namespace) k8up_schedules_gauge > 0"
    )
    assert rules["K8upPruneFailed"]["expr"] == (
        "(sum(kube_job_status_failed) by(job_name, namespace) * on(job_name, namespace) group_right() "
        'kube_job_labels{label_k8up_io_type="prune"}) > 0'
    )
    assert "{{ $labels.namespace }}" in rules["K8upBackupNotRunning"]["annotations"]["summary"]
    for alert, rule in rules.items():
        assert rule["for"] == "1m"
        assert rule["labels"] == {"severity": "critical"}
        assert rule["annotations"]["runbook_url"] == f"https://k8up.io/k8up/explanations/runbooks/{alert}.html"


def test_job_failed_rules_follow_job_failed_rules_for():
    def failed(types):
        rules = rules_of({"metrics": {"prometheusRule": {"enabled": True, "jobFailedRulesFor": types}}})
        return [r["alert"] for r in rules if r["alert"].endswith("Failed")]

    assert failed(["backup"]) == ["K8upBackupFailed"]
    assert failed(["backup", "restore", "prune"]) == ["K8upBackupFailed", "K8upRestoreFailed", "K8upPruneFailed"]
    assert failed([]) == []


def test_without_default_rules_and_without_additional_rules_nothing_is_rendered():
    objects = render({"metrics": {"prometheusRule": {"enabled": True, "createDefaultRules": False}}})
    assert find_all(objects, "PrometheusRule") == []


def test_only_the_custom_rules_are_rendered_without_default_rules():
    rules = rules_of(
        {"metrics": {"prometheusRule": {"enabled": True, "createDefaultRules": False, "additionalRules": [CUSTOM_RULE]}}}
    )
    assert rules == [CUSTOM_RULE]


def test_custom_rules_follow_the_default_rules():
    rules = rules_of({"metrics": {"prometheusRule": {"enabled": True, "additionalRules": [CUSTOM_RULE]}}})
    assert len(rules) == 8
    assert rules[-1] == CUSTOM_RULE


# --- Grafana dashboard -----------------------------------------------------------------------------


def dashboard(values):
    return find(render(values), "ConfigMap", f"{FULLNAME}-grafana-dashboard")


def test_the_dashboard_lands_in_the_release_namespace_by_default():
    assert dashboard({"metrics": {"grafanaDashboard": {"enabled": True}}})["metadata"]["namespace"] == RELEASE_NAMESPACE


def test_the_dashboard_follows_the_namespace_override():
    cm = dashboard({"namespaceOverride": OVERRIDE_NAMESPACE, "metrics": {"grafanaDashboard": {"enabled": True}}})
    assert cm["metadata"]["namespace"] == OVERRIDE_NAMESPACE


def test_a_dashboard_namespace_takes_precedence_over_the_override():
    cm = dashboard(
        {
            "namespaceOverride": OVERRIDE_NAMESPACE,
            "metrics": {"grafanaDashboard": {"enabled": True, "namespace": "monitoring", "additionalLabels": {"grafana_dashboard": "1"}}},
        }
    )
    assert cm["metadata"]["namespace"] == "monitoring"
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"


def test_the_dashboard_is_valid_json_and_queries_k8up_metrics():
    cm = dashboard({"metrics": {"grafanaDashboard": {"enabled": True}}})
    board = json.loads(cm["data"]["grafana-dashboard-k8up.json"])
    exprs = [t["expr"] for p in board["panels"] for t in p.get("targets", [])]
    metrics = {m for e in exprs for m in re.findall(r"\bk8up_[a-z_]+", e)}
    # The operator's metrics (REFERENCE 5.1) and the backup jobs' pushed gauges (REFERENCE 4.10).
    assert {
        "k8up_jobs_total",
        "k8up_jobs_failed_counter",
        "k8up_jobs_successful_counter",
        "k8up_schedules_gauge",
        "k8up_schedule_last_job_succeeded",
        "k8up_backup_restic_last_errors",
        "k8up_backup_restic_available_snapshots",
    } <= metrics
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))


# --- Lint, schemas, CRDs, values -------------------------------------------------------------------


def test_helm_lint_passes_strictly():
    report = helm.lint(CHART, strict=True, kube_version="v1.33.0")
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert report["errors"] == [] and problems == [], report


def test_helm_lint_passes_with_every_feature_enabled():
    values = {
        **MONITORING_ON,
        "plugins": [{"name": "p", "base64": "AGFzbQ0AAQA="}],
        "k8up": {"pluginOverrides": {"backup": "p"}, "timezone": "Europe/Zurich"},
    }
    report = helm.lint(CHART, values, strict=True, kube_version="v1.33.0")
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert report["errors"] == [] and problems == [], report


def test_the_chart_crds_are_a_copy_of_the_repository_crds():
    repo = {p.name: p.read_bytes() for p in (REPO / "crds").glob("*.yaml")}
    chart = {p.name: p.read_bytes() for p in (CHART / "crds").glob("*.yaml")}
    assert repo, "no CRDs in crds/"
    stale = sorted(n for n in repo.keys() | chart.keys() if repo.get(n) != chart.get(n))
    assert stale == [], f"helm/k8up/crds/ differs from crds/ in {stale}: run helm/sync-crds and commit the result"


def test_helm_loads_every_crd_of_the_chart():
    with helm.Chart.load(CHART) as chart:
        names = sorted(Path(c["name"]).name for c in chart.crds)
    assert names == sorted(p.name for p in (REPO / "crds").glob("*.yaml"))


def test_every_value_has_a_comment():
    """Each leaf of values.yaml is documented by the comment block just above it."""
    lines = (CHART / "values.yaml").read_text().splitlines()
    undocumented = []
    documented_block = None  # indentation of a documented mapping: its default contents need no comments
    for i, line in enumerate(lines):
        match = re.match(r"^(\s*)([A-Za-z0-9_]+):\s*(\S.*)?$", line)
        if not match:
            continue
        indent = len(match.group(1))
        if documented_block is not None and indent > documented_block:
            continue
        documented_block = None
        previous = next((l for l in reversed(lines[:i]) if l.strip()), "")
        commented = previous.strip().startswith("#")
        if match.group(3) is None:
            if commented:
                documented_block = indent
            continue  # a mapping: either documented as a whole or its children carry the comments
        if not commented:
            undocumented.append(f"line {i + 1}: {match.group(2)}")
    assert undocumented == []


def test_the_notes_name_the_namespace_and_the_plugins():
    notes = render_files({"plugins": [{"name": "p", "base64": "AGFzbQ0AAQA="}]})["k8up/templates/NOTES.txt"]
    assert f"-n {RELEASE_NAMESPACE} get deployment {FULLNAME}" in notes
    assert "  - p" in notes


def leaf_paths(node, prefix=""):
    """Dotted paths of the leaves of a values mapping (lists and empty maps are leaves)."""
    if isinstance(node, dict) and node:
        for key, value in node.items():
            yield from leaf_paths(value, f"{prefix}{key}.")
    else:
        yield prefix.rstrip(".")


def test_the_readme_documents_every_value_and_no_other():
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    readme = (CHART / "README.md").read_text()
    section = readme.split("\n## Values\n", 1)[1].split("\n## ", 1)[0]
    rows = set(re.findall(r"^\| `([A-Za-z0-9_.]+)` \|", section, flags=re.MULTILINE))
    leaves = set(leaf_paths(values))
    # A row may document a whole map (podSecurityContext) instead of each default key inside it.
    missing = sorted(p for p in leaves if not any(p == r or p.startswith(r + ".") for r in rows))
    unknown = sorted(r for r in rows if not any(p == r or p.startswith(r + ".") for p in leaves))
    assert missing == [], "values without a row in helm/k8up/README.md"
    assert unknown == [], "README rows for values that do not exist"
