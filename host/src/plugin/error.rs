//! The plugin host's error type: every variant names the plugin (and its version once known).

use super::bindings::SUPPORTED_WIT_VERSIONS;
use super::bindings::current::k8up::plugin::types::PluginError;

/// Why loading, calling or trusting a plugin failed.
///
/// The variant name is a contract: the driver uses it as the Event reason and metric label.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The bytes are not a valid component for this engine.
    #[error("failed to compile plugin {plugin}: {message}")]
    CompilePlugin {
        /// Where the plugin came from (built-in name, ConfigMap, file).
        plugin: String,
        /// The compiler's message.
        message: String,
    },
    /// The component is built against a contract version this host does not run.
    #[error(
        "failed to load plugin {plugin}: it is built against k8up:plugin@{found}, this host supports {}",
        supported_versions()
    )]
    UnsupportedWitVersion {
        /// Where the plugin came from.
        plugin: String,
        /// The version the component names.
        found: String,
    },
    /// The component is not an action plugin at all.
    #[error("failed to load plugin {plugin}: not a k8up action plugin ({detail})")]
    NotAPlugin {
        /// Where the plugin came from.
        plugin: String,
        /// What is missing.
        detail: String,
    },
    /// Linking or instantiating the component failed (missing imports, start function trap).
    #[error("failed to instantiate plugin {plugin}: {message}")]
    InstantiatePlugin {
        /// Where the plugin came from.
        plugin: String,
        /// The engine's message.
        message: String,
    },
    /// The call ran past its epoch deadline.
    #[error("plugin {plugin} {version} timed out: {call} ran longer than {limit_ms} ms")]
    PluginTimeout {
        /// The plugin's name.
        plugin: String,
        /// The plugin's declared version.
        version: String,
        /// `describe` or `plan`.
        call: &'static str,
        /// The deadline.
        limit_ms: u128,
    },
    /// The call tried to grow memory past the cap.
    #[error("plugin {plugin} {version} exceeded its memory limit of {limit_bytes} bytes in {call}")]
    PluginMemory {
        /// The plugin's name.
        plugin: String,
        /// The plugin's declared version.
        version: String,
        /// `describe` or `plan`.
        call: &'static str,
        /// The cap.
        limit_bytes: usize,
    },
    /// The guest trapped (a panic, an abort, an out-of-bounds access).
    #[error(
        "plugin {plugin} {version} trapped in {call}: {trap}{}",
        stderr_suffix(stderr)
    )]
    PluginTrap {
        /// The plugin's name.
        plugin: String,
        /// The plugin's declared version.
        version: String,
        /// `describe` or `plan`.
        call: &'static str,
        /// The trap's description.
        trap: String,
        /// The tail of what the guest wrote to stderr (a panic message, usually).
        stderr: String,
    },
    /// The call failed for another reason (a host-side error while lifting results...).
    #[error("failed to call plugin {plugin} {version} ({call}): {message}")]
    CallPlugin {
        /// The plugin's name.
        plugin: String,
        /// The plugin's declared version.
        version: String,
        /// `describe` or `plan`.
        call: &'static str,
        /// The engine's message.
        message: String,
    },
    /// The plugin answered with an error of its own.
    #[error("plugin {plugin} {version} could not plan: {}", describe_plugin_error(error))]
    PlanFailed {
        /// The plugin's name.
        plugin: String,
        /// The plugin's declared version.
        version: String,
        /// What the plugin said.
        error: PluginError,
    },
    /// The plan broke one of the host's rules; nothing was built from it.
    #[error("plan of plugin {plugin} {version} rejected by rule {rule}: {detail}")]
    PlanRejected {
        /// The plugin's name.
        plugin: String,
        /// The plugin's declared version.
        version: String,
        /// The rule's stable name (see [`super::check::Rule`]).
        rule: &'static str,
        /// Which part of the plan broke it.
        detail: String,
    },
    /// The plugin does not declare the action it was asked to plan.
    #[error("plugin {plugin} {version} does not serve action {action}")]
    ActionNotServed {
        /// The plugin's name.
        plugin: String,
        /// The plugin's declared version.
        version: String,
        /// The action asked for.
        action: String,
    },
    /// A resource or the operator asked for a plugin nobody registered.
    #[error("plugin {plugin} is not registered{}", hint.as_deref().map(|h| format!(" ({h})")).unwrap_or_default())]
    PluginNotFound {
        /// The name asked for.
        plugin: String,
        /// What is known instead, or why it is unusable.
        hint: Option<String>,
    },
    /// A ConfigMap registers the plugin, but no version of it could be loaded (or several ConfigMaps claim
    /// the name).
    #[error("plugin {plugin} is registered but cannot be used: {reason}")]
    PluginUnavailable {
        /// The name asked for.
        plugin: String,
        /// Why, and what to change.
        reason: String,
    },
    /// The resource pins a digest the registered plugin does not have.
    #[error("plugin {plugin} has sha256 {actual}, but the resource pins {pinned}")]
    PluginPinMismatch {
        /// The plugin's name.
        plugin: String,
        /// The digest asked for.
        pinned: String,
        /// The digest registered.
        actual: String,
    },
    /// Setting up the engine itself failed.
    #[error("failed to create the plugin engine: {0}")]
    CreateEngine(String),
    /// A blocking task (compilation, a call) could not be joined.
    #[error("failed to join a plugin task: {0}")]
    JoinTask(String),
}

impl Error {
    /// The stable variant name, used as Event reason and metric label.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::CompilePlugin { .. } => "CompilePlugin",
            Error::UnsupportedWitVersion { .. } => "UnsupportedWitVersion",
            Error::NotAPlugin { .. } => "NotAPlugin",
            Error::InstantiatePlugin { .. } => "InstantiatePlugin",
            Error::PluginTimeout { .. } => "PluginTimeout",
            Error::PluginMemory { .. } => "PluginMemory",
            Error::PluginTrap { .. } => "PluginTrap",
            Error::CallPlugin { .. } => "CallPlugin",
            Error::PlanFailed { .. } => "PlanFailed",
            Error::PlanRejected { .. } => "PlanRejected",
            Error::ActionNotServed { .. } => "ActionNotServed",
            Error::PluginNotFound { .. } => "PluginNotFound",
            Error::PluginUnavailable { .. } => "PluginUnavailable",
            Error::PluginPinMismatch { .. } => "PluginPinMismatch",
            Error::CreateEngine(_) => "CreateEngine",
            Error::JoinTask(_) => "JoinTask",
        }
    }
}

fn supported_versions() -> String {
    SUPPORTED_WIT_VERSIONS
        .iter()
        .map(|v| format!("k8up:plugin@{v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn stderr_suffix(stderr: &str) -> String {
    let trimmed = stderr.trim();
    if trimmed.is_empty() {
        String::new()
    } else {
        format!(" (stderr: {trimmed})")
    }
}

fn describe_plugin_error(error: &PluginError) -> String {
    match error {
        PluginError::InvalidSpec(m) => format!("invalid spec: {m}"),
        PluginError::UnsupportedAction(a) => format!("unsupported action {}", action_name(*a)),
        PluginError::Internal(m) => format!("internal error: {m}"),
    }
}

/// The lowercase name of an action, as in Job names and labels.
pub fn action_name(action: super::bindings::current::k8up::plugin::types::Action) -> &'static str {
    use super::bindings::current::k8up::plugin::types::Action;
    match action {
        Action::Backup => "backup",
        Action::Prune => "prune",
        Action::Check => "check",
        Action::Archive => "archive",
        Action::Restore => "restore",
    }
}
