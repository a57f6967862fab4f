"""RBAC of the chart: least privilege, asserted rule by rule.

The expected sets below are what the operator and the backup Jobs actually do. They must be kept in step with
the operator code: when the operator starts making a new kind of API call, add it here and to
templates/operator-clusterrole.yaml together (the plan is to generate this set from the code later).
"""

from __future__ import annotations

import yaml

from chart_helpers import FULLNAME, REPO, find, find_all, render

VERBS_RW = {"get", "list", "watch", "create", "update", "patch", "delete"}


def k8up_kinds() -> set[str]:
    """Plural names of every CRD the repository generates."""
    return {yaml.safe_load(p.read_text())["spec"]["names"]["plural"] for p in (REPO / "crds").glob("*.yaml")}


def expected_operator_permissions() -> set[tuple[str, str, str, str]]:
    """(apiGroup, resource, verb, resourceName or "") for everything the operator needs."""
    allowed: set[tuple[str, str, str, str]] = set()

    def allow(group: str, resources: set[str], verbs: set[str], names: tuple[str, ...] = ("",)) -> None:
        allowed.update((group, r, v, n) for r in resources for v in verbs for n in names)

    kinds = k8up_kinds()
    # Reconciles every k8up kind, creates Backups/Checks/... from Schedules and Snapshots after backups,
    # deletes finished objects past the history limits.
    allow("k8up.io", kinds, VERBS_RW)
    allow("k8up.io", {f"{k}/status" for k in kinds}, {"get", "update", "patch"})
    # Owner references with blockOwnerDeletion on objects owned by k8up resources.
    allow("k8up.io", {f"{k}/finalizers" for k in kinds}, {"update"})
    # Jobs applied server-side (patch), watched, cleaned up; no update, no status writes.
    allow("batch", {"jobs"}, {"get", "list", "watch", "create", "patch", "delete"})
    # PreBackupPod Deployments.
    allow("apps", {"deployments"}, {"get", "list", "watch", "create", "patch", "delete"})
    # Read-only observation of what a backup plan is built from.
    allow("", {"pods", "persistentvolumeclaims", "persistentvolumes"}, {"get", "list", "watch"})
    # Plugin ConfigMaps (k8up.io/plugin label), watched for hot reload; Secrets are never read.
    allow("", {"configmaps"}, {"get", "list", "watch"})
    # The Jobs' ServiceAccount per namespace and its RoleBinding to k8up-executor; nothing is deleted.
    allow("", {"serviceaccounts"}, {"get", "create", "patch"})
    allow("rbac.authorization.k8s.io", {"rolebindings"}, {"get", "create", "patch"})
    allow("rbac.authorization.k8s.io", {"clusterroles"}, {"bind"}, ("k8up-executor",))
    allow("", {"events"}, {"create", "patch"})
    allow("events.k8s.io", {"events"}, {"create", "patch"})
    # Leader election.
    allow("coordination.k8s.io", {"leases"}, {"get", "create", "update"})
    return allowed


EXPECTED_EXECUTOR_PERMISSIONS = {
    ("", "pods", "get", ""),
    ("", "pods", "list", ""),
    # POST for SPDY, GET for the WebSocket upgrade.
    ("", "pods/exec", "create", ""),
    ("", "pods/exec", "get", ""),
}


def permissions(role: dict) -> set[tuple[str, str, str, str]]:
    """Flatten a role's rules into (apiGroup, resource, verb, resourceName) tuples."""
    flat = set()
    for rule in role["rules"]:
        assert "nonResourceURLs" not in rule
        names = rule.get("resourceNames") or [""]
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                for verb in rule["verbs"]:
                    for name in names:
                        flat.add((group, resource, verb, name))
    return flat


def test_the_operator_role_grants_exactly_what_the_operator_uses():
    role = find(render(), "ClusterRole", f"{FULLNAME}-manager")
    granted = permissions(role)
    expected = expected_operator_permissions()
    assert granted - expected == set(), "granted but not needed"
    assert expected - granted == set(), "needed but not granted"


def test_the_operator_role_has_no_wildcards_and_no_secret_access():
    role = find(render(), "ClusterRole", f"{FULLNAME}-manager")
    for group, resource, verb, _ in permissions(role):
        assert "*" not in (group, resource, verb)
        assert resource != "secrets"
        assert resource != "pods/exec", "the operator never execs; the Jobs do"


def test_the_operator_role_covers_every_crd_of_the_repository():
    role = find(render(), "ClusterRole", f"{FULLNAME}-manager")
    covered = {r for g, r, v, _ in permissions(role) if g == "k8up.io" and "/" not in r}
    assert covered == k8up_kinds()


def test_the_executor_role_only_reads_pods_and_execs_into_them():
    role = find(render(), "ClusterRole", "k8up-executor")
    assert permissions(role) == EXPECTED_EXECUTOR_PERMISSIONS


def test_the_operator_may_bind_the_executor_role_it_does_not_hold():
    objects = render()
    manager = permissions(find(objects, "ClusterRole", f"{FULLNAME}-manager"))
    executor = permissions(find(objects, "ClusterRole", "k8up-executor"))
    assert ("rbac.authorization.k8s.io", "clusterroles", "bind", "k8up-executor") in manager
    # Without `bind`, Kubernetes would require the operator to hold pods/exec itself (escalation check).
    assert not executor <= manager


def test_the_cluster_role_binding_gives_the_manager_role_to_the_operator_service_account():
    binding = find(render(), "ClusterRoleBinding", FULLNAME)
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": f"{FULLNAME}-manager",
    }
    assert binding["subjects"][0]["name"] == FULLNAME


def test_the_edit_and_view_roles_aggregate_into_the_default_user_roles():
    objects = render()
    edit = find(objects, "ClusterRole", f"{FULLNAME}-edit")
    view = find(objects, "ClusterRole", f"{FULLNAME}-view")
    assert edit["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-admin"] == "true"
    assert edit["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-edit"] == "true"
    assert view["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-view"] == "true"
    assert "rbac.authorization.k8s.io/aggregate-to-edit" not in view["metadata"]["labels"]
    assert permissions(edit) == {("k8up.io", "*", v, "") for v in VERBS_RW}
    assert permissions(view) == {("k8up.io", "*", v, "") for v in ("get", "list", "watch")}


def test_rbac_create_renders_four_cluster_roles_and_one_binding():
    objects = render()
    assert sorted(r["metadata"]["name"] for r in find_all(objects, "ClusterRole")) == sorted(
        [f"{FULLNAME}-manager", "k8up-executor", f"{FULLNAME}-edit", f"{FULLNAME}-view"]
    )
    assert len(find_all(objects, "ClusterRoleBinding")) == 1


def test_rbac_disabled_renders_no_roles_or_bindings():
    objects = render({"rbac": {"create": False}})
    rbac_kinds = {"ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"}
    assert [o["kind"] for o in objects if o["kind"] in rbac_kinds] == []
    assert find_all(objects, "Deployment") != []
