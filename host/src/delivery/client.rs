//! The HTTP client webhooks go out through: timeouts, no redirects, a capped read of
//! the answer, and the SSRF guard unless private targets are allowed.

use std::sync::Arc;
use std::time::Duration;

use reqwest::redirect::Policy;

use super::guard;
use crate::config::DeliveryConfig;
use crate::plugins::OutgoingRequest;

/// What a receiver answered.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The HTTP status.
    pub status: u16,
}

/// Sends webhook requests.
#[derive(Debug, Clone)]
pub struct HttpClient {
    client: reqwest::Client,
    guard: bool,
    max_response_bytes: usize,
}

impl HttpClient {
    /// A client for `config`.
    pub fn new(config: &DeliveryConfig) -> Result<Self, reqwest::Error> {
        let mut builder = reqwest::Client::builder()
            .redirect(Policy::none())
            // Retries follow the delivery schedule; none within an attempt, so nothing
            // keeps a copy of each request for one either.
            .retry(reqwest::retry::never().max_retries_per_request(0))
            .no_proxy()
            .connect_timeout(config.timeout.min(Duration::from_secs(10)))
            .timeout(config.timeout)
            .pool_idle_timeout(Duration::from_secs(30))
            .user_agent(concat!("Switchyard/", env!("CARGO_PKG_VERSION")));
        if !config.allow_private_targets {
            builder = builder.dns_resolver(Arc::new(guard::PublicOnly));
        }
        Ok(Self {
            client: builder.build()?,
            guard: !config.allow_private_targets,
            max_response_bytes: config.max_response_bytes,
        })
    }

    /// Sends `request`; an error says in words what went wrong.
    pub async fn send(&self, request: OutgoingRequest) -> Result<Answer, String> {
        let url = reqwest::Url::parse(&request.url).map_err(|e| format!("invalid URL: {e}"))?;
        if self.guard {
            guard::check_literal(&url)?;
        }
        let method = reqwest::Method::from_bytes(request.method.as_bytes())
            .map_err(|_| format!("invalid method {:?}", request.method))?;
        let mut builder = self.client.request(method, url).body(request.body);
        for (name, value) in &request.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        let mut response = builder.send().await.map_err(describe)?;
        let status = response.status().as_u16();
        // Read (and drop) at most the cap, so the connection can be reused but a huge
        // answer cannot eat memory or time.
        let mut read = 0usize;
        while read < self.max_response_bytes {
            match response.chunk().await {
                Ok(Some(chunk)) => read += chunk.len(),
                Ok(None) | Err(_) => break,
            }
        }
        Ok(Answer { status })
    }
}

fn describe(e: reqwest::Error) -> String {
    use std::error::Error as _;
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_builder() {
        "invalid request"
    } else {
        "request failed"
    };
    let mut text = kind.to_owned();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
