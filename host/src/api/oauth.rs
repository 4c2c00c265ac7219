//! The host's OAuth2 endpoints: RFC 8693 token exchange (impersonation), RFC 7009
//! revocation and RFC 7662 introspection of its own access tokens. Form-encoded in,
//! JSON out, errors as RFC 6749 §5.2.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Form, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::openapi::{
    Introspection, OAuthError, TokenExchangeRequest, TokenExchangeResponse, TokenForm,
};
use crate::app::App;
use crate::auth::{self, ExchangeError, hash_token};

const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

/// A failure on our side: logged, and answered without its details.
fn server_error(what: &str, error: &dyn std::fmt::Display) -> Response {
    tracing::error!(%error, "{what} failed");
    oauth_error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "server_error",
        "internal error",
    )
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    let mut response = (
        status,
        Json(json!({"error": error, "error_description": description})),
    )
        .into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    response
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .map(|t| t.trim().to_owned())
}

/// `POST /oauth2/token`.
#[utoipa::path(
    post,
    path = "/oauth2/token",
    tag = "OAuth2",
    summary = "RFC 8693 token exchange: impersonate a user",
    request_body(content = TokenExchangeRequest, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, description = "The impersonation token", body = TokenExchangeResponse), (status = 400, description = "RFC 6749 error (invalid_request, unsupported_grant_type, invalid_target…)", body = OAuthError), (status = 401, description = "invalid_client / invalid_grant", body = OAuthError), (status = 403, description = "The caller may not impersonate (unauthorized_client)", body = OAuthError)),
    security(("bearer" = []), ())
)]
pub async fn token(
    State(app): State<App>,
    headers: HeaderMap,
    form: Result<Form<HashMap<String, String>>, axum::extract::rejection::FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "send an application/x-www-form-urlencoded body",
        );
    };
    let Some(grant_type) = form.get("grant_type") else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "grant_type is missing",
        );
    };
    if grant_type != TOKEN_EXCHANGE {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "only urn:ietf:params:oauth:grant-type:token-exchange is supported; API accounts log in at /auth/login",
        );
    }
    let Some(subject_token) = form
        .get("subject_token")
        .cloned()
        .or_else(|| bearer(&headers))
    else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "subject_token is missing (or send the access token as Authorization: Bearer)",
        );
    };
    if form
        .get("subject_token_type")
        .is_some_and(|t| t != ACCESS_TOKEN_TYPE)
    {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "subject_token_type must be urn:ietf:params:oauth:token-type:access_token",
        );
    }
    if form
        .get("requested_token_type")
        .is_some_and(|t| t != ACCESS_TOKEN_TYPE)
    {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "requested_token_type must be urn:ietf:params:oauth:token-type:access_token",
        );
    }
    let Some(user) = form.get("requested_subject").cloned() else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "requested_subject (the user id to act for) is missing",
        );
    };
    let now = app.now();
    let ttl = app.config.auth.access_token_ttl;
    let exchanged = app
        .blocking(move |s| auth::exchange(s, now, ttl, &subject_token, &user))
        .await;
    match exchanged {
        Ok((token, issued)) => {
            let mut response = Json(json!({
                "access_token": token,
                "issued_token_type": ACCESS_TOKEN_TYPE,
                "token_type": "Bearer",
                "expires_in": (issued.expires_at.ms().saturating_sub(now.ms())) / 1000,
            }))
            .into_response();
            response.headers_mut().insert(
                header::CACHE_CONTROL,
                header::HeaderValue::from_static("no-store"),
            );
            response
        }
        Err(ExchangeError::InvalidGrant) => oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "the subject token is invalid or expired",
        ),
        Err(ExchangeError::UnknownUser(user)) => oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_target",
            &format!("no user {user:?} in this tenant"),
        ),
        Err(ExchangeError::Unauthorized(why)) => {
            oauth_error(StatusCode::BAD_REQUEST, "unauthorized_client", &why)
        }
        Err(ExchangeError::Store(e)) => server_error("token exchange", &e),
    }
}

/// `POST /oauth2/revoke` (RFC 7009): always 200; an unknown token is already revoked.
/// Holding a token is the right to revoke it: API accounts are not OAuth2 clients with
/// credentials of their own, and client credentials sent anyway are not needed.
#[utoipa::path(
    post,
    path = "/oauth2/revoke",
    tag = "OAuth2",
    summary = "RFC 7009: revoke one of the host's access tokens",
    description = "Holding a token is the right to revoke it; no other credentials are needed.",
    request_body(content = TokenForm, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, description = "Revoked (also when the token was unknown)"), (status = 400, description = "token missing", body = OAuthError))
)]
pub async fn revoke(
    State(app): State<App>,
    form: Result<Form<HashMap<String, String>>, axum::extract::rejection::FormRejection>,
) -> Response {
    let Some(token) = form.ok().and_then(|Form(f)| f.get("token").cloned()) else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "token is missing",
        );
    };
    let hash = hash_token(&token);
    match app.blocking(move |s| s.delete_access_token(&hash)).await {
        Ok(_) => StatusCode::OK.into_response(),
        Err(e) => server_error("revocation", &e),
    }
}

/// `POST /oauth2/introspect` (RFC 7662): the caller authenticates with its own bearer
/// token and may introspect tokens of its tenant.
#[utoipa::path(
    post,
    path = "/oauth2/introspect",
    tag = "OAuth2",
    summary = "RFC 7662: introspect one of the host's access tokens",
    request_body(content = TokenForm, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, description = "The token's state; {\"active\": false} for unknown, expired or other-tenant tokens", body = Introspection), (status = 400, description = "token missing", body = OAuthError), (status = 401, description = "The caller is not authenticated", body = OAuthError)),
    security(("bearer" = []))
)]
pub async fn introspect(
    State(app): State<App>,
    headers: HeaderMap,
    form: Result<Form<HashMap<String, String>>, axum::extract::rejection::FormRejection>,
) -> Response {
    let Some(caller_token) = bearer(&headers) else {
        let mut r = oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "authenticate with Authorization: Bearer <your access token>",
        );
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer"),
        );
        return r;
    };
    let Some(token) = form.ok().and_then(|Form(f)| f.get("token").cloned()) else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "token is missing",
        );
    };
    let now = app.now();
    let looked_up = app
        .blocking(move |s| {
            let caller = auth::session(s, now, &caller_token);
            let target = auth::session(s, now, &token);
            (caller, target)
        })
        .await;
    let caller = match looked_up.0 {
        Ok(c) => c,
        Err(_) => {
            let mut r = oauth_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "invalid access token",
            );
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
            return r;
        }
    };
    let body: Value = match looked_up.1 {
        Ok(t) if t.tenant == caller.tenant => json!({
            "active": true,
            "token_type": "Bearer",
            "client_id": t.account,
            "sub": t.acting_for.clone().unwrap_or_else(|| t.account.clone()),
            "act": t.acting_for.as_ref().map(|_| json!({"sub": t.account})),
            "iat": t.issued_at.ms() / 1000,
            "exp": t.expires_at.ms() / 1000,
            "iss": app.config.public_url(),
            "tenant": t.tenant,
            "base_url": app.config.base_url(&t.tenant),
        }),
        _ => json!({"active": false}),
    };
    Json(body).into_response()
}
