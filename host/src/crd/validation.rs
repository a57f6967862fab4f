//! Operator-side checks of rules the CRD schema also states as CEL (`x-kubernetes-validations`).
//!
//! The API server enforces the CEL rules on a real cluster, but the sandbox API server skips CEL and objects
//! may predate the rules, so the operator re-checks them before planning and reports this error.

/// A spec that breaks one of the rules written into the CRD schema.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidationError {
    /// More than one storage backend is set in one `backend`.
    #[error("backend sets more than one storage type ({}); set at most one of azure, b2, gcs, local, rest, s3, swift", .kinds.join(", "))]
    MultipleBackends {
        /// The JSON names of the storage types that are set, in K8up's precedence order.
        kinds: Vec<&'static str>,
    },
    /// `rest.passwordSecretRef` and K8up's misspelt `rest.passwordSecretReg` are both set and differ.
    #[error(
        "backend.rest sets both passwordSecretRef and passwordSecretReg (K8up's misspelling) with different values; keep only passwordSecretRef"
    )]
    ConflictingRestPassword,
    /// A Restore has no `restoreMethod` at all.
    #[error("spec.restoreMethod is missing; set restoreMethod.s3 or restoreMethod.folder")]
    MissingRestoreMethod,
    /// `restoreMethod` sets neither `s3` nor `folder`.
    #[error("restoreMethod sets neither s3 nor folder; set exactly one of them")]
    NoRestoreMethod,
    /// `restoreMethod` sets both `s3` and `folder`.
    #[error("restoreMethod sets both s3 and folder; set exactly one of them")]
    MultipleRestoreMethods,
}
