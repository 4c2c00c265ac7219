use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Timestamp;

/// A plugin chosen by a receiver, with the receiver's settings for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PluginRef {
    /// The plugin's name.
    #[serde(alias = "protocol")]
    pub plugin: String,
    /// The receiver's settings for it.
    #[serde(default)]
    pub settings: BTreeMap<String, String>,
}

impl PluginRef {
    /// A plugin with no settings.
    pub fn named(plugin: &str) -> Self {
        Self {
            plugin: plugin.to_owned(),
            settings: BTreeMap::new(),
        }
    }
}

/// A webhook subscriber.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Receiver {
    /// `rcv_…`
    pub id: String,
    /// The tenant it belongs to.
    pub tenant: String,
    /// Where webhooks are sent.
    pub url: String,
    /// Topic patterns it subscribes to, e.g. `Accounts.*`.
    pub topics: Vec<String>,
    /// The API account that receives the webhooks: they are authorized against it.
    pub api_account: String,
    /// The authentication protocol plugin.
    pub auth: PluginRef,
    /// The payload transform plugin.
    pub transform: PluginRef,
    /// The authorization filter plugin.
    pub filter: PluginRef,
    /// An optional note for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it was last changed.
    pub updated_at: Timestamp,
    /// When it was removed; removed receivers get nothing more but stay listed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted_at: Option<Timestamp>,
    /// Why it was removed, e.g. "the receiver answered 410 Gone".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted_reason: Option<String>,
}

impl Receiver {
    /// True when it still gets webhooks.
    pub fn is_live(&self) -> bool {
        self.deleted_at.is_none()
    }
}
