//! The built-in plugins, compiled for `wasm32-wasip2` by `host/build.rs` and embedded in the binary.
//!
//! The list of built-ins is the `BUILTINS` table in `host/build.rs`: adding a row there (and the crate to the
//! workspace) is all it takes to embed another one. An action without a built-in gets a clear
//! `PluginNotFound` error naming the action, never a silent default.

use crate::crd::JobType;

/// One embedded component.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Builtin {
    /// The action it plans (`backup`, `prune`, ...).
    pub action: &'static str,
    /// The crate it was built from.
    pub crate_name: &'static str,
    /// The component.
    pub bytes: &'static [u8],
}

impl Builtin {
    /// Where the bytes came from, as plugin errors name it (`builtin:backup`).
    pub fn source(&self) -> String {
        format!("builtin:{}", self.action)
    }
}

include!(concat!(env!("OUT_DIR"), "/builtins.rs"));

/// Every embedded built-in.
pub fn embedded() -> &'static [Builtin] {
    EMBEDDED
}

/// The built-in of `job_type`, if this build embeds one.
pub fn for_action(job_type: JobType) -> Option<&'static Builtin> {
    EMBEDDED.iter().find(|b| b.action == job_type.as_str())
}

/// The actions with a built-in, comma-separated (for error messages).
pub fn actions() -> String {
    let names: Vec<&str> = EMBEDDED.iter().map(|b| b.action).collect();
    if names.is_empty() {
        "none".to_string()
    } else {
        names.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backup_built_in_is_embedded_as_a_component() {
        let backup = for_action(JobType::Backup).unwrap();
        assert_eq!(backup.crate_name, "k8up-plugin-backup");
        assert_eq!(&backup.bytes[..4], b"\0asm", "a WebAssembly binary");
        assert_eq!(backup.source(), "builtin:backup");
        assert!(actions().contains("backup"));
    }
}
