//! HTTP request handling: non-resource endpoints (discovery, version, health), path parsing,
//! authentication, authorization, fault injection, and dispatch of each verb.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use http::{Method, Response, StatusCode};
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::auth::{Attributes, User};
use super::objects::{DeleteOptions, Propagation, meta_str, present};
use super::patch::PatchKind;
use super::resources::{ResourceInfo, api_resources};
use super::selectors::{FieldSelector, LabelSelector};
use super::status::ApiError;
use super::watch::WatchParams;
use super::{ApiServer, ObjKey};
use crate::node::NodeError;

/// The response body type of the server.
pub(crate) type Body = http_body_util::combinators::UnsyncBoxBody<Bytes, std::io::Error>;

pub(crate) fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

pub(crate) fn json_response(code: u16, v: &Value) -> Response<Body> {
    let body = serde_json::to_vec(v).unwrap_or_default();
    let mut resp = Response::new(full(body));
    *resp.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::OK);
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    resp
}

pub(crate) fn error_response(e: &ApiError) -> Response<Body> {
    json_response(e.code, &e.to_status())
}

fn stream_response(rx: mpsc::Receiver<Bytes>, content_type: &'static str) -> Response<Body> {
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok(Frame::data(b)), rx))
    });
    let mut resp = Response::new(StreamBody::new(stream).boxed_unsync());
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(content_type),
    );
    resp
}

/// The query string as pairs.
pub(crate) struct Query(Vec<(String, String)>);

impl Query {
    fn parse(q: Option<&str>) -> Self {
        Self(
            url::form_urlencoded::parse(q.unwrap_or("").as_bytes())
                .into_owned()
                .collect(),
        )
    }

    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    pub(crate) fn all(&self, key: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .collect()
    }

    pub(crate) fn flag(&self, key: &str) -> bool {
        matches!(self.get(key), Some("true" | "1" | "True"))
    }
}

/// A parsed resource path.
#[derive(Debug, Default)]
struct ResPath {
    group: String,
    version: String,
    namespace: String,
    resource: String,
    name: Option<String>,
    sub: Option<String>,
    watch_prefix: bool,
}

fn parse_resource_path(group: &str, version: &str, segs: &[&str]) -> Option<ResPath> {
    let mut p = ResPath {
        group: group.into(),
        version: version.into(),
        ..Default::default()
    };
    let mut segs = segs;
    if segs.first() == Some(&"watch") {
        p.watch_prefix = true;
        segs = &segs[1..];
    }
    let rest: &[&str] = if segs.first() == Some(&"namespaces")
        && segs.len() >= 3
        && !(segs.len() == 3 && matches!(segs[2], "status" | "finalize"))
    {
        p.namespace = segs[1].to_string();
        &segs[2..]
    } else {
        segs
    };
    match rest {
        [res] => p.resource = res.to_string(),
        [res, name] => {
            p.resource = res.to_string();
            p.name = Some(name.to_string());
        }
        [res, name, sub] => {
            p.resource = res.to_string();
            p.name = Some(name.to_string());
            p.sub = Some(sub.to_string());
        }
        _ => return None,
    }
    Some(p)
}

impl ApiServer {
    /// Handle one request (any body type); never fails, errors become `Status` responses.
    pub(crate) async fn handle<B>(self: Arc<Self>, req: http::Request<B>) -> Response<Body>
    where
        B: hyper::body::Body<Data = Bytes> + Send + 'static,
        B::Error: std::fmt::Display,
    {
        let (mut parts, body) = req.into_parts();
        let upgrade = parts.extensions.remove::<hyper::upgrade::OnUpgrade>();
        let body = match body.collect().await {
            Ok(b) => b.to_bytes(),
            Err(e) => {
                return error_response(&ApiError::bad_request(format!(
                    "failed to read the request body: {e}"
                )));
            }
        };
        match self.route(&parts, body, upgrade).await {
            Ok(resp) => resp,
            Err(e) => error_response(&e),
        }
    }

    async fn route(
        self: &Arc<Self>,
        parts: &http::request::Parts,
        body: Bytes,
        upgrade: Option<hyper::upgrade::OnUpgrade>,
    ) -> Result<Response<Body>, ApiError> {
        let path = parts.uri.path().trim_end_matches('/').to_string();
        let query = Query::parse(parts.uri.query());
        match path.as_str() {
            "/healthz" | "/livez" | "/readyz" => {
                let mut r = Response::new(full("ok"));
                r.headers_mut().insert(
                    http::header::CONTENT_TYPE,
                    http::HeaderValue::from_static("text/plain"),
                );
                return Ok(r);
            }
            "/version" => return Ok(json_response(200, &self.version_info())),
            _ => {}
        }
        let user = self.authenticate(&parts.headers)?;
        if path == "/api" {
            let addr = self
                .https_addr
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .map(|a| a.to_string())
                .unwrap_or_default();
            return Ok(json_response(
                200,
                &json!({"kind": "APIVersions", "versions": ["v1"],
                    "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": addr}]}),
            ));
        }
        if path == "/apis" {
            let groups: Vec<Value> = self
                .registry
                .groups()
                .iter()
                .map(|(g, vs)| group_json(g, vs))
                .collect();
            return Ok(json_response(
                200,
                &json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}),
            ));
        }
        let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let (group, version, rest) = match segs.as_slice() {
            ["api", v, rest @ ..] => ("", *v, rest),
            ["apis", g] => {
                let groups = self.registry.groups();
                let (g, vs) = groups
                    .iter()
                    .find(|(name, _)| name == g)
                    .ok_or_else(ApiError::no_route)?;
                let mut doc = group_json(g, vs);
                doc["kind"] = json!("APIGroup");
                doc["apiVersion"] = json!("v1");
                return Ok(json_response(200, &doc));
            }
            ["apis", g, v, rest @ ..] => (*g, *v, rest),
            _ => return Err(ApiError::no_route()),
        };
        if rest.is_empty() {
            let resources = api_resources(&self.registry, group, version);
            if resources.is_empty() {
                return Err(ApiError::no_route());
            }
            let gv = if group.is_empty() {
                version.to_string()
            } else {
                format!("{group}/{version}")
            };
            return Ok(json_response(
                200,
                &json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}),
            ));
        }
        let p = parse_resource_path(group, version, rest).ok_or_else(ApiError::no_route)?;
        let res = self
            .registry
            .lookup(&p.group, &p.version, &p.resource)
            .ok_or_else(ApiError::no_route)?;
        if !res.namespaced && !p.namespace.is_empty() {
            return Err(ApiError::no_route());
        }
        self.dispatch(parts, &query, body, upgrade, &user, &res, &p).await
    }

    pub(crate) fn version_info(&self) -> Value {
        let v = self.config.git_version.trim_start_matches('v');
        let mut it = v.split('.');
        let major = it.next().unwrap_or("1");
        let minor = it.next().unwrap_or("33");
        json!({
            "major": major, "minor": minor, "gitVersion": self.config.git_version,
            "gitCommit": "0000000000000000000000000000000000000000", "gitTreeState": "clean",
            "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.24", "compiler": "gc", "platform": "linux/amd64",
        })
    }

    #[allow(clippy::too_many_arguments)]
    async fn dispatch(
        self: &Arc<Self>,
        parts: &http::request::Parts,
        q: &Query,
        body: Bytes,
        upgrade: Option<hyper::upgrade::OnUpgrade>,
        user: &User,
        res: &ResourceInfo,
        p: &ResPath,
    ) -> Result<Response<Body>, ApiError> {
        let method = &parts.method;
        let watch = p.watch_prefix || q.flag("watch");
        let name = p.name.clone().unwrap_or_default();
        let verb = match (method.as_str(), p.name.is_some(), p.sub.as_deref()) {
            (_, true, Some("exec")) => "create",
            ("GET", false, _) if watch => "watch",
            ("GET", false, _) => "list",
            ("GET", true, _) => "get",
            ("POST", _, _) => "create",
            ("PUT", _, _) => "update",
            ("PATCH", _, _) => "patch",
            ("DELETE", true, _) => "delete",
            ("DELETE", false, _) => "deletecollection",
            (m, _, _) => {
                return Err(ApiError::method_not_allowed(format!(
                    "the server does not allow this method on the requested resource: {m}"
                )));
            }
        };
        let attrs = Attributes {
            verb: verb.to_string(),
            group: res.group.clone(),
            resource: res.plural.clone(),
            subresource: p.sub.clone(),
            namespace: p.namespace.clone(),
            name: name.clone(),
        };
        self.authorize(user, &attrs)?;
        let write = !matches!(verb, "get" | "list" | "watch");
        let decision = self.faults.decide(write);
        if let Some(d) = decision.delay {
            tokio::time::sleep(d).await;
        }
        if let Some(e) = decision.error {
            return Err(e);
        }
        let dry_run = q.get("dryRun") == Some("All");
        let ns = p.namespace.as_str();
        let v = p.version.as_str();
        match (method.clone(), p.name.as_deref(), p.sub.as_deref()) {
            (Method::GET, None, None) if watch => {
                let params = WatchParams {
                    namespace: (!ns.is_empty()).then(|| ns.to_string()),
                    labels: LabelSelector::parse(q.get("labelSelector").unwrap_or(""))?,
                    fields: FieldSelector::parse(q.get("fieldSelector").unwrap_or(""))?,
                    resource_version: q.get("resourceVersion").map(String::from),
                    bookmarks: q.flag("allowWatchBookmarks"),
                    send_initial_events: q.flag("sendInitialEvents"),
                    timeout: q
                        .get("timeoutSeconds")
                        .and_then(|t| t.parse().ok())
                        .map(Duration::from_secs),
                };
                let rx = self.start_watch(res.clone(), v.to_string(), params)?;
                Ok(stream_response(rx, "application/json"))
            }
            (Method::GET, None, None) => {
                let labels = LabelSelector::parse(q.get("labelSelector").unwrap_or(""))?;
                let fields = FieldSelector::parse(q.get("fieldSelector").unwrap_or(""))?;
                let (items, rv) = self
                    .store
                    .list(&res.group, &res.plural, (!ns.is_empty()).then_some(ns));
                let items: Vec<Value> = items
                    .iter()
                    .filter(|o| labels.matches_object(o) && fields.matches(o))
                    .map(|o| present(res, v, o))
                    .collect();
                Ok(json_response(
                    200,
                    &json!({"kind": format!("{}List", res.kind), "apiVersion": res.api_version(v),
                        "metadata": {"resourceVersion": rv.to_string()}, "items": items}),
                ))
            }
            (Method::GET, Some(n), None | Some("status")) => {
                if p.sub.is_some() && !res.status {
                    return Err(ApiError::no_route());
                }
                let obj = self
                    .store
                    .get(&Self::key(res, ns, n))
                    .ok_or_else(|| ApiError::not_found(&res.group, &res.plural, n))?;
                Ok(json_response(200, &present(res, v, &obj)))
            }
            (Method::POST, None, None) => {
                let obj = parse_json(&body)?;
                let created = self.create_object(res, v, ns, obj, dry_run)?;
                Ok(json_response(201, &present(res, v, &created)))
            }
            (Method::PUT, Some(n), sub @ (None | Some("status"))) => {
                if sub.is_some() && !res.status {
                    return Err(ApiError::no_route());
                }
                let obj = parse_json(&body)?;
                let updated = self.update_object(res, v, ns, n, obj, sub.is_some(), dry_run)?;
                Ok(json_response(200, &present(res, v, &updated)))
            }
            (Method::PATCH, Some(n), sub @ (None | Some("status"))) => {
                if sub.is_some() && !res.status {
                    return Err(ApiError::no_route());
                }
                let ct = parts
                    .headers
                    .get(http::header::CONTENT_TYPE)
                    .and_then(|h| h.to_str().ok())
                    .unwrap_or("");
                let kind = PatchKind::from_content_type(ct)?;
                let (obj, created) = self.patch_object(
                    res,
                    v,
                    ns,
                    n,
                    kind,
                    &body,
                    q.get("fieldManager"),
                    sub.is_some(),
                    dry_run,
                )?;
                Ok(json_response(
                    if created { 201 } else { 200 },
                    &present(res, v, &obj),
                ))
            }
            (Method::DELETE, Some(n), None) => {
                let opts = delete_options(q, &body)?;
                let obj = self.delete_object(res, ns, n, &opts)?;
                Ok(json_response(200, &present(res, v, &obj)))
            }
            (Method::DELETE, None, None) => {
                let opts = delete_options(q, &body)?;
                let labels = LabelSelector::parse(q.get("labelSelector").unwrap_or(""))?;
                let fields = FieldSelector::parse(q.get("fieldSelector").unwrap_or(""))?;
                let (items, _) = self
                    .store
                    .list(&res.group, &res.plural, (!ns.is_empty()).then_some(ns));
                let mut deleted = Vec::new();
                for o in items
                    .iter()
                    .filter(|o| labels.matches_object(o) && fields.matches(o))
                {
                    let (Some(name), obj_ns) = (meta_str(o, "name"), meta_str(o, "namespace").unwrap_or(""))
                    else {
                        continue;
                    };
                    match self.delete_object(res, obj_ns, name, &opts) {
                        Ok(d) => deleted.push(present(res, v, &d)),
                        Err(e) if e.code == 404 => {}
                        Err(e) => return Err(e),
                    }
                }
                Ok(json_response(
                    200,
                    &json!({"kind": format!("{}List", res.kind), "apiVersion": res.api_version(v),
                        "metadata": {"resourceVersion": self.store.current_rv().to_string()}, "items": deleted}),
                ))
            }
            (Method::GET | Method::POST, Some(n), Some("exec"))
                if res.group.is_empty() && res.plural == "pods" =>
            {
                self.exec(ns, n, q, &parts.headers, upgrade).await
            }
            (Method::GET, Some(n), Some("log")) if res.group.is_empty() && res.plural == "pods" => {
                self.logs(ns, n, q).await
            }
            (Method::POST, Some(n), Some("token"))
                if res.group.is_empty() && res.plural == "serviceaccounts" =>
            {
                if self.store.get(&Self::key(res, ns, n)).is_none() {
                    return Err(ApiError::not_found(&res.group, &res.plural, n));
                }
                let req = parse_json(&body).unwrap_or(json!({}));
                let seconds = req
                    .pointer("/spec/expirationSeconds")
                    .and_then(Value::as_i64)
                    .unwrap_or(3600);
                let exp = chrono::Utc::now() + chrono::Duration::seconds(seconds);
                let mut out = json!({"kind": "TokenRequest", "apiVersion": "authentication.k8s.io/v1",
                    "metadata": {"name": n, "namespace": ns}, "spec": req.get("spec").cloned().unwrap_or(json!({})),
                    "status": {"token": self.service_account_token(ns, n),
                        "expirationTimestamp": exp.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)}});
                out["metadata"]["creationTimestamp"] = Value::Null;
                Ok(json_response(201, &out))
            }
            (_, _, Some(_)) => Err(ApiError::no_route()),
            (m, _, _) => Err(ApiError::method_not_allowed(format!(
                "the server does not allow this method on the requested resource: {m}"
            ))),
        }
    }

    async fn logs(self: &Arc<Self>, ns: &str, name: &str, q: &Query) -> Result<Response<Body>, ApiError> {
        if self.store.get(&ObjKey::new("", "pods", ns, name)).is_none() {
            return Err(ApiError::not_found("", "pods", name));
        }
        let agent = self
            .node_agent()
            .ok_or_else(|| ApiError::internal("no node agent is attached to the sandbox"))?;
        let req = crate::node::LogRequest {
            namespace: ns.to_string(),
            pod: name.to_string(),
            container: q.get("container").map(String::from),
            follow: q.flag("follow"),
            tail_lines: q.get("tailLines").and_then(|t| t.parse().ok()),
            previous: q.flag("previous"),
        };
        let stream = agent.logs(req).await.map_err(node_error)?;
        let body = StreamBody::new(stream.map(|r| r.map(Frame::data))).boxed_unsync();
        let mut resp = Response::new(body);
        resp.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("text/plain"),
        );
        Ok(resp)
    }
}

pub(crate) fn node_error(e: NodeError) -> ApiError {
    match e {
        NodeError::NotFound(m) => {
            let mut err = ApiError::not_found("", "pods", "");
            err.message = m;
            err.details = None;
            err
        }
        NodeError::BadRequest(m) => ApiError::bad_request(m),
        NodeError::Internal(m) => ApiError::internal(m),
    }
}

fn group_json(group: &str, versions: &[String]) -> Value {
    let vs: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": format!("{group}/{v}"), "version": v}))
        .collect();
    json!({"name": group, "versions": vs, "preferredVersion": vs.first().cloned().unwrap_or(Value::Null)})
}

fn parse_json(body: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(body)
        .or_else(|_| serde_yaml::from_slice(body))
        .map_err(|e| ApiError::bad_request(format!("the body of the request could not be decoded: {e}")))
}

fn delete_options(q: &Query, body: &[u8]) -> Result<DeleteOptions, ApiError> {
    let b: Value = if body.is_empty() {
        json!({})
    } else {
        parse_json(body)?
    };
    let policy = q.get("propagationPolicy").map(String::from).or_else(|| {
        b.get("propagationPolicy")
            .and_then(Value::as_str)
            .map(String::from)
    });
    let dry = q.get("dryRun") == Some("All")
        || b.get("dryRun")
            .and_then(Value::as_array)
            .is_some_and(|a| a.iter().any(|v| v == "All"));
    let orphan = b.get("orphanDependents").and_then(Value::as_bool);
    let propagation = match (policy, orphan) {
        (Some(p), _) => Some(Propagation::parse(&p)?),
        (None, Some(true)) => Some(Propagation::Orphan),
        _ => None,
    };
    Ok(DeleteOptions {
        propagation,
        uid: b
            .pointer("/preconditions/uid")
            .and_then(Value::as_str)
            .map(String::from),
        resource_version: b
            .pointer("/preconditions/resourceVersion")
            .and_then(Value::as_str)
            .map(String::from),
        dry_run: dry,
    })
}
