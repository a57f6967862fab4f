//! Authentication and RBAC on the sandbox API server: anonymous and unknown tokens get 401,
//! ServiceAccount tokens are authorized by Roles/ClusterRoles and their bindings (verbs,
//! subresources like `pods/exec`, resourceNames, group subjects), else 403 in Kubernetes' words.

mod api_common;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use k8up_tests::api::{ApiConfig, ApiServer};
use kube::Api;
use kube::api::{AttachParams, DeleteParams, ListParams, PostParams};
use serde_json::json;

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

fn code(r: &kube::Error) -> Option<u16> {
    match r {
        kube::Error::Api(s) => Some(s.code),
        _ => None,
    }
}

async fn setup() -> Result<std::sync::Arc<ApiServer>> {
    let server = ApiServer::new(ApiConfig::default())?;
    server.set_node_agent(api_common::EchoAgent::shared());
    let admin = server.client();
    let sas: Api<ServiceAccount> = Api::namespaced(admin.clone(), "default");
    sas.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "runner"}}))?,
    )
    .await?;
    let pods: Api<Pod> = Api::namespaced(admin.clone(), "default");
    pods.create(
        &PostParams::default(),
        &serde_json::from_value(
            json!({"metadata": {"name": "app"}, "spec": {"containers": [{"name": "c", "image": "x"}]}}),
        )?,
    )
    .await?;
    let cms: Api<ConfigMap> = Api::namespaced(admin.clone(), "default");
    for n in ["allowed", "other"] {
        cms.create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": n}}))?,
        )
        .await?;
    }
    Ok(server)
}

#[tokio::test]
async fn requests_without_valid_credentials_get_401() -> Result {
    let server = setup().await?;
    let bogus = server.client_with_token("not-a-token");
    let err = Api::<Pod>::namespaced(bogus, "default")
        .list(&ListParams::default())
        .await
        .err();
    assert_eq!(err.as_ref().and_then(code), Some(401));
    let token = server.service_account_token("default", "runner");
    let sas: Api<ServiceAccount> = Api::namespaced(server.client(), "default");
    sas.delete("runner", &DeleteParams::default()).await?;
    let err = Api::<Pod>::namespaced(server.client_with_token(&token), "default")
        .list(&ListParams::default())
        .await
        .err();
    assert_eq!(
        err.as_ref().and_then(code),
        Some(401),
        "a deleted ServiceAccount's token is no longer valid"
    );
    Ok(())
}

#[tokio::test]
async fn a_service_account_without_bindings_is_forbidden_with_the_kubernetes_message() -> Result {
    let server = setup().await?;
    let sa = server.client_with_token(&server.service_account_token("default", "runner"));
    match Api::<Pod>::namespaced(sa, "default")
        .list(&ListParams::default())
        .await
    {
        Err(kube::Error::Api(s)) => {
            assert_eq!(s.code, 403);
            assert_eq!(s.reason, "Forbidden");
            assert_eq!(
                s.message,
                "pods is forbidden: User \"system:serviceaccount:default:runner\" cannot list resource \"pods\" in API group \"\" in the namespace \"default\""
            );
        }
        other => panic!("expected 403, got {other:?}"),
    }
    Ok(())
}

#[tokio::test]
async fn role_rules_grant_exactly_their_verbs_resources_subresources_and_names() -> Result {
    let server = setup().await?;
    let admin = server.client();
    let role: Role = serde_json::from_value(json!({
        "metadata": {"name": "runner"},
        "rules": [
            {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]},
            {"apiGroups": [""], "resources": ["pods/exec"], "verbs": ["create"]},
            {"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["allowed"], "verbs": ["get", "update"]},
        ],
    }))?;
    Api::<Role>::namespaced(admin.clone(), "default")
        .create(&PostParams::default(), &role)
        .await?;
    let binding: RoleBinding = serde_json::from_value(json!({
        "metadata": {"name": "runner"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "runner"},
        "subjects": [{"kind": "ServiceAccount", "name": "runner", "namespace": "default"}],
    }))?;
    Api::<RoleBinding>::namespaced(admin.clone(), "default")
        .create(&PostParams::default(), &binding)
        .await?;

    let sa = server.client_with_token(&server.service_account_token("default", "runner"));
    let pods: Api<Pod> = Api::namespaced(sa.clone(), "default");
    assert_eq!(pods.list(&ListParams::default()).await?.items.len(), 1);
    let new_pod: Pod =
        serde_json::from_value(json!({"metadata": {"name": "p2"}, "spec": {"containers": []}}))?;
    assert_eq!(
        pods.create(&PostParams::default(), &new_pod)
            .await
            .err()
            .as_ref()
            .and_then(code),
        Some(403)
    );
    let err = pods.delete("app", &DeleteParams::default()).await.err();
    assert_eq!(err.as_ref().and_then(code), Some(403));

    let cms: Api<ConfigMap> = Api::namespaced(sa.clone(), "default");
    cms.get("allowed").await?;
    assert_eq!(
        cms.get("other").await.err().as_ref().and_then(code),
        Some(403),
        "resourceNames restricts names"
    );
    assert_eq!(
        cms.list(&ListParams::default())
            .await
            .err()
            .as_ref()
            .and_then(code),
        Some(403)
    );
    let elsewhere: Api<Pod> = Api::namespaced(sa.clone(), "kube-system");
    assert_eq!(
        elsewhere
            .list(&ListParams::default())
            .await
            .err()
            .as_ref()
            .and_then(code),
        Some(403),
        "a Role binds in its namespace only"
    );

    let mut proc = pods
        .exec("app", ["echo", "hi"], &AttachParams::default().stderr(false))
        .await?;
    let out = api_common::read_all(proc.stdout().ok_or("no stdout")?).await?;
    assert_eq!(out, b"hi\n");
    proc.join().await?;
    Ok(())
}

#[tokio::test]
async fn pods_exec_needs_its_own_rule_beyond_reading_pods() -> Result {
    let server = setup().await?;
    let admin = server.client();
    let role: Role = serde_json::from_value(json!({
        "metadata": {"name": "reader"},
        "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["*"]}],
    }))?;
    Api::<Role>::namespaced(admin.clone(), "default")
        .create(&PostParams::default(), &role)
        .await?;
    let binding: RoleBinding = serde_json::from_value(json!({
        "metadata": {"name": "reader"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "reader"},
        "subjects": [{"kind": "ServiceAccount", "name": "runner"}],
    }))?;
    Api::<RoleBinding>::namespaced(admin.clone(), "default")
        .create(&PostParams::default(), &binding)
        .await?;
    let sa = server.client_with_token(&server.service_account_token("default", "runner"));
    let pods: Api<Pod> = Api::namespaced(sa, "default");
    pods.get("app").await?;
    match pods.exec("app", ["echo", "hi"], &AttachParams::default()).await {
        Err(kube::Error::Api(s)) => {
            assert_eq!(s.code, 403);
            assert!(
                s.message.contains("cannot create resource \"pods/exec\""),
                "{}",
                s.message
            );
        }
        Err(other) => panic!("expected 403, got {other:?}"),
        Ok(_) => panic!("exec was allowed without a pods/exec rule"),
    }
    Ok(())
}

#[tokio::test]
async fn cluster_roles_bound_to_service_account_groups_apply_cluster_wide() -> Result {
    let server = setup().await?;
    let admin = server.client();
    let cr: ClusterRole = serde_json::from_value(json!({
        "metadata": {"name": "ns-reader"},
        "rules": [{"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get", "list"]}],
    }))?;
    Api::<ClusterRole>::all(admin.clone())
        .create(&PostParams::default(), &cr)
        .await?;
    let sa = server.client_with_token(&server.service_account_token("default", "runner"));
    let nss: Api<Namespace> = Api::all(sa.clone());
    assert_eq!(
        nss.list(&ListParams::default())
            .await
            .err()
            .as_ref()
            .and_then(code),
        Some(403)
    );
    let crb: ClusterRoleBinding = serde_json::from_value(json!({
        "metadata": {"name": "ns-reader"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "ns-reader"},
        "subjects": [{"kind": "Group", "name": "system:serviceaccounts:default", "apiGroup": "rbac.authorization.k8s.io"}],
    }))?;
    Api::<ClusterRoleBinding>::all(admin.clone())
        .create(&PostParams::default(), &crb)
        .await?;
    assert!(nss.list(&ListParams::default()).await?.items.len() >= 4);
    assert_eq!(
        Api::<Pod>::namespaced(sa, "default")
            .list(&ListParams::default())
            .await
            .err()
            .as_ref()
            .and_then(code),
        Some(403)
    );
    Ok(())
}
