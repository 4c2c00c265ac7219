//! The one error type of the plugin host.

use super::types::PluginKind;

/// Why a plugin operation failed. Every variant's message is fit for a delivery log or an
/// API answer; none contains a setting's value.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No plugin of that name is visible to the tenant.
    #[error("no plugin named `{0}`")]
    NotFound(String),
    /// The plugin exists but implements another world.
    #[error("plugin `{name}` is an {actual} plugin, not an {expected} plugin")]
    WrongKind {
        /// The plugin's name.
        name: String,
        /// The kind the caller needed.
        expected: PluginKind,
        /// The kind it is.
        actual: PluginKind,
    },
    /// An uploaded component was refused.
    #[error("invalid plugin: {0}")]
    Invalid(String),
    /// Built-in plugins cannot be removed or replaced.
    #[error("`{0}` is a built-in plugin and cannot be removed or replaced")]
    BuiltIn(String),
    /// The call ran past its deadline and was stopped.
    #[error("the plugin did not finish in time and was stopped")]
    Timeout,
    /// The plugin crashed (a WebAssembly trap, e.g. a panic).
    #[error("the plugin crashed: {0}")]
    Trap(String),
    /// The plugin hit its memory cap or another sandbox limit, or no instance was free.
    #[error("the plugin exceeded a limit: {0}")]
    ResourceLimit(String),
    /// The plugin returned something the host cannot use.
    #[error("the plugin returned unusable output: {0}")]
    BadOutput(String),
    /// The plugin returned an error of its own.
    #[error("the plugin refused: {0}")]
    Rejected(String),
    /// The settings given for a plugin do not match what it declares.
    #[error("invalid settings: {0}")]
    InvalidSettings(String),
    /// Reading or writing plugin files failed.
    #[error("plugin storage failed")]
    Io(#[source] std::io::Error),
    /// The WebAssembly engine could not be set up.
    #[error("the plugin engine failed: {0}")]
    Engine(String),
}

impl Error {
    /// A stable, machine-readable code for API answers and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotFound(_) => "plugin_not_found",
            Self::WrongKind { .. } => "plugin_wrong_kind",
            Self::Invalid(_) => "plugin_invalid",
            Self::BuiltIn(_) => "plugin_built_in",
            Self::Timeout => "plugin_timeout",
            Self::Trap(_) => "plugin_trap",
            Self::ResourceLimit(_) => "plugin_resource_limit",
            Self::BadOutput(_) => "plugin_bad_output",
            Self::Rejected(_) => "plugin_rejected",
            Self::InvalidSettings(_) => "plugin_invalid_settings",
            Self::Io(_) => "plugin_io",
            Self::Engine(_) => "plugin_engine",
        }
    }
}
