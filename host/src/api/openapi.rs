//! The OpenAPI document (`GET /openapi.json`) and its Swagger UI (`GET /docs`).
//!
//! Handlers carry `#[utoipa::path]`; this module gathers them and adds what API.md leaves
//! open: the error body, paging, the idempotent-publish answer and masked secrets.

use serde::Serialize;
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Content, Ref, RefOr, ResponseBuilder, Schema};
use utoipa::{Modify, OpenApi, ToSchema};

use super::error::ErrorBody;
use super::{
    accounts, api_accounts, audit, auth, deliveries, events, health, metrics, oauth, operator,
    plugins, receivers, topics,
};
use crate::domain::topics::Topic;

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
    /// The only grant: token exchange.
    pub grant_type: TokenExchangeGrant,
    /// The caller's access token (or send it as `Authorization: Bearer`).
    #[schema(nullable = false)]
    pub subject_token: Option<String>,
    /// The only token type: an access token.
    #[schema(nullable = false)]
    pub subject_token_type: Option<AccessTokenType>,
    /// The id of the user to act for.
    pub requested_subject: String,
}

/// The grant `POST /oauth2/token` takes.
#[derive(Debug, Serialize, ToSchema)]
pub enum TokenExchangeGrant {
    /// RFC 8693 token exchange.
    #[serde(rename = "urn:ietf:params:oauth:grant-type:token-exchange")]
    TokenExchange,
}

/// The token type `POST /oauth2/token` exchanges and issues.
#[derive(Debug, Serialize, ToSchema)]
pub enum AccessTokenType {
    /// An access token of this host.
    #[serde(rename = "urn:ietf:params:oauth:token-type:access_token")]
    AccessToken,
}

/// RFC 8693 token exchange answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenExchangeResponse {
    /// The impersonation access token.
    pub access_token: String,
    /// An access token.
    pub issued_token_type: AccessTokenType,
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
    #[schema(nullable = false)]
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
    modifiers(&Security, &CommonAnswers),
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

/// The answers every operation of a kind may give, stated once rather than on each: a JSON
/// body may be malformed (400), not fit its schema (422), be too large (413) or not be sent
/// as JSON (415); a query string may be malformed (400).
struct CommonAnswers;

impl Modify for CommonAnswers {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let too_large = format!(
            "The body is larger than {} KiB",
            super::MAX_BODY_BYTES / 1024
        );
        let json_body_answers = [
            (400, "Malformed JSON"),
            (413, too_large.as_str()),
            (
                415,
                "The body is not sent as `Content-Type: application/json`",
            ),
            (422, "The body does not fit the schema, or is invalid"),
        ];
        let query_answers = [(400, "A query parameter is malformed or unknown")];
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ];
            for operation in operations.into_iter().flatten() {
                let json_body = operation
                    .request_body
                    .as_ref()
                    .is_some_and(|body| body.content.contains_key("application/json"));
                let query = operation
                    .parameters
                    .iter()
                    .flatten()
                    .any(|p| p.parameter_in == ParameterIn::Query);
                if json_body {
                    add_answers(operation, &json_body_answers);
                }
                if query {
                    add_answers(operation, &query_answers);
                }
            }
        }
    }
}

/// Adds each `(status, description)` answer with an error body, unless the operation
/// documents that status itself.
fn add_answers(operation: &mut Operation, answers: &[(u16, &str)]) {
    for &(status, description) in answers {
        operation
            .responses
            .responses
            .entry(status.to_string())
            .or_insert_with(|| {
                ResponseBuilder::new()
                    .description(description)
                    .content(
                        "application/json",
                        Content::new(Some(Ref::from_schema_name("ErrorBody"))),
                    )
                    .build()
                    .into()
            });
    }
}

/// The document, as served: publishing names its topics from this host's catalog.
pub fn document(catalog: &[Topic]) -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    let topic = doc
        .components
        .as_mut()
        .and_then(|c| c.schemas.get_mut("NewEvent"))
        .and_then(|event| match event {
            RefOr::T(Schema::Object(event)) => event.properties.get_mut("topic"),
            _ => None,
        });
    if let Some(RefOr::T(Schema::Object(topic))) = topic {
        topic.enum_values = Some(catalog.iter().map(|t| t.name.clone().into()).collect());
    }
    doc
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
        let doc = serde_json::to_value(document(&[])).unwrap_or_default();
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
        let doc = serde_json::to_value(document(&[])).unwrap_or_default();
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

    #[test]
    fn every_json_body_and_query_documents_how_it_can_be_refused() {
        let doc = serde_json::to_value(document(&[])).unwrap_or_default();
        let mut bodies = 0;
        for (path, item) in doc["paths"].as_object().into_iter().flatten() {
            for (method, op) in item.as_object().into_iter().flatten() {
                let answers = &op["responses"];
                if op["requestBody"]["content"]["application/json"].is_object() {
                    bodies += 1;
                    for status in ["400", "413", "415", "422"] {
                        assert!(answers[status].is_object(), "{method} {path}: no {status}");
                    }
                }
                let params = op["parameters"].as_array().into_iter().flatten();
                if params.clone().any(|p| p["in"] == "query") {
                    assert!(answers["400"].is_object(), "{method} {path}: no 400");
                }
            }
        }
        assert!(bodies >= 9, "too few JSON bodies found: {bodies}");
    }

    #[test]
    fn publishing_offers_the_topics_of_the_catalog() {
        let catalog = [Topic {
            name: "Invoices.Paid".into(),
            description: "An invoice was paid.".into(),
        }];
        let doc = serde_json::to_value(document(&catalog)).unwrap_or_default();
        assert_eq!(
            doc["components"]["schemas"]["NewEvent"]["properties"]["topic"]["enum"],
            serde_json::json!(["Invoices.Paid"])
        );
    }

    /// Whether `value` fits a string schema's `pattern`, `minLength` and `maxLength`.
    fn fits(schema: &serde_json::Value, value: &str) -> bool {
        let chars = value.chars().count() as u64;
        let pattern = schema["pattern"]
            .as_str()
            .map(|p| regex::Regex::new(p).unwrap());
        pattern.is_none_or(|p| p.is_match(value))
            && schema["minLength"].as_u64().is_none_or(|min| chars >= min)
            && schema["maxLength"].as_u64().is_none_or(|max| chars <= max)
    }

    /// A schema the document states, checked against the rule the server applies.
    fn agrees(
        what: &str,
        schema: &serde_json::Value,
        rule: impl Fn(&str) -> bool,
        samples: &[String],
    ) {
        assert!(
            schema["pattern"].is_string(),
            "{what} states a pattern: {schema}"
        );
        for sample in samples {
            assert_eq!(
                fits(schema, sample),
                rule(sample),
                "{what}: {sample:?} against {schema}"
            );
        }
    }

    fn samples(short: &[&str], long: (char, usize)) -> Vec<String> {
        let (c, n) = long;
        let mut all: Vec<String> = short.iter().map(|s| (*s).to_owned()).collect();
        all.extend([c.to_string().repeat(n), c.to_string().repeat(n + 1)]);
        all
    }

    #[test]
    fn the_documented_string_formats_are_the_ones_the_server_checks() {
        use crate::domain::{Tenant, topics};
        use crate::service::{accounts, events};
        let doc = serde_json::to_value(document(&[])).unwrap_or_default();
        let schemas = &doc["components"]["schemas"];
        agrees(
            "tenant name",
            &schemas["NewTenant"]["properties"]["name"],
            Tenant::is_valid_name,
            &samples(
                &["acme", "a", "7up", "a-b", "-a", "A", "a_b", "", "ä"],
                ('a', 63),
            ),
        );
        agrees(
            "topic pattern",
            &schemas["NewReceiver"]["properties"]["topics"]["items"],
            topics::is_valid_pattern,
            &samples(
                &[
                    "Cases.Update",
                    "Cases.*",
                    "*",
                    "*.*",
                    "a-b_c.D9",
                    "",
                    ".",
                    "Cases.",
                    "a..b",
                    "Up date",
                    "**",
                    "é",
                ],
                ('x', 200),
            ),
        );
        let publish = &doc["paths"]["/t/{tenant}/v1/events"]["post"]["parameters"];
        let key = publish
            .as_array()
            .into_iter()
            .flatten()
            .find(|p| p["name"] == "Idempotency-Key")
            .map(|p| &p["schema"]);
        agrees(
            "Idempotency-Key",
            key.unwrap_or(&serde_json::Value::Null),
            events::is_valid_idempotency_key,
            &samples(
                &["order-1", "!~", "a/b", "two words", "", "é", "\t"],
                ('k', 255),
            ),
        );
        for schema in ["NewUser", "UserPatch", "NewApiAccount", "ApiAccountPatch"] {
            agrees(
                schema,
                &schemas[schema]["properties"]["name"],
                |name| accounts::check_name(name).is_ok(),
                &samples(&["ada", " a ", "", " ", "\u{a0}"], ('é', 200)),
            );
        }
    }

    #[test]
    fn plugin_uploads_document_the_media_types_they_take() {
        let doc = serde_json::to_value(document(&[])).unwrap_or_default();
        for path in ["/t/{tenant}/v1/plugins", "/operator/plugins"] {
            let content = doc["paths"][path]["post"]["requestBody"]["content"]
                .as_object()
                .cloned()
                .unwrap_or_default();
            let documented: BTreeSet<&str> = content.keys().map(String::as_str).collect();
            let taken: BTreeSet<&str> = crate::api::plugins::COMPONENT_TYPES
                .iter()
                .copied()
                .collect();
            assert_eq!(documented, taken, "{path}");
        }
    }
}
