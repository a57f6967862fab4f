//! Schema helpers shared by the resource types: hand-written fragments where derived ones would be too big.

use schemars::{Schema, SchemaGenerator, json_schema};

/// Schema for an embedded Kubernetes object we do not want to spell out (a whole `PodTemplateSpec` would add
/// thousands of lines to the CRD): an object whose content the API server keeps as written.
///
/// The Rust side still deserialises it into the typed `k8s-openapi` struct, so the operator sees typed data.
pub fn preserve_unknown_object(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true,
    })
}
