//! The host side of `oauth2-client-credentials`: fetches tokens with the `oauth2` crate
//! and caches them until shortly before they expire.
//!
//! The cache key holds the tenant and a digest of the client secret besides the token
//! URL, client id, scope and authentication style, so a tenant can never be handed a
//! token that was fetched with another tenant's credentials.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use oauth2::basic::BasicClient;
use oauth2::{AuthType, ClientId, ClientSecret, RequestTokenError, Scope, TokenResponse, TokenUrl};
use sha2::{Digest, Sha256};

use crate::clock::SharedClock;

/// How the client authenticates at the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum ClientAuth {
    /// `client_secret_basic` with the RFC 6749 §2.3.1 encoding.
    Basic,
    /// `client_secret_post`.
    Post,
}

/// A client-credentials grant as a plugin asked for it.
pub(crate) struct Grant {
    pub token_url: String,
    pub client_id: String,
    pub client_secret: String,
    pub scope: Option<String>,
    pub auth: ClientAuth,
}

/// A token as handed to the plugin.
#[derive(Clone)]
pub(crate) struct Token {
    pub token: String,
    pub token_type: String,
    pub expires_in: Option<u64>,
}

#[derive(Clone, PartialEq, Eq, Hash)]
struct Key {
    tenant: String,
    token_url: String,
    client_id: String,
    secret_digest: [u8; 32],
    scope: Option<String>,
    auth: ClientAuth,
}

struct Cached {
    token: Token,
    /// When to stop using it: a little before it expires.
    refresh_at_ms: u64,
    /// When it expires, to tell the plugin the remaining lifetime.
    expires_at_ms: Option<u64>,
}

/// How long a token without `expires_in` is reused.
const DEFAULT_LIFETIME_MS: u64 = 60_000;

/// How much earlier than its expiry a token is refreshed: a tenth of its lifetime,
/// at least 5 s and at most 60 s (never more than half of it).
pub(crate) fn refresh_margin_ms(lifetime_ms: u64) -> u64 {
    (lifetime_ms / 10).clamp(5_000, 60_000).min(lifetime_ms / 2)
}

/// Tokens by grant, each behind its own async lock so concurrent deliveries for the same
/// grant make one request.
pub(crate) struct TokenCache {
    clock: SharedClock,
    http: reqwest::Client,
    allow_private: bool,
    entries: Mutex<HashMap<Key, Arc<tokio::sync::Mutex<Option<Cached>>>>>,
}

impl TokenCache {
    pub(crate) fn new(
        clock: SharedClock,
        timeout: Duration,
        allow_private: bool,
    ) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            // A token endpoint that redirects could bounce the secret anywhere (and past
            // the address check below).
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .build()
            .map_err(|e| format!("building the OAuth2 HTTP client: {e}"))?;
        Ok(Self {
            clock,
            http,
            allow_private,
            entries: Mutex::new(HashMap::new()),
        })
    }

    /// A token for `grant` on behalf of `tenant`: from the cache unless `fresh`, else
    /// from the token endpoint. Errors are meant for the delivery log.
    pub(crate) async fn token(
        &self,
        tenant: &str,
        grant: Grant,
        fresh: bool,
    ) -> Result<Token, String> {
        let key = Key {
            tenant: tenant.to_string(),
            token_url: grant.token_url.clone(),
            client_id: grant.client_id.clone(),
            secret_digest: Sha256::digest(grant.client_secret.as_bytes()).into(),
            scope: grant.scope.clone(),
            auth: grant.auth,
        };
        let slot = {
            let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
            // Drop entries nobody is using that have expired, so the map stays small.
            let now = self.clock.now_ms();
            entries.retain(|_, slot| {
                Arc::strong_count(slot) > 1
                    || slot
                        .try_lock()
                        .map(|c| c.as_ref().is_some_and(|c| c.refresh_at_ms > now))
                        .unwrap_or(true)
            });
            entries.entry(key).or_default().clone()
        };
        let mut cached = slot.lock().await;
        let now = self.clock.now_ms();
        if !fresh && let Some(hit) = cached.as_ref().filter(|c| c.refresh_at_ms > now) {
            let mut token = hit.token.clone();
            token.expires_in = hit.expires_at_ms.map(|at| at.saturating_sub(now) / 1000);
            return Ok(token);
        }
        let token = self.fetch(&grant).await?;
        let now = self.clock.now_ms();
        let lifetime_ms = token
            .expires_in
            .map_or(DEFAULT_LIFETIME_MS, |s| s.saturating_mul(1000));
        *cached = Some(Cached {
            token: token.clone(),
            refresh_at_ms: now.saturating_add(lifetime_ms - refresh_margin_ms(lifetime_ms)),
            expires_at_ms: token
                .expires_in
                .map(|s| now.saturating_add(s.saturating_mul(1000))),
        });
        Ok(token)
    }

    async fn fetch(&self, grant: &Grant) -> Result<Token, String> {
        let url = TokenUrl::new(grant.token_url.clone())
            .map_err(|e| format!("the token URL `{}` is invalid: {e}", grant.token_url))?;
        if !self.allow_private {
            check_public(url.url()).await?;
        }
        let client = BasicClient::new(ClientId::new(grant.client_id.clone()))
            .set_client_secret(ClientSecret::new(grant.client_secret.clone()))
            .set_token_uri(url)
            .set_auth_type(match grant.auth {
                ClientAuth::Basic => AuthType::BasicAuth,
                ClientAuth::Post => AuthType::RequestBody,
            });
        let mut request = client.exchange_client_credentials();
        if let Some(scope) = &grant.scope {
            for s in scope.split_whitespace() {
                request = request.add_scope(Scope::new(s.to_string()));
            }
        }
        let response = request
            .request_async(&self.http)
            .await
            .map_err(|e| match e {
                RequestTokenError::ServerResponse(r) => {
                    let mut message = format!("the token endpoint refused: {}", r.error());
                    if let Some(description) = r.error_description() {
                        message.push_str(&format!(" ({description})"));
                    }
                    message
                }
                RequestTokenError::Request(e) => {
                    format!("the token request failed: {}", error_chain(&e))
                }
                RequestTokenError::Parse(e, _) => {
                    format!("the token endpoint's answer is not a token response: {e}")
                }
                RequestTokenError::Other(e) => {
                    format!("the token endpoint answered unexpectedly: {e}")
                }
            })?;
        Ok(Token {
            token: response.access_token().secret().clone(),
            token_type: response.token_type().as_ref().to_string(),
            expires_in: response.expires_in().map(|d| d.as_secs()),
        })
    }
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

/// Refuses token URLs that resolve to loopback, private, link-local or otherwise
/// internal addresses.
async fn check_public(url: &oauth2::url::Url) -> Result<(), String> {
    if !matches!(url.scheme(), "https" | "http") {
        return Err(format!(
            "the token URL must be http(s), not `{}`",
            url.scheme()
        ));
    }
    let host = url.host_str().ok_or("the token URL has no host")?;
    let port = url.port_or_known_default().unwrap_or(443);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let addrs: Vec<IpAddr> = match host.parse::<IpAddr>() {
        Ok(ip) => vec![ip],
        Err(_) => tokio::net::lookup_host((host, port))
            .await
            .map_err(|e| format!("cannot resolve the token URL's host `{host}`: {e}"))?
            .map(|a| a.ip())
            .collect(),
    };
    match addrs.iter().find(|ip| !is_public(ip)) {
        Some(ip) => Err(format!(
            "the token URL's host `{host}` resolves to the internal address {ip}, which is not allowed"
        )),
        None => Ok(()),
    }
}

pub(crate) fn is_public(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_documentation()
                || v4.is_multicast()
                || a == 0
                || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
                || (a == 198 && (b == 18 || b == 19)))
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(&IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00 // unique local
                || (first & 0xffc0) == 0xfe80) // link local
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_margin_is_a_tenth_clamped() {
        assert_eq!(refresh_margin_ms(3_600_000), 60_000);
        assert_eq!(refresh_margin_ms(300_000), 30_000);
        assert_eq!(refresh_margin_ms(20_000), 5_000);
        assert_eq!(refresh_margin_ms(4_000), 2_000);
        assert_eq!(refresh_margin_ms(0), 0);
    }

    #[test]
    fn internal_addresses_are_not_public() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(!is_public(&ip.parse().unwrap()), "{ip}");
        }
        for ip in ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"] {
            assert!(is_public(&ip.parse().unwrap()), "{ip}");
        }
    }
}
