#![allow(missing_docs)]
use serde::{Deserialize, Serialize};
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Event {
    pub id: String,
    pub tenant: String,
    pub topic: String,
    pub occurred_at_ms: u64,
    pub subject: Option<Subject>,
    pub content_type: String,
    pub payload: Vec<u8>,
}
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Subject {
    pub kind: String,
    pub id: String,
    pub attributes: Vec<(String, String)>,
}
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Principal {
    pub id: String,
    pub permissions: Vec<String>,
    pub scopes: Vec<(String, Vec<String>)>,
}
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OutgoingRequest {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeliveryContext {
    pub delivery_id: String,
    pub event_id: String,
    pub topic: String,
    pub attempt: u32,
}
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Body {
    pub content_type: String,
    pub bytes: Vec<u8>,
}
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PluginInfo {
    pub name: String,
    pub version: String,
    pub description: String,
    pub settings: Vec<Setting>,
    pub kind: PluginKind,
}
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Setting {
    pub name: String,
    pub description: String,
    pub secret: bool,
    pub required: bool,
}
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PluginKind {
    AuthProtocol,
    PayloadTransform,
    AuthorizationFilter,
}
pub type Settings = std::collections::BTreeMap<String, String>;
