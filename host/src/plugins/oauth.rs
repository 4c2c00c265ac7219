//! The `oauth2-client-credentials` capability: tokens fetched with the `oauth2` crate
//! and cached by token URL + client + scope + client authentication until shortly
//! before they expire.

use std::collections::HashMap;
use std::sync::Mutex;

use oauth2::basic::BasicClient;
use oauth2::{AuthType, ClientId, ClientSecret, Scope, TokenResponse, TokenUrl};

use crate::clock::SharedClock;

/// Tokens are refreshed this long before they expire.
const EARLY_MS: u64 = 30_000;
/// How long a token without `expires_in` is reused.
const DEFAULT_LIFETIME_MS: u64 = 5 * 60_000;

/// A client-credentials grant, as a plugin asks for it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Grant {
    /// The token endpoint.
    pub token_url: String,
    /// The client id.
    pub client_id: String,
    /// The client secret.
    pub client_secret: String,
    /// The scope, if any.
    pub scope: Option<String>,
    /// `client_secret_basic` (true) or `client_secret_post` (false).
    pub basic_auth: bool,
}

/// A token as handed to plugins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    /// The access token.
    pub token: String,
    /// Usually `Bearer`.
    pub token_type: String,
    /// Seconds left, when known.
    pub expires_in: Option<u64>,
}

/// Token URL, client id, scope, client_secret_basic.
type CacheKey = (String, String, Option<String>, bool);

#[derive(Debug, Clone)]
struct Cached {
    token: Token,
    expires_at_ms: u64,
}

/// Fetches and caches OAuth2 tokens.
pub struct TokenCache {
    http: reqwest::Client,
    clock: SharedClock,
    entries: Mutex<HashMap<CacheKey, Cached>>,
}

impl std::fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCache").finish_non_exhaustive()
    }
}

impl TokenCache {
    /// A cache fetching through `http` (which must not follow redirects).
    pub fn new(http: reqwest::Client, clock: SharedClock) -> Self {
        Self {
            http,
            clock,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// A token for `grant`: from the cache unless `fresh`, else from the token endpoint.
    pub async fn token(&self, grant: &Grant, fresh: bool) -> Result<Token, String> {
        let key = (
            grant.token_url.clone(),
            grant.client_id.clone(),
            grant.scope.clone(),
            grant.basic_auth,
        );
        let now = self.clock.now_ms();
        if !fresh {
            let entries = self.entries.lock().map_err(|_| "token cache poisoned")?;
            if let Some(hit) = entries.get(&key).filter(|c| c.expires_at_ms > now) {
                let mut token = hit.token.clone();
                token.expires_in = Some((hit.expires_at_ms - now) / 1000);
                return Ok(token);
            }
        }
        let fetched = self.fetch(grant).await?;
        let lifetime = fetched
            .expires_in
            .map_or(DEFAULT_LIFETIME_MS, |s| (s * 1000).saturating_sub(EARLY_MS));
        if lifetime > 0 {
            let mut entries = self.entries.lock().map_err(|_| "token cache poisoned")?;
            entries.insert(
                key,
                Cached {
                    token: fetched.clone(),
                    expires_at_ms: now + lifetime,
                },
            );
        }
        Ok(fetched)
    }

    async fn fetch(&self, grant: &Grant) -> Result<Token, String> {
        let token_url = TokenUrl::new(grant.token_url.clone())
            .map_err(|e| format!("invalid token URL {:?}: {e}", grant.token_url))?;
        let client = BasicClient::new(ClientId::new(grant.client_id.clone()))
            .set_client_secret(ClientSecret::new(grant.client_secret.clone()))
            .set_token_uri(token_url)
            .set_auth_type(if grant.basic_auth {
                AuthType::BasicAuth
            } else {
                AuthType::RequestBody
            });
        let mut request = client.exchange_client_credentials();
        if let Some(scope) = &grant.scope {
            request = request.add_scope(Scope::new(scope.clone()));
        }
        let response = request
            .request_async(&self.http)
            .await
            .map_err(|e| describe(&e))?;
        Ok(Token {
            token: response.access_token().secret().clone(),
            token_type: match response.token_type() {
                oauth2::basic::BasicTokenType::Bearer => "Bearer".to_owned(),
                other => format!("{other:?}"),
            },
            expires_in: response.expires_in().map(|d| d.as_secs()),
        })
    }
}

fn describe(e: &dyn std::error::Error) -> String {
    let mut text = format!("token request failed: {e}");
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
