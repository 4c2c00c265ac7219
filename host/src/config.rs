//! Layered configuration: built-in defaults → TOML file → `SWITCHYARD_*` environment.
//!
//! `SWITCHYARD_LISTEN` sets `listen`; `SWITCHYARD_DELIVERY__TIMEOUT` sets `delivery.timeout`.
//! An environment value is read as a TOML value when it parses as one (`true`, `8`,
//! `["1h", "2h"]`) and as a string otherwise.

use std::borrow::Cow;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::domain::topics::Topic;
use crate::plugins::PluginsConfig;

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The config file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The TOML or an environment override is malformed or has unknown keys.
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

/// The whole configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The address `serve` binds.
    pub listen: SocketAddr,
    /// Where the store and plugin artifacts live.
    pub data_dir: PathBuf,
    /// The URL clients reach this host at, as configured; base URLs are built from
    /// [`Config::public_url`], which is this or, when this is empty (the default), the
    /// address the host listens on.
    pub public_url: String,
    /// Bearer token for `/operator/*`; unset turns the operator API off.
    pub operator_token: Option<String>,
    /// Webhook delivery.
    pub delivery: DeliveryConfig,
    /// The plugin runtime.
    pub plugins: PluginsConfig,
    /// Topics beyond the built-in catalog.
    pub topics: Vec<Topic>,
    /// API sessions.
    pub auth: AuthConfig,
    /// Scheduled maintenance.
    pub jobs: crate::jobs::JobsConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("./data"),
            public_url: String::new(),
            operator_token: None,
            delivery: DeliveryConfig::default(),
            plugins: PluginsConfig::default(),
            topics: Vec::new(),
            auth: AuthConfig::default(),
            jobs: crate::jobs::JobsConfig::default(),
        }
    }
}

/// Webhook delivery settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeliveryConfig {
    /// Minimum wait after each failed attempt; one retry per entry, then `failed`.
    #[serde(with = "durations")]
    pub retry_schedule: Vec<Duration>,
    /// Allow receivers on loopback, private and link-local addresses.
    pub allow_private_targets: bool,
    /// Total time one attempt may take.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// How many attempts may be in flight at once.
    pub concurrency: usize,
    /// How many of those may go to one receiver, so a slow one cannot hold up the rest.
    pub per_receiver_concurrency: usize,
    /// How much of a receiver's answer is read (the rest is dropped).
    pub max_response_bytes: usize,
    /// How long shutdown waits for attempts in flight before leaving them for the next start.
    #[serde(with = "humantime_serde")]
    pub shutdown_grace: Duration,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        let hours = |h: u64| Duration::from_secs(h * 3600);
        Self {
            retry_schedule: vec![hours(1), hours(2), hours(6), hours(24)],
            allow_private_targets: false,
            timeout: Duration::from_secs(30),
            concurrency: 64,
            per_receiver_concurrency: 8,
            max_response_bytes: 64 * 1024,
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// API session settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// How long an access token lives.
    #[serde(with = "humantime_serde")]
    pub access_token_ttl: Duration,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            access_token_ttl: Duration::from_secs(3600),
        }
    }
}

impl Config {
    /// Defaults, then the TOML file if given, then `SWITCHYARD_*` variables from `env`.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, Error> {
        let mut table = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
                    path: path.to_owned(),
                    source,
                })?;
                toml::from_str::<toml::Table>(&text).map_err(|e| Error::Invalid(e.to_string()))?
            }
            None => toml::Table::new(),
        };
        for (key, value) in env {
            let Some(key) = key.strip_prefix("SWITCHYARD_") else {
                continue;
            };
            let path: Vec<String> = key.split("__").map(str::to_ascii_lowercase).collect();
            set_path(&mut table, &path, parse_env_value(&value))?;
        }
        let config: Self = toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| Error::Invalid(e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), Error> {
        if !self.public_url.is_empty()
            && !self.public_url.starts_with("http://")
            && !self.public_url.starts_with("https://")
        {
            return Err(Error::Invalid(format!(
                "public_url must be an http(s) URL, got {:?}",
                self.public_url
            )));
        }
        if self.delivery.concurrency == 0 || self.delivery.per_receiver_concurrency == 0 {
            return Err(Error::Invalid(
                "delivery.concurrency and delivery.per_receiver_concurrency must be at least 1"
                    .into(),
            ));
        }
        crate::jobs::validate(&self.jobs).map_err(Error::Invalid)?;
        // A delivery is "stuck" only when no attempt could still be running.
        if self.jobs.stuck_after <= self.delivery.timeout {
            return Err(Error::Invalid(
                "jobs.stuck_after must be longer than delivery.timeout".into(),
            ));
        }
        if let Some(topic) = self
            .topics
            .iter()
            .find(|t| !crate::domain::topics::is_valid_name(&t.name))
        {
            return Err(Error::Invalid(format!(
                "invalid topic name {:?}",
                topic.name
            )));
        }
        Ok(())
    }

    /// The URL clients reach this host at, without a trailing `/`: `public_url` when it
    /// is set, otherwise `http://` and `listen`, with a loopback address for an
    /// unspecified one (`0.0.0.0` is no address to send a client to).
    pub fn public_url(&self) -> Cow<'_, str> {
        if !self.public_url.is_empty() {
            return Cow::Borrowed(self.public_url.trim_end_matches('/'));
        }
        let mut addr = self.listen;
        if addr.ip().is_unspecified() {
            addr.set_ip(match addr.ip() {
                IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
            });
        }
        Cow::Owned(format!("http://{addr}"))
    }

    /// The base URL of a tenant's API.
    pub fn base_url(&self, tenant: &str) -> String {
        format!("{}/t/{tenant}/v1", self.public_url())
    }
}

/// A list of durations written like `"1h"`, `"90s"`.
mod durations {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(list: &[Duration], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(
            list.iter()
                .map(|d| humantime::format_duration(*d).to_string()),
        )
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Duration>, D::Error> {
        Vec::<String>::deserialize(d)?
            .iter()
            .map(|text| humantime::parse_duration(text).map_err(serde::de::Error::custom))
            .collect()
    }
}

fn parse_env_value(value: &str) -> toml::Value {
    toml::from_str::<toml::Table>(&format!("v = {value}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(value.to_owned()))
}

fn set_path(table: &mut toml::Table, path: &[String], value: toml::Value) -> Result<(), Error> {
    match path {
        [] => Ok(()),
        [last] => {
            table.insert(last.clone(), value);
            Ok(())
        }
        [first, rest @ ..] => {
            let entry = table
                .entry(first.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            match entry {
                toml::Value::Table(inner) => set_path(inner, rest, value),
                _ => Err(Error::Invalid(format!("{first} is not a section"))),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn defaults_follow_the_contract() {
        let c = Config::load(None, env(&[])).expect("defaults load");
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(
            c.delivery.retry_schedule,
            [1, 2, 6, 24].map(|h| Duration::from_secs(h * 3600))
        );
        assert!(!c.delivery.allow_private_targets);
        assert_eq!(c.delivery.timeout, Duration::from_secs(30));
        assert_eq!(c.base_url("acme"), "http://127.0.0.1:8080/t/acme/v1");
    }

    #[test]
    fn the_public_url_is_the_listen_address_unless_one_is_configured() {
        let with = |pairs: &[(&str, &str)]| Config::load(None, env(pairs)).expect("loads");
        let c = with(&[("SWITCHYARD_LISTEN", "127.0.0.1:9000")]);
        assert_eq!(c.public_url(), "http://127.0.0.1:9000");
        assert_eq!(c.base_url("acme"), "http://127.0.0.1:9000/t/acme/v1");
        let c = with(&[("SWITCHYARD_LISTEN", "0.0.0.0:9000")]);
        assert_eq!(c.public_url(), "http://127.0.0.1:9000");
        let c = with(&[("SWITCHYARD_LISTEN", "[::]:9000")]);
        assert_eq!(c.public_url(), "http://[::1]:9000");
        let c = with(&[
            ("SWITCHYARD_LISTEN", "0.0.0.0:9000"),
            ("SWITCHYARD_PUBLIC_URL", "https://hooks.example.com/"),
        ]);
        assert_eq!(c.base_url("acme"), "https://hooks.example.com/t/acme/v1");
        let refused = Config::load(None, env(&[("SWITCHYARD_PUBLIC_URL", "hooks.example.com")]));
        assert!(
            matches!(&refused, Err(Error::Invalid(why)) if why.contains("public_url")),
            "{refused:?}"
        );
    }

    #[test]
    fn the_file_overrides_defaults_and_env_overrides_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("switchyard.toml");
        std::fs::write(
            &file,
            "listen = \"0.0.0.0:9000\"\n[delivery]\ntimeout = \"5s\"\nretry_schedule = [\"1s\"]\n",
        )
        .expect("write config");
        let c = Config::load(
            Some(&file),
            env(&[
                ("SWITCHYARD_DELIVERY__TIMEOUT", "7s"),
                ("SWITCHYARD_DELIVERY__ALLOW_PRIVATE_TARGETS", "true"),
                ("SWITCHYARD_OPERATOR_TOKEN", "op-secret"),
                ("UNRELATED", "x"),
            ]),
        )
        .expect("config loads");
        assert_eq!(c.listen.to_string(), "0.0.0.0:9000");
        assert_eq!(c.delivery.timeout, Duration::from_secs(7));
        assert_eq!(c.delivery.retry_schedule, [Duration::from_secs(1)]);
        assert!(c.delivery.allow_private_targets);
        assert_eq!(c.operator_token.as_deref(), Some("op-secret"));
    }

    #[test]
    fn the_example_config_loads() {
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/switchyard.toml");
        let c = Config::load(Some(&example), env(&[])).expect("example loads");
        assert_eq!(
            c.delivery.retry_schedule,
            Config::default().delivery.retry_schedule
        );
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused() {
        let err = Config::load(None, env(&[("SWITCHYARD_DELIVERY__TIMEOUTT", "5s")]))
            .expect_err("unknown key");
        assert!(err.to_string().contains("timeoutt"), "{err}");
        assert!(Config::load(None, env(&[("SWITCHYARD_DELIVERY__TIMEOUT", "soon")])).is_err());
        assert!(Config::load(None, env(&[("SWITCHYARD_PUBLIC_URL", "ftp://x")])).is_err());
    }
}
