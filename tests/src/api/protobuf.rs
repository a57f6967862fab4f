//! Decoding of the Kubernetes protobuf request encoding for the few kinds that kubectl's typed
//! clients send that way (`kubectl auth can-i`, `kubectl create namespace|configmap|secret|
//! serviceaccount|job|deployment`). Each supported message is described by a field table; unknown fields are
//! skipped. Responses are always JSON, which clients accept.

use base64::Engine;
use serde_json::{Map, Value, json};

use super::status::ApiError;

/// The content type of protobuf bodies.
pub const CONTENT_TYPE: &str = "application/vnd.kubernetes.protobuf";

#[derive(Clone, Copy)]
enum F {
    Str,
    Bytes,
    Bool,
    Int,
    RepStr,
    MapStr,
    MapBytes,
    Msg(&'static [Field]),
    RepMsg(&'static [Field]),
}

type Field = (u32, &'static str, F);

const OBJECT_META: &[Field] = &[
    (1, "name", F::Str),
    (2, "generateName", F::Str),
    (3, "namespace", F::Str),
    (11, "labels", F::MapStr),
    (12, "annotations", F::MapStr),
    (14, "finalizers", F::RepStr),
];
const RESOURCE_ATTRIBUTES: &[Field] = &[
    (1, "namespace", F::Str),
    (2, "verb", F::Str),
    (3, "group", F::Str),
    (4, "version", F::Str),
    (5, "resource", F::Str),
    (6, "subresource", F::Str),
    (7, "name", F::Str),
];
const NON_RESOURCE_ATTRIBUTES: &[Field] = &[(1, "path", F::Str), (2, "verb", F::Str)];
const SSAR_SPEC: &[Field] = &[
    (1, "resourceAttributes", F::Msg(RESOURCE_ATTRIBUTES)),
    (2, "nonResourceAttributes", F::Msg(NON_RESOURCE_ATTRIBUTES)),
];
const SAR_SPEC: &[Field] = &[
    (1, "resourceAttributes", F::Msg(RESOURCE_ATTRIBUTES)),
    (2, "nonResourceAttributes", F::Msg(NON_RESOURCE_ATTRIBUTES)),
    (3, "user", F::Str),
    (4, "groups", F::RepStr),
    (6, "uid", F::Str),
];
const SSAR: &[Field] = &[
    (1, "metadata", F::Msg(OBJECT_META)),
    (2, "spec", F::Msg(SSAR_SPEC)),
];
const SAR: &[Field] = &[
    (1, "metadata", F::Msg(OBJECT_META)),
    (2, "spec", F::Msg(SAR_SPEC)),
];
const NAMESPACE: &[Field] = &[(1, "metadata", F::Msg(OBJECT_META))];
const CONFIG_MAP: &[Field] = &[
    (1, "metadata", F::Msg(OBJECT_META)),
    (2, "data", F::MapStr),
    (3, "binaryData", F::MapBytes),
    (4, "immutable", F::Bool),
];
const SECRET: &[Field] = &[
    (1, "metadata", F::Msg(OBJECT_META)),
    (2, "data", F::MapBytes),
    (3, "type", F::Str),
    (4, "stringData", F::MapStr),
    (5, "immutable", F::Bool),
];
const SERVICE_ACCOUNT: &[Field] = &[
    (1, "metadata", F::Msg(OBJECT_META)),
    (4, "automountServiceAccountToken", F::Bool),
];
const LABEL_SELECTOR: &[Field] = &[(1, "matchLabels", F::MapStr)];
const ENV_VAR: &[Field] = &[(1, "name", F::Str), (2, "value", F::Str)];
const CONTAINER: &[Field] = &[
    (1, "name", F::Str),
    (2, "image", F::Str),
    (3, "command", F::RepStr),
    (4, "args", F::RepStr),
    (5, "workingDir", F::Str),
    (7, "env", F::RepMsg(ENV_VAR)),
    (14, "imagePullPolicy", F::Str),
];
const POD_SPEC: &[Field] = &[
    (2, "containers", F::RepMsg(CONTAINER)),
    (3, "restartPolicy", F::Str),
    (8, "serviceAccountName", F::Str),
];
const POD_TEMPLATE_SPEC: &[Field] = &[
    (1, "metadata", F::Msg(OBJECT_META)),
    (2, "spec", F::Msg(POD_SPEC)),
];
const JOB_SPEC: &[Field] = &[
    (1, "parallelism", F::Int),
    (2, "completions", F::Int),
    (3, "activeDeadlineSeconds", F::Int),
    (6, "template", F::Msg(POD_TEMPLATE_SPEC)),
    (7, "backoffLimit", F::Int),
];
const JOB: &[Field] = &[
    (1, "metadata", F::Msg(OBJECT_META)),
    (2, "spec", F::Msg(JOB_SPEC)),
];
const DEPLOYMENT_SPEC: &[Field] = &[
    (1, "replicas", F::Int),
    (2, "selector", F::Msg(LABEL_SELECTOR)),
    (3, "template", F::Msg(POD_TEMPLATE_SPEC)),
];
const DEPLOYMENT: &[Field] = &[
    (1, "metadata", F::Msg(OBJECT_META)),
    (2, "spec", F::Msg(DEPLOYMENT_SPEC)),
];
const TYPE_META: &[Field] = &[(1, "apiVersion", F::Str), (2, "kind", F::Str)];
const UNKNOWN: &[Field] = &[(1, "typeMeta", F::Msg(TYPE_META)), (2, "raw", F::Bytes)];

fn bad(what: &str) -> ApiError {
    ApiError::bad_request(format!("failed to decode the protobuf body: {what}"))
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Result<u64, ApiError> {
        let mut out = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *self.buf.get(self.pos).ok_or_else(|| bad("truncated varint"))?;
            self.pos += 1;
            out |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(out);
            }
        }
        Err(bad("varint too long"))
    }

    fn bytes(&mut self) -> Result<&'a [u8], ApiError> {
        let len = usize::try_from(self.varint()?).map_err(|_| bad("length"))?;
        let end = self
            .pos
            .checked_add(len)
            .filter(|e| *e <= self.buf.len())
            .ok_or_else(|| bad("truncated field"))?;
        let out = &self.buf[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn skip(&mut self, wire: u64) -> Result<(), ApiError> {
        match wire {
            0 => self.varint().map(|_| ()),
            1 => {
                self.pos += 8;
                Ok(())
            }
            2 => self.bytes().map(|_| ()),
            5 => {
                self.pos += 4;
                Ok(())
            }
            _ => Err(bad("unsupported wire type")),
        }
    }
}

fn text(b: &[u8]) -> Result<String, ApiError> {
    String::from_utf8(b.to_vec()).map_err(|_| bad("invalid UTF-8"))
}

fn map_entry(b: &[u8], bytes_value: bool) -> Result<(String, Value), ApiError> {
    let mut r = Reader { buf: b, pos: 0 };
    let (mut k, mut v) = (String::new(), Value::String(String::new()));
    while r.pos < b.len() {
        let key = r.varint()?;
        match (key >> 3, key & 7) {
            (1, 2) => k = text(r.bytes()?)?,
            (2, 2) => {
                let raw = r.bytes()?;
                v = if bytes_value {
                    json!(base64::engine::general_purpose::STANDARD.encode(raw))
                } else {
                    json!(text(raw)?)
                };
            }
            (_, wire) => r.skip(wire)?,
        }
    }
    Ok((k, v))
}

fn decode(schema: &[Field], b: &[u8]) -> Result<Value, ApiError> {
    let mut r = Reader { buf: b, pos: 0 };
    let mut out = Map::new();
    while r.pos < b.len() {
        let key = r.varint()?;
        let (num, wire) = (key >> 3, key & 7);
        let Some((_, name, kind)) = schema.iter().find(|(n, _, _)| u64::from(*n) == num) else {
            r.skip(wire)?;
            continue;
        };
        let name = name.to_string();
        match (kind, wire) {
            (F::Str, 2) => {
                // Go encodes empty strings that its JSON encoding would omit.
                let t = text(r.bytes()?)?;
                if !t.is_empty() {
                    out.insert(name, json!(t));
                }
            }
            (F::Bytes, 2) => {
                out.insert(
                    name,
                    json!(base64::engine::general_purpose::STANDARD.encode(r.bytes()?)),
                );
            }
            (F::Bool, 0) => {
                out.insert(name, json!(r.varint()? != 0));
            }
            (F::Int, 0) => {
                // int32/int64 fields are plain varints (negative values are not expected here).
                out.insert(name, json!(r.varint()? as i64));
            }
            (F::RepMsg(sub), 2) => {
                let v = decode(sub, r.bytes()?)?;
                let e = out.entry(name).or_insert_with(|| json!([]));
                if let Some(a) = e.as_array_mut() {
                    a.push(v);
                }
            }
            (F::RepStr, 2) => {
                let s = text(r.bytes()?)?;
                let e = out.entry(name).or_insert_with(|| json!([]));
                if let Some(a) = e.as_array_mut() {
                    a.push(json!(s));
                }
            }
            (F::MapStr | F::MapBytes, 2) => {
                let (k, v) = map_entry(r.bytes()?, matches!(kind, F::MapBytes))?;
                let e = out.entry(name).or_insert_with(|| json!({}));
                if let Some(m) = e.as_object_mut() {
                    m.insert(k, v);
                }
            }
            (F::Msg(sub), 2) => {
                out.insert(name, decode(sub, r.bytes()?)?);
            }
            (_, wire) => r.skip(wire)?,
        }
    }
    Ok(Value::Object(out))
}

/// Decode a `k8s\0`-prefixed protobuf body into the JSON object it encodes.
pub fn to_json(body: &[u8]) -> Result<Value, ApiError> {
    let inner = body
        .strip_prefix(b"k8s\0")
        .ok_or_else(|| bad("missing the k8s magic prefix"))?;
    let unknown = decode(UNKNOWN, inner)?;
    let kind = unknown
        .pointer("/typeMeta/kind")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let api_version = unknown
        .pointer("/typeMeta/apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let raw = unknown
        .get("raw")
        .and_then(Value::as_str)
        .and_then(|r| base64::engine::general_purpose::STANDARD.decode(r).ok())
        .unwrap_or_default();
    let schema = match kind.as_str() {
        "SelfSubjectAccessReview" => SSAR,
        "SubjectAccessReview" => SAR,
        "Namespace" => NAMESPACE,
        "ConfigMap" => CONFIG_MAP,
        "Secret" => SECRET,
        "ServiceAccount" => SERVICE_ACCOUNT,
        "Job" => JOB,
        "Deployment" => DEPLOYMENT,
        other => {
            return Err(ApiError::unsupported_media_type(format!(
                "the sandbox decodes protobuf only for a few kinds, not {other:?}; send JSON \
                 (e.g. `kubectl create ... --dry-run=client -o yaml | kubectl apply -f -`)"
            )));
        }
    };
    let mut obj = decode(schema, &raw)?;
    if let Some(m) = obj.as_object_mut() {
        m.insert("apiVersion".into(), json!(api_version));
        m.insert("kind".into(), json!(kind));
    }
    Ok(obj)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(num: u32, payload: &[u8]) -> Vec<u8> {
        let mut v = vec![(num << 3 | 2) as u8, payload.len() as u8];
        v.extend_from_slice(payload);
        v
    }

    #[test]
    fn a_config_map_in_the_kubernetes_envelope_decodes_to_json() -> Result<(), ApiError> {
        let meta = field(1, b"settings");
        let entry = [field(1, b"mode"), field(2, b"fast")].concat();
        let cm = [field(1, &meta), field(2, &entry)].concat();
        let type_meta = [field(1, b"v1"), field(2, b"ConfigMap")].concat();
        let unknown = [field(1, &type_meta), field(2, &cm)].concat();
        let body = [b"k8s\0".as_slice(), &unknown].concat();
        assert_eq!(
            to_json(&body)?,
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"}, "data": {"mode": "fast"}})
        );
        Ok(())
    }
}
