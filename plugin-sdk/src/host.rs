//! The capabilities the host grants a plugin; nothing else outside the sandbox is
//! reachable.
//!
//! Outside WebAssembly (a plugin's native unit tests) these fall back to stand-ins:
//! [`log`] prints to stderr, [`now_ms`] reads the system clock, [`hmac`] computes the
//! same HMAC in the plugin's own process and [`oauth2_client_credentials`] fails.

use crate::Error;

#[cfg(target_arch = "wasm32")]
use crate::__bindings::base::switchyard::plugin::{host as wit_host, types as wit};

/// Log levels.
///
/// ```
/// use switchyard_plugin_sdk::{Level, log};
///
/// log(Level::Info, "signing with sha256");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Very detailed tracing.
    Trace,
    /// Debugging detail.
    Debug,
    /// Normal operation.
    Info,
    /// Something looks wrong but the call goes on.
    Warn,
    /// The call is failing.
    Error,
}

/// Writes a line to the host's log, tagged with the plugin's name. Never log a secret.
///
/// ```
/// use switchyard_plugin_sdk::{Level, log};
///
/// log(Level::Warn, "the payload is not JSON; sending it base64-encoded");
/// ```
pub fn log(level: Level, message: &str) {
    #[cfg(target_arch = "wasm32")]
    {
        let level = match level {
            Level::Trace => wit::Level::Trace,
            Level::Debug => wit::Level::Debug,
            Level::Info => wit::Level::Info,
            Level::Warn => wit::Level::Warn,
            Level::Error => wit::Level::Error,
        };
        wit_host::log(level, message);
    }
    #[cfg(not(target_arch = "wasm32"))]
    eprintln!("[{level:?}] {message}");
}

/// The host's current time in milliseconds since the Unix epoch. Plugins have no other
/// clock; in the host's tests this is a manual clock.
///
/// ```
/// let now = switchyard_plugin_sdk::now_ms();
/// assert!(now > 1_600_000_000_000);
/// ```
pub fn now_ms() -> u64 {
    #[cfg(target_arch = "wasm32")]
    {
        wit_host::now_ms()
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0)
    }
}

/// The hash functions [`hmac`] computes with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashAlgorithm {
    /// SHA-1, for old receivers.
    Sha1,
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
}

impl HashAlgorithm {
    /// Its lowercase name, as WebSub and most signature headers write it.
    ///
    /// ```
    /// use switchyard_plugin_sdk::HashAlgorithm;
    ///
    /// assert_eq!(HashAlgorithm::Sha384.name(), "sha384");
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            Self::Sha1 => "sha1",
            Self::Sha256 => "sha256",
            Self::Sha384 => "sha384",
            Self::Sha512 => "sha512",
        }
    }
}

impl std::str::FromStr for HashAlgorithm {
    type Err = Error;

    /// Parses a name in any case: `sha1`, `sha256`, `sha384` or `sha512`.
    ///
    /// ```
    /// use switchyard_plugin_sdk::HashAlgorithm;
    ///
    /// assert_eq!("SHA512".parse::<HashAlgorithm>().unwrap(), HashAlgorithm::Sha512);
    /// assert!("md5".parse::<HashAlgorithm>().is_err());
    /// ```
    fn from_str(name: &str) -> Result<Self, Error> {
        [Self::Sha1, Self::Sha256, Self::Sha384, Self::Sha512]
            .into_iter()
            .find(|a| a.name().eq_ignore_ascii_case(name))
            .ok_or_else(|| {
                Error::new(format_args!(
                    "unknown hash `{name}`; use sha1, sha256, sha384 or sha512"
                ))
            })
    }
}

/// The HMAC of `message` under `key`. The host computes it in native code, several times
/// faster than the same hash compiled into the plugin.
///
/// ```
/// use switchyard_plugin_sdk::{HashAlgorithm, hmac};
///
/// // RFC 4231, test case 2.
/// let mac = hmac(HashAlgorithm::Sha256, b"Jefe", b"what do ya want for nothing?");
/// assert_eq!(mac.len(), 32);
/// assert_eq!(mac[..4], [0x5b, 0xdc, 0xc1, 0x46]);
/// ```
pub fn hmac(algorithm: HashAlgorithm, key: &[u8], message: &[u8]) -> Vec<u8> {
    #[cfg(target_arch = "wasm32")]
    {
        let algorithm = match algorithm {
            HashAlgorithm::Sha1 => wit::HashAlgorithm::Sha1,
            HashAlgorithm::Sha256 => wit::HashAlgorithm::Sha256,
            HashAlgorithm::Sha384 => wit::HashAlgorithm::Sha384,
            HashAlgorithm::Sha512 => wit::HashAlgorithm::Sha512,
        };
        wit_host::hmac(algorithm, key, message)
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        use hmac::{Hmac, Mac, digest::KeyInit};
        fn mac<M: Mac + KeyInit>(key: &[u8], message: &[u8]) -> Vec<u8> {
            // HMAC takes keys of any length, so this cannot fail.
            let mut mac = <M as KeyInit>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
            mac.update(message);
            mac.finalize().into_bytes().to_vec()
        }
        match algorithm {
            HashAlgorithm::Sha1 => mac::<Hmac<sha1::Sha1>>(key, message),
            HashAlgorithm::Sha256 => mac::<Hmac<sha2::Sha256>>(key, message),
            HashAlgorithm::Sha384 => mac::<Hmac<sha2::Sha384>>(key, message),
            HashAlgorithm::Sha512 => mac::<Hmac<sha2::Sha512>>(key, message),
        }
    }
}

/// How an OAuth2 client authenticates at the token endpoint.
///
/// ```
/// use switchyard_plugin_sdk::ClientAuth;
///
/// assert_eq!("post".parse::<ClientAuth>().unwrap(), ClientAuth::Post);
/// assert!("digest".parse::<ClientAuth>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClientAuth {
    /// HTTP Basic with the RFC 6749 section 2.3.1 encoding (`client_secret_basic`).
    #[default]
    Basic,
    /// `client_id` and `client_secret` in the form body (`client_secret_post`).
    Post,
}

impl std::str::FromStr for ClientAuth {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "basic" | "client_secret_basic" => Ok(Self::Basic),
            "post" | "client_secret_post" => Ok(Self::Post),
            other => Err(Error::new(format_args!(
                "unknown client authentication `{other}`; use `basic` or `post`"
            ))),
        }
    }
}

/// An OAuth2 client-credentials grant.
///
/// ```
/// use switchyard_plugin_sdk::{ClientAuth, ClientCredentials};
///
/// let grant = ClientCredentials {
///     token_url: "https://auth.example.com/token".into(),
///     client_id: "switchyard".into(),
///     client_secret: "s3cr3t".into(),
///     scope: Some("webhooks".into()),
///     auth: ClientAuth::Basic,
/// };
/// assert_eq!(grant.auth, ClientAuth::Basic);
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct ClientCredentials {
    /// The token endpoint.
    pub token_url: String,
    /// The client id.
    pub client_id: String,
    /// The client secret.
    pub client_secret: String,
    /// The scope to ask for, if any.
    pub scope: Option<String>,
    /// How to present the client credentials.
    pub auth: ClientAuth,
}

impl std::fmt::Debug for ClientCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCredentials")
            .field("token_url", &self.token_url)
            .field("client_id", &self.client_id)
            .field("client_secret", &"***")
            .field("scope", &self.scope)
            .field("auth", &self.auth)
            .finish()
    }
}

/// An OAuth2 access token.
///
/// ```
/// use switchyard_plugin_sdk::AccessToken;
///
/// let token = AccessToken { token: "abc".into(), token_type: "Bearer".into(), expires_in: Some(3600) };
/// assert_eq!(token.authorization(), "Bearer abc");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct AccessToken {
    /// The token itself.
    pub token: String,
    /// Its type, usually `Bearer`.
    pub token_type: String,
    /// Seconds until it expires, when the token endpoint said.
    pub expires_in: Option<u64>,
}

impl AccessToken {
    /// The `Authorization` header value: `Bearer <token>` (token types are compared
    /// case-insensitively, so a `bearer` answer still yields `Bearer`).
    ///
    /// ```
    /// # use switchyard_plugin_sdk::AccessToken;
    /// let token = AccessToken { token: "abc".into(), token_type: "bearer".into(), expires_in: None };
    /// assert_eq!(token.authorization(), "Bearer abc");
    /// ```
    pub fn authorization(&self) -> String {
        if self.token_type.is_empty() || self.token_type.eq_ignore_ascii_case("bearer") {
            format!("Bearer {}", self.token)
        } else {
            format!("{} {}", self.token_type, self.token)
        }
    }
}

impl std::fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessToken")
            .field("token", &"***")
            .field("token_type", &self.token_type)
            .field("expires_in", &self.expires_in)
            .finish()
    }
}

/// Fetches an access token with the client-credentials grant. The host caches tokens
/// by token URL, client, scope and authentication style until shortly before they
/// expire, so calling this on every request is cheap.
///
/// ```no_run
/// // no_run: outside the host there is no token endpoint to ask.
/// use switchyard_plugin_sdk::{ClientAuth, ClientCredentials, oauth2_client_credentials};
///
/// let token = oauth2_client_credentials(&ClientCredentials {
///     token_url: "https://auth.example.com/token".into(),
///     client_id: "switchyard".into(),
///     client_secret: "s3cr3t".into(),
///     scope: None,
///     auth: ClientAuth::Basic,
/// })?;
/// println!("{}", token.authorization());
/// # Ok::<(), switchyard_plugin_sdk::Error>(())
/// ```
pub fn oauth2_client_credentials(grant: &ClientCredentials) -> Result<AccessToken, Error> {
    #[cfg(target_arch = "wasm32")]
    {
        let grant = wit::ClientCredentials {
            token_url: grant.token_url.clone(),
            client_id: grant.client_id.clone(),
            client_secret: grant.client_secret.clone(),
            scope: grant.scope.clone(),
            auth: match grant.auth {
                ClientAuth::Basic => wit::ClientAuth::Basic,
                ClientAuth::Post => wit::ClientAuth::Post,
            },
        };
        wit_host::oauth2_client_credentials(&grant)
            .map(|t| AccessToken {
                token: t.token,
                token_type: t.token_type,
                expires_in: t.expires_in,
            })
            .map_err(Error::from)
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        Err(Error::new(format_args!(
            "no OAuth2 token for `{}`: the host's token service is only available inside Switchyard",
            grant.token_url
        )))
    }
}
