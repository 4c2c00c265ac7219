//! `GET /`: the API overview every client starts from. HTML for browsers, JSON when the
//! client asks for `application/json`.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use maud::{DOCTYPE, html};
use serde::Serialize;

use crate::app::App;

/// One API the host offers.
#[derive(Debug, Serialize)]
pub struct ApiEntry {
    /// Its name.
    pub name: &'static str,
    /// What it is for.
    pub description: &'static str,
    /// Where it lives (`{tenant}` stands for the tenant's name).
    pub url: String,
    /// Its OpenAPI ("Swagger") page.
    pub docs_url: String,
    /// The OpenAPI document, filtered to this API by its tags in the page.
    pub openapi_url: String,
}

/// The whole overview.
#[derive(Debug, Serialize)]
pub struct Overview {
    /// `Switchyard`.
    pub name: &'static str,
    /// The host's version.
    pub version: &'static str,
    /// The OpenAPI document covering every API below.
    pub openapi_url: String,
    /// The Swagger UI of that document.
    pub docs_url: String,
    /// Every API.
    pub apis: Vec<ApiEntry>,
}

/// The APIs, with absolute links under `public_url`.
pub fn overview(public_url: &str) -> Overview {
    let base = public_url.trim_end_matches('/');
    let docs = |tag: &str| format!("{base}/docs/#/{}", tag.replace(' ', "%20"));
    let entry = |name, description, path: &str, tag: &str| ApiEntry {
        name,
        description,
        url: format!("{base}{path}"),
        docs_url: docs(tag),
        openapi_url: format!("{base}/openapi.json"),
    };
    Overview {
        name: "Switchyard",
        version: env!("CARGO_PKG_VERSION"),
        openapi_url: format!("{base}/openapi.json"),
        docs_url: format!("{base}/docs/"),
        apis: vec![
            entry(
                "Tenant API",
                "Accounts, API accounts, webhook receivers, the webhook log, events, topics \
                 and the audit trail of one tenant. Use the base_url returned at login.",
                "/t/{tenant}/v1",
                "Receivers",
            ),
            entry(
                "Authentication",
                "API-account login with account id, API token and TOTP code; returns an \
                 access token and the tenant's base URL.",
                "/auth/login",
                "Authentication",
            ),
            entry(
                "OAuth2",
                "RFC 8693 token exchange to act on behalf of a user, RFC 7009 revocation \
                 and RFC 7662 introspection of access tokens.",
                "/oauth2",
                "OAuth2",
            ),
            entry(
                "Operator API",
                "Tenant provisioning for whoever runs the host (operator token).",
                "/operator",
                "Operator",
            ),
            entry(
                "Health",
                "Liveness (/healthz) and readiness (/readyz) for load balancers and \
                 orchestrators.",
                "/healthz",
                "Health",
            ),
        ],
    }
}

fn wants_json(headers: &HeaderMap) -> bool {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    accept.contains("application/json") && !accept.contains("text/html")
}

/// `GET /`.
pub async fn show(State(app): State<App>, headers: HeaderMap) -> Response {
    let overview = overview(&app.config.public_url());
    if wants_json(&headers) {
        return Json(overview).into_response();
    }
    let page = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "Switchyard APIs" }
                style { (CSS) }
            }
            body {
                h1 { "Switchyard APIs" }
                p {
                    "Every API below is documented in one OpenAPI document: "
                    a href=(overview.docs_url) { "Swagger UI" } " · "
                    a href=(overview.openapi_url) { "openapi.json" }
                }
                @for api in &overview.apis {
                    section {
                        h2 { (api.name) }
                        p { (api.description) }
                        p { code { (api.url) } }
                        p {
                            a href=(api.docs_url) { "OpenAPI page" } " · "
                            a href=(api.openapi_url) { "openapi.json" }
                        }
                    }
                }
            }
        }
    };
    page.into_response()
}

const CSS: &str = "body{font-family:system-ui,sans-serif;max-width:48rem;margin:2rem auto;\
padding:0 1rem;color:#222}section{border-top:1px solid #ddd;padding:.5rem 0}\
code{background:#f3f3f3;padding:.1rem .3rem}";

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn json_only_when_asked_for_without_html() {
        let mut h = HeaderMap::new();
        assert!(!wants_json(&h));
        h.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
        assert!(wants_json(&h));
        h.insert(
            header::ACCEPT,
            HeaderValue::from_static("text/html,application/xhtml+xml,application/json;q=0.9"),
        );
        assert!(!wants_json(&h));
    }
}
