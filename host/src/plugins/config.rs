//! The plugin host's configuration: data, turned into a running host by `Plugins::new`.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// `[plugins]` in the config file.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct PluginsConfig {
    /// A directory of global plugins (`*.wasm`), loaded at start and rescanned every
    /// `dir_poll_interval`; a changed file is hot-swapped, a removed one unloaded.
    pub dir: Option<PathBuf>,
    /// How often to rescan `dir`.
    #[serde(with = "humantime_serde")]
    pub dir_poll_interval: Duration,
    /// Wall-clock budget of one plugin call, not counting time the host spends on the
    /// plugin's behalf (fetching an OAuth2 token).
    #[serde(with = "humantime_serde")]
    pub call_timeout: Duration,
    /// Linear memory cap of one plugin instance, in MiB.
    pub memory_limit_mb: u64,
    /// Idle instances kept per plugin version and tenant, for fast calls. 0 disables reuse.
    pub warm_instances: usize,
    /// Calls an instance serves before it is replaced by a fresh one.
    pub max_calls_per_instance: u32,
    /// Plugin instances that may exist at once (the pooling allocator's size).
    pub max_instances: u32,
    /// Where precompiled artifacts are cached; default `<data_dir>/plugins/cache`.
    pub cache_dir: Option<PathBuf>,
    /// Let plugins fetch OAuth2 tokens from loopback, private and link-local addresses.
    pub allow_private_token_urls: bool,
    /// Timeout of one OAuth2 token request.
    #[serde(with = "humantime_serde")]
    pub token_timeout: Duration,
}

impl Default for PluginsConfig {
    fn default() -> Self {
        Self {
            dir: None,
            dir_poll_interval: Duration::from_secs(2),
            call_timeout: Duration::from_secs(1),
            memory_limit_mb: 64,
            warm_instances: 4,
            max_calls_per_instance: 10_000,
            max_instances: 200,
            cache_dir: None,
            allow_private_token_urls: false,
            token_timeout: Duration::from_secs(10),
        }
    }
}

impl PluginsConfig {
    /// The memory cap in bytes.
    pub(crate) fn memory_limit_bytes(&self) -> usize {
        usize::try_from(self.memory_limit_mb.saturating_mul(1 << 20)).unwrap_or(usize::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_humane_durations_and_refuses_unknown_keys() {
        let config: PluginsConfig =
            toml::from_str("call_timeout = \"250ms\"\nwarm_instances = 0").unwrap();
        assert_eq!(config.call_timeout, Duration::from_millis(250));
        assert_eq!(config.warm_instances, 0);
        assert_eq!(config.memory_limit_mb, 64);
        assert!(toml::from_str::<PluginsConfig>("call_timout = \"1s\"").is_err());
    }
}
