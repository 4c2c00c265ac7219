//! PLACEHOLDER until the plugin runtime lands.
#![allow(missing_docs, unused_variables)]
mod types;
use std::path::{Path, PathBuf};
use std::time::Duration;
pub use types::*;

#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct PluginsConfig {
    pub dir: Option<PathBuf>,
    #[serde(with = "humantime_serde")]
    pub call_timeout: Duration,
    pub memory_limit_mb: u64,
}
impl Default for PluginsConfig {
    fn default() -> Self {
        Self {
            dir: None,
            call_timeout: Duration::from_secs(1),
            memory_limit_mb: 64,
        }
    }
}
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("not found {0}")]
    NotFound(String),
}
#[derive(Clone, Debug)]
pub struct Plugins;
impl Plugins {
    pub fn new(
        config: &PluginsConfig,
        clock: crate::clock::SharedClock,
        data_dir: &Path,
    ) -> Result<Self, Error> {
        Ok(Self)
    }
    pub async fn authenticate(
        &self,
        tenant: &str,
        plugin: &str,
        request: OutgoingRequest,
        context: &DeliveryContext,
        settings: &Settings,
        fresh_tokens: bool,
    ) -> Result<OutgoingRequest, Error> {
        todo!()
    }
    pub async fn transform(
        &self,
        tenant: &str,
        plugin: &str,
        event: &Event,
        settings: &Settings,
    ) -> Result<Body, Error> {
        todo!()
    }
    pub async fn allow(
        &self,
        tenant: &str,
        plugin: &str,
        event: &Event,
        principal: &Principal,
        settings: &Settings,
    ) -> Result<bool, Error> {
        todo!()
    }
    pub fn info(&self, tenant: &str, plugin: &str) -> Option<PluginInfo> {
        todo!()
    }
    pub fn check_settings(
        &self,
        tenant: &str,
        plugin: &str,
        kind: PluginKind,
        settings: &Settings,
    ) -> Result<(), Error> {
        todo!()
    }
}
