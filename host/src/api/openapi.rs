//! The OpenAPI document (`GET /openapi.json`) and its Swagger UI (`GET /docs`).
//!
//! Handlers carry `#[utoipa::path]`; this module gathers them and adds what API.md leaves
//! open: the error body, paging, the idempotent-publish answer and masked secrets.

use serde::Serialize;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

use super::error::ErrorBody;
use super::{
    accounts, api_accounts, audit, auth, deliveries, events, health, metrics, oauth, operator,
    plugins, receivers, topics,
};

/// The answer of `POST /events`.
#[derive(Debug, Serialize, ToSchema)]
pub struct PublishAnswer {
    /// The event's id (for a duplicate: the first event's id).
    pub id: String,
    /// Present and true when the `Idempotency-Key` was seen before (status 200).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duplicate: Option<bool>,
}

/// The answer of `/healthz` and `/readyz`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok` (liveness), `ready` or `not_ready`.
    pub status: String,
    /// Readiness only: the store answers.
    pub store: Option<bool>,
    /// Readiness only: the event router runs.
    pub router: Option<bool>,
    /// Readiness only: the delivery worker runs.
    pub worker: Option<bool>,
}

/// RFC 8693 token exchange request (form-encoded).
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenExchangeRequest {
    /// `urn:ietf:params:oauth:grant-type:token-exchange`
    pub grant_type: String,
    /// The caller's access token (or send it as `Authorization: Bearer`).
    pub subject_token: Option<String>,
    /// `urn:ietf:params:oauth:token-type:access_token`
    pub subject_token_type: Option<String>,
    /// The id of the user to act for.
    pub requested_subject: String,
}

/// RFC 8693 token exchange answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenExchangeResponse {
    /// The impersonation access token.
    pub access_token: String,
    /// `urn:ietf:params:oauth:token-type:access_token`
    pub issued_token_type: String,
    /// `Bearer`
    pub token_type: String,
    /// Seconds until it expires.
    pub expires_in: u64,
}

/// RFC 7009 / RFC 7662 request (form-encoded).
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenForm {
    /// The access token to revoke or introspect.
    pub token: String,
    /// Optional hint, ignored.
    pub token_type_hint: Option<String>,
}

/// RFC 7662 introspection answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Introspection {
    /// Whether the token is valid now.
    pub active: bool,
    /// The account (or impersonated user) the token stands for.
    pub sub: Option<String>,
    /// Expiry, seconds since the epoch.
    pub exp: Option<u64>,
    /// The acting API account when the token impersonates a user.
    pub act: Option<serde_json::Value>,
}

/// RFC 6749 error body of the OAuth2 endpoints.
#[derive(Debug, Serialize, ToSchema)]
pub struct OAuthError {
    /// E.g. `invalid_request`, `invalid_grant`, `unauthorized_client`.
    pub error: String,
    /// What went wrong, for people.
    pub error_description: Option<String>,
}

/// The whole document.
#[derive(OpenApi)]
#[openapi(
    info(title = "Switchyard", description = include_str!("openapi.md")),
    paths(
        auth::login,
        oauth::token,
        oauth::revoke,
        oauth::introspect,
        operator::list_tenants,
        operator::create_tenant,
        health::live,
        health::ready,
        accounts::list,
        accounts::create,
        accounts::get,
        accounts::update,
        accounts::delete,
        api_accounts::list,
        api_accounts::create,
        api_accounts::get,
        api_accounts::update,
        api_accounts::delete,
        api_accounts::rotate_token,
        api_accounts::rotate_totp,
        audit::list,
        receivers::list,
        receivers::create,
        receivers::get,
        receivers::update,
        receivers::delete,
        deliveries::for_receiver,
        deliveries::list,
        deliveries::get,
        deliveries::resend,
        events::publish,
        events::get,
        topics::list,
        plugins::list,
        plugins::get,
        plugins::upload,
        plugins::delete,
        plugins::operator_list,
        plugins::operator_upload,
        plugins::operator_delete,
        metrics::render,
    ),
    components(schemas(ErrorBody)),
    modifiers(&Security),
    tags(
        (name = "Authentication", description = "API-account login"),
        (name = "OAuth2", description = "Token exchange (impersonation), revocation, introspection"),
        (name = "Operator", description = "For whoever runs the host (operator token)"),
        (name = "Health", description = "Liveness, readiness and metrics"),
        (name = "Plugins", description = "Hot-loaded WebAssembly plugins of a tenant"),
        (name = "Accounts", description = "Normal users"),
        (name = "API accounts", description = "Accounts of external applications"),
        (name = "Receivers", description = "Webhook subscriptions"),
        (name = "Webhook log", description = "Sent webhooks and their attempts"),
        (name = "Events", description = "Publishing events into the router"),
        (name = "Topics", description = "The topic catalog"),
        (name = "Audit", description = "Actions taken by impersonation"),
    )
)]
pub struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An access token from POST /auth/login or /oauth2/token",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "operator",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("The configured operator_token"))
                    .build(),
            ),
        );
    }
}

/// The document, as served.
pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// Every `(METHOD, path)` the router in `api/mod.rs` registers, read from its source so
    /// that a route added without documentation fails here.
    fn routed() -> BTreeSet<(String, String)> {
        let source = include_str!("mod.rs");
        let body = source
            .split("pub fn router(")
            .nth(1)
            .and_then(|s| s.split("\nasync fn").next())
            .unwrap_or_default();
        let mut prefix_of_tenant_api = true;
        let mut routes = BTreeSet::new();
        for chunk in body.split(".route(").skip(1) {
            let Some(path) = chunk.split('"').nth(1) else {
                continue;
            };
            let call = chunk.split(".route(").next().unwrap_or_default();
            // The tenant routes come first, up to the top-level `Router::new()`.
            let full = if prefix_of_tenant_api {
                format!("/t/{{tenant}}/v1{path}")
            } else {
                path.to_owned()
            };
            for method in ["get", "post", "patch", "delete", "put"] {
                let registered = call.contains(&format!(" {method}("))
                    || call.contains(&format!("({method}("))
                    || call.contains(&format!(".{method}("));
                if registered {
                    routes.insert((method.to_owned(), full.clone()));
                }
            }
            if call.contains("Router::new()") {
                prefix_of_tenant_api = false;
            }
        }
        routes
    }

    fn documented() -> BTreeSet<(String, String)> {
        let doc = serde_json::to_value(document()).unwrap_or_default();
        let mut out = BTreeSet::new();
        if let Some(paths) = doc["paths"].as_object() {
            for (path, item) in paths {
                for method in item.as_object().into_iter().flat_map(|m| m.keys()) {
                    out.insert((method.clone(), path.clone()));
                }
            }
        }
        out
    }

    #[test]
    fn every_route_is_documented() {
        let routed = routed();
        assert!(routed.len() > 30, "parsed too few routes: {routed:?}");
        assert!(routed.contains(&("get".into(), "/t/{tenant}/v1/receivers".into())));
        assert!(routed.contains(&("post".into(), "/auth/login".into())));
        // `/` is the overview, `/docs` and `/openapi.json` document the rest.
        let documented = documented();
        let undocumented: Vec<_> = routed
            .difference(&documented)
            .filter(|(_, p)| p != "/")
            .collect();
        assert!(
            undocumented.is_empty(),
            "not in /openapi.json: {undocumented:?}"
        );
    }

    #[test]
    fn nothing_documented_that_is_not_routed() {
        let extra: Vec<_> = documented().difference(&routed()).cloned().collect();
        assert!(extra.is_empty(), "documented but not routed: {extra:?}");
    }

    #[test]
    fn every_operation_documents_its_errors_and_security() {
        let doc = serde_json::to_value(document()).unwrap_or_default();
        for (path, item) in doc["paths"].as_object().into_iter().flatten() {
            for (method, op) in item.as_object().into_iter().flatten() {
                let responses = op["responses"].as_object().cloned().unwrap_or_default();
                let public = matches!(path.as_str(), "/healthz" | "/readyz" | "/metrics");
                if !public {
                    assert!(
                        responses.keys().any(|k| k.starts_with('4')),
                        "{method} {path} documents no error"
                    );
                }
                if path.starts_with("/t/") {
                    assert!(op["security"].is_array(), "{method} {path} has no security");
                }
            }
        }
        assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
        assert!(doc["components"]["schemas"]["ErrorBody"].is_object());
    }
}
