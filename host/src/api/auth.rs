use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};

use super::error::ApiError;
use super::error::ErrorBody;
use super::extract::ApiJson;
use crate::app::App;
use crate::auth;

/// `POST /auth/login`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    account: String,
    token: String,
    totp: String,
}

/// A successful login.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LoginResponse {
    access_token: String,
    token_type: &'static str,
    expires_in: u64,
    base_url: String,
}

/// API-account login: account id + API token + TOTP code.
#[utoipa::path(
    post,
    path = "/auth/login",
    tag = "Authentication",
    summary = "API-account login: account id, API token and current TOTP code",
    request_body = LoginRequest,
    responses((status = 200, description = "Logged in", body = LoginResponse), (status = 400, description = "Malformed request", body = ErrorBody), (status = 401, description = "Any wrong factor (one generic message)", body = ErrorBody), (status = 429, description = "Too many failed logins; see Retry-After", body = ErrorBody))
)]
pub async fn login(
    State(app): State<App>,
    ApiJson(req): ApiJson<LoginRequest>,
) -> Result<Json<LoginResponse>, ApiError> {
    let now = app.now();
    let ttl = app.config.auth.access_token_ttl;
    let session = app
        .blocking(move |s| auth::login(s, now, ttl, &req.account, &req.token, &req.totp))
        .await?;
    Ok(Json(LoginResponse {
        base_url: app.config.base_url(&session.tenant),
        access_token: session.access_token,
        token_type: "Bearer",
        expires_in: session.expires_in,
    }))
}
