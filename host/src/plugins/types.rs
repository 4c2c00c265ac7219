//! The plain data the rest of the host exchanges with plugins. No wasmtime types here:
//! `bindings.rs` converts to and from the generated ones.

use serde::{Deserialize, Serialize};

/// One published event, as a plugin sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Event {
    /// The event id (`evt_…`).
    pub id: String,
    /// The tenant it belongs to.
    pub tenant: String,
    /// Its topic, e.g. `Accounts.Update`.
    pub topic: String,
    /// When it happened, in milliseconds since the Unix epoch.
    pub occurred_at_ms: u64,
    /// What it is about, if anything.
    pub subject: Option<Subject>,
    /// The media type of `payload`.
    pub content_type: String,
    /// The payload as published.
    pub payload: Vec<u8>,
}

/// Who or what an event is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Subject {
    /// The kind of subject, e.g. `user`.
    pub kind: String,
    /// Its id.
    pub id: String,
    /// Attributes authorization filters look at, e.g. `("org-unit", "sales")`.
    pub attributes: Vec<(String, String)>,
}

/// The account on whose behalf a webhook is received.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Principal {
    /// The API account id.
    pub id: String,
    /// Its permissions.
    pub permissions: Vec<String>,
    /// Its data scope: attribute name to the values it may see (`*` = every value).
    pub scopes: Vec<(String, Vec<String>)>,
}

/// A webhook request about to be sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OutgoingRequest {
    /// The HTTP method.
    pub method: String,
    /// The receiver's URL.
    pub url: String,
    /// The headers, in order.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

/// What is known about the delivery a request belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DeliveryContext {
    /// The delivery id, the same on every attempt.
    pub delivery_id: String,
    /// The event id.
    pub event_id: String,
    /// The event's topic.
    pub topic: String,
    /// The attempt number, starting at 1.
    pub attempt: u32,
}

/// A transformed payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Body {
    /// The media type to send it with.
    pub content_type: String,
    /// The bytes to send.
    pub bytes: Vec<u8>,
}

/// What a plugin says about itself, plus the kind the host found it to be.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PluginInfo {
    /// Its name, how receivers refer to it.
    pub name: String,
    /// Its version.
    pub version: String,
    /// A sentence or two for operators and administrators.
    pub description: String,
    /// The settings it takes.
    pub settings: Vec<Setting>,
    /// Which world it implements.
    pub kind: PluginKind,
}

/// One setting a plugin takes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Setting {
    /// Its key.
    pub name: String,
    /// What it means.
    pub description: String,
    /// Write-only: masked in the API and UI.
    pub secret: bool,
    /// Whether a receiver must set it.
    pub required: bool,
}

/// The three kinds of plugin, one per WIT world.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum PluginKind {
    /// World `auth-protocol`: signs or authorizes outgoing requests.
    AuthProtocol,
    /// World `payload-transform`: turns an event into a body.
    PayloadTransform,
    /// World `authorization-filter`: decides who may receive an event.
    AuthorizationFilter,
}

impl PluginKind {
    /// The WIT world's name, e.g. `auth-protocol`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AuthProtocol => "auth-protocol",
            Self::PayloadTransform => "payload-transform",
            Self::AuthorizationFilter => "authorization-filter",
        }
    }
}

impl std::fmt::Display for PluginKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A receiver's settings for a plugin.
pub type Settings = std::collections::BTreeMap<String, String>;

/// Counters for operators and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PluginStats {
    /// Components compiled from WebAssembly since start.
    pub compiled: u64,
    /// Components loaded from the precompiled cache since start.
    pub cache_hits: u64,
    /// Instances created since start.
    pub instantiated: u64,
    /// Calls answered by a warm (reused) instance since start.
    pub warm_calls: u64,
}

/// Who sees a plugin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Scope {
    /// Every tenant: built-ins, operator uploads and the plugin directory.
    Global,
    /// One tenant only.
    Tenant,
}

/// Where a plugin came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Origin {
    /// Embedded in the host binary; cannot be removed or replaced.
    BuiltIn,
    /// Uploaded through the API.
    Uploaded,
    /// Found in the configured plugin directory.
    Directory,
}

/// A plugin as the API lists it: what it says about itself and where it lives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct InstalledPlugin {
    /// What the plugin says about itself.
    #[serde(flatten)]
    pub info: PluginInfo,
    /// Whether it is built in.
    pub builtin: bool,
    /// Who sees it.
    pub scope: Scope,
    /// Where it came from.
    pub origin: Origin,
}
