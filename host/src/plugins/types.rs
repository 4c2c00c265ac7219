//! What the rest of the host hands plugins and gets back: plain Rust, no wasmtime.

use serde::{Deserialize, Serialize};

/// An event as plugins see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// `evt_…`
    pub id: String,
    /// The tenant.
    pub tenant: String,
    /// The topic.
    pub topic: String,
    /// When it happened, ms since the epoch.
    pub occurred_at_ms: u64,
    /// Who or what it is about.
    pub subject: Option<Subject>,
    /// The payload's media type.
    pub content_type: String,
    /// The payload.
    pub payload: Vec<u8>,
}

/// Who or what an event is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subject {
    /// E.g. `user`.
    pub kind: String,
    /// Its id.
    pub id: String,
    /// Attributes filters look at.
    pub attributes: Vec<(String, String)>,
}

/// The account a webhook is authorized against.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Principal {
    /// The API account id.
    pub id: String,
    /// Its permissions.
    pub permissions: Vec<String>,
    /// Its data scope: attribute → allowed values.
    pub scopes: Vec<(String, Vec<String>)>,
}

/// A webhook request about to be sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutgoingRequest {
    /// The HTTP method.
    pub method: String,
    /// The URL.
    pub url: String,
    /// The headers.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

/// What an auth-protocol plugin knows about the delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryContext {
    /// The delivery id (`Webhook-Id`).
    pub delivery_id: String,
    /// The event id.
    pub event_id: String,
    /// The topic.
    pub topic: String,
    /// The attempt number, from 1.
    pub attempt: u32,
}

/// A transformed payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Body {
    /// Its media type.
    pub content_type: String,
    /// Its bytes.
    pub bytes: Vec<u8>,
}

/// What a plugin says about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginInfo {
    /// Its name.
    pub name: String,
    /// Its version.
    pub version: String,
    /// What it does.
    pub description: String,
    /// The settings it takes.
    pub settings: Vec<Setting>,
    /// Which world it implements.
    pub kind: PluginKind,
}

/// One setting of a plugin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Setting {
    /// Its key.
    pub name: String,
    /// What it means.
    pub description: String,
    /// Write-only: shown masked.
    pub secret: bool,
    /// Must be set.
    pub required: bool,
}

/// The three kinds of plugin, one per WIT world.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PluginKind {
    /// `auth-protocol`: authenticates webhook requests.
    AuthProtocol,
    /// `payload-transform`: shapes the body.
    PayloadTransform,
    /// `authorization-filter`: decides who may see an event.
    AuthorizationFilter,
}

impl std::fmt::Display for PluginKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::AuthProtocol => "auth-protocol",
            Self::PayloadTransform => "payload-transform",
            Self::AuthorizationFilter => "authorization-filter",
        })
    }
}

/// A receiver's settings for a plugin.
pub type Settings = std::collections::BTreeMap<String, String>;
