//! `/operator/*`: for whoever runs the host, with the configured operator token.

use axum::Json;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use serde::Deserialize;
use subtle::ConstantTimeEq;

use super::error::ApiError;
use super::error::ErrorBody;
use super::extract::ApiJson;
use crate::app::App;
use crate::domain::Tenant;
use crate::service::tenants::{self, Initialized};

/// A caller holding the operator token.
#[derive(Debug)]
pub struct Operator;

impl FromRequestParts<App> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        let given = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(|| refused("the operator token is required (Authorization: Bearer …)"))?;
        // A caller that sent a token learns that none would do.
        let Some(expected) = app
            .config
            .operator_token
            .as_deref()
            .filter(|t| !t.is_empty())
        else {
            return Err(ApiError::not_found(
                "the operator API is off (set operator_token to enable it)",
            ));
        };
        if bool::from(given.as_bytes().ct_eq(expected.as_bytes())) {
            Ok(Self)
        } else {
            Err(refused("wrong operator token"))
        }
    }
}

fn refused(detail: &'static str) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "unauthenticated", detail)
}

/// `POST /operator/tenants`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTenant {
    /// The tenant's name (lowercase letters, digits, '-').
    #[serde(alias = "tenant")]
    #[schema(pattern = "^[a-z0-9][a-z0-9-]{0,62}$")]
    pub name: String,
}

/// `POST /operator/tenants`: creates a tenant; answers the same JSON as `init`.
#[utoipa::path(
    post,
    path = "/operator/tenants",
    tag = "Operator",
    summary = "Create a tenant with its super-admin API account and user",
    request_body = NewTenant,
    responses((status = 201, description = "Created; the credentials are shown this once", body = Initialized), (status = 401, description = "Operator token missing or wrong", body = ErrorBody), (status = 404, description = "The operator API is off", body = ErrorBody), (status = 409, description = "The tenant exists", body = ErrorBody), (status = 422, description = "The request is well-formed but invalid", body = ErrorBody)),
    security(("operator" = []))
)]
pub async fn create_tenant(
    State(app): State<App>,
    _: Operator,
    ApiJson(new): ApiJson<NewTenant>,
) -> Result<(StatusCode, Json<Initialized>), ApiError> {
    let now = app.now();
    let config = app.config.clone();
    let created = app
        .blocking(move |s| tenants::create(s, &config, &new.name, now))
        .await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// `GET /operator/tenants`.
#[utoipa::path(
    get,
    path = "/operator/tenants",
    tag = "Operator",
    summary = "List tenants",
    responses((status = 200, description = "The tenants", body = Vec<Tenant>), (status = 401, description = "Operator token missing or wrong", body = ErrorBody), (status = 404, description = "The operator API is off", body = ErrorBody)),
    security(("operator" = []))
)]
pub async fn list_tenants(
    State(app): State<App>,
    _: Operator,
) -> Result<Json<Vec<Tenant>>, ApiError> {
    Ok(Json(app.blocking(|s| s.tenants()).await?))
}
