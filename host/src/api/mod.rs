//! The HTTP API: axum routers per resource, thin handlers, errors mapped in `error`.

mod accounts;
mod api_accounts;
mod audit;
mod auth;
mod deliveries;
pub mod error;
mod events;
pub mod extract;
mod health;
mod metrics;
mod oauth;
pub mod openapi;
mod operator;
mod overview;
pub(crate) mod plugins;
mod receivers;
mod topics;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{delete, get, post};

use utoipa_swagger_ui::SwaggerUi;

use crate::app::App;
use error::ApiError;

/// Largest request body accepted.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Every route of the host.
pub fn router(app: App) -> Router {
    let tenant_api = Router::new()
        .route("/accounts", get(accounts::list).post(accounts::create))
        .route(
            "/accounts/{id}",
            get(accounts::get)
                .patch(accounts::update)
                .delete(accounts::delete),
        )
        .route(
            "/api-accounts",
            get(api_accounts::list).post(api_accounts::create),
        )
        .route(
            "/api-accounts/{id}",
            get(api_accounts::get)
                .patch(api_accounts::update)
                .delete(api_accounts::delete),
        )
        .route(
            "/api-accounts/{id}/rotate-token",
            post(api_accounts::rotate_token),
        )
        .route(
            "/api-accounts/{id}/rotate-totp",
            post(api_accounts::rotate_totp),
        )
        .route("/audit", get(audit::list))
        .route("/receivers", get(receivers::list).post(receivers::create))
        .route(
            "/receivers/{id}",
            get(receivers::get)
                .patch(receivers::update)
                .delete(receivers::delete),
        )
        .route("/receivers/{id}/deliveries", get(deliveries::for_receiver))
        .route("/deliveries", get(deliveries::list))
        .route("/deliveries/{id}", get(deliveries::get))
        .route("/deliveries/{id}/resend", post(deliveries::resend))
        .route("/events", post(events::publish))
        .route("/events/{id}", get(events::get))
        .route("/topics", get(topics::list))
        .route(
            "/plugins",
            get(plugins::list)
                .post(plugins::upload)
                .layer(DefaultBodyLimit::max(plugins::MAX_COMPONENT_BYTES)),
        )
        .route("/plugins/{name}", get(plugins::get).delete(plugins::delete));

    Router::new()
        .route("/", get(overview::show))
        .merge(SwaggerUi::new("/docs").url(
            "/openapi.json",
            openapi::document(&crate::service::events::catalog(&app)),
        ))
        .route("/healthz", get(health::live))
        .route("/readyz", get(health::ready))
        .route("/metrics", get(metrics::render))
        .route("/auth/login", post(auth::login))
        .route("/oauth2/token", post(oauth::token))
        .route("/oauth2/revoke", post(oauth::revoke))
        .route("/oauth2/introspect", post(oauth::introspect))
        .route(
            "/operator/tenants",
            get(operator::list_tenants).post(operator::create_tenant),
        )
        .route(
            "/operator/plugins",
            get(plugins::operator_list)
                .post(plugins::operator_upload)
                .layer(DefaultBodyLimit::max(plugins::MAX_COMPONENT_BYTES)),
        )
        .route("/operator/plugins/{name}", delete(plugins::operator_delete))
        .nest("/t/{tenant}/v1", tenant_api)
        .merge(crate::ui::router())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(app)
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such endpoint")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this endpoint does not take that method",
    )
}
