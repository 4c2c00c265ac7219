//! The error a plugin returns.

use std::fmt;

/// Why a plugin call failed. Its message ends up in the delivery log, so say what is
/// wrong and how to fix it (never include a secret).
///
/// ```
/// use switchyard_plugin_sdk::Error;
///
/// let error = Error::new("unknown algorithm `md5`; use sha1, sha256, sha384 or sha512");
/// assert_eq!(error.to_string(), "unknown algorithm `md5`; use sha1, sha256, sha384 or sha512");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    message: String,
}

impl Error {
    /// An error with this message.
    ///
    /// ```
    /// use switchyard_plugin_sdk::Error;
    ///
    /// let parsed: Result<u32, Error> = "x".parse::<u32>().map_err(Error::new);
    /// assert!(parsed.is_err());
    /// ```
    pub fn new(message: impl fmt::Display) -> Self {
        Self {
            message: message.to_string(),
        }
    }

    /// The message.
    ///
    /// ```
    /// assert_eq!(switchyard_plugin_sdk::Error::new("no").message(), "no");
    /// ```
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

impl From<String> for Error {
    fn from(message: String) -> Self {
        Self { message }
    }
}

impl From<&str> for Error {
    fn from(message: &str) -> Self {
        Self::new(message)
    }
}

impl From<serde_json::Error> for Error {
    fn from(error: serde_json::Error) -> Self {
        Self::new(format_args!("invalid JSON: {error}"))
    }
}
