//! A receiver's settings for a plugin.

use crate::Error;

/// A receiver's settings for a plugin, as name/value pairs in the order given.
///
/// The host has already checked them against [`PluginInfo::settings`](crate::PluginInfo):
/// required ones are present and unknown ones are refused. Values are strings; parse
/// them with a clear error.
///
/// ```
/// use switchyard_plugin_sdk::Settings;
///
/// let settings = Settings::from(vec![("secret".to_string(), "s3cr3t".to_string())]);
/// assert_eq!(settings.require("secret").unwrap(), "s3cr3t");
/// assert_eq!(settings.get_or("algorithm", "sha256"), "sha256");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    pairs: Vec<(String, String)>,
}

impl Settings {
    /// The value of setting `name`, if it is set. An empty value counts as unset.
    ///
    /// ```
    /// use switchyard_plugin_sdk::Settings;
    ///
    /// let settings = Settings::from(vec![("scope".to_string(), String::new())]);
    /// assert_eq!(settings.get("scope"), None);
    /// ```
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(key, value)| key == name && !value.is_empty())
            .map(|(_, value)| value.as_str())
    }

    /// The value of setting `name`, or `default` when it is not set.
    ///
    /// ```
    /// use switchyard_plugin_sdk::Settings;
    ///
    /// assert_eq!(Settings::default().get_or("client_auth", "basic"), "basic");
    /// ```
    pub fn get_or<'a>(&'a self, name: &str, default: &'a str) -> &'a str {
        self.get(name).unwrap_or(default)
    }

    /// The value of setting `name`, or an error that names the missing setting.
    ///
    /// ```
    /// use switchyard_plugin_sdk::Settings;
    ///
    /// let error = Settings::default().require("secret").unwrap_err();
    /// assert_eq!(error.to_string(), "the setting `secret` is required");
    /// ```
    pub fn require(&self, name: &str) -> Result<&str, Error> {
        self.get(name)
            .ok_or_else(|| Error::new(format_args!("the setting `{name}` is required")))
    }

    /// Whether setting `name` is `true` (also `1`, `yes`, `on`); unset is `false`, and
    /// anything else an error naming the setting.
    ///
    /// ```
    /// use switchyard_plugin_sdk::Settings;
    ///
    /// let settings = Settings::from(vec![("envelope".to_string(), "true".to_string())]);
    /// assert!(settings.flag("envelope").unwrap());
    /// assert!(!Settings::default().flag("envelope").unwrap());
    /// ```
    pub fn flag(&self, name: &str) -> Result<bool, Error> {
        match self.get(name).map(str::to_ascii_lowercase).as_deref() {
            None | Some("false" | "0" | "no" | "off") => Ok(false),
            Some("true" | "1" | "yes" | "on") => Ok(true),
            Some(other) => Err(Error::new(format_args!(
                "the setting `{name}` must be `true` or `false`, not `{other}`"
            ))),
        }
    }

    /// All pairs, in the order given.
    ///
    /// ```
    /// use switchyard_plugin_sdk::Settings;
    ///
    /// let settings = Settings::from(vec![("a".to_string(), "1".to_string())]);
    /// assert_eq!(settings.iter().count(), 1);
    /// ```
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

impl From<Vec<(String, String)>> for Settings {
    fn from(pairs: Vec<(String, String)>) -> Self {
        Self { pairs }
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for Settings {
    /// ```
    /// use switchyard_plugin_sdk::Settings;
    ///
    /// let settings: Settings = [("secret", "s")].into_iter().collect();
    /// assert_eq!(settings.get("secret"), Some("s"));
    /// ```
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Self {
            pairs: iter
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }
}
