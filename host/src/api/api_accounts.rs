use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;

use super::error::ApiError;
use super::error::ErrorBody;
use super::extract::{ApiAccountsManage, ApiJson, Authorized};
use crate::app::App;
use crate::service::api_accounts::{
    self, ApiAccountPatch, ApiAccountView, Created, NewApiAccount, Rotated,
};

/// `GET /api-accounts`.
#[utoipa::path(
    get,
    path = "/t/{tenant}/v1/api-accounts",
    tag = "API accounts",
    summary = "List API accounts (secrets never included)",
    params(("tenant" = String, Path, description = "The tenant name")),
    responses((status = 200, description = "The API accounts", body = Vec<ApiAccountView>), (status = 401, description = "Missing, expired or other-tenant access token", body = ErrorBody), (status = 403, description = "The caller lacks the permission", body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn list(
    State(app): State<App>,
    Authorized(caller, ..): Authorized<ApiAccountsManage>,
) -> Result<Json<Vec<ApiAccountView>>, ApiError> {
    Ok(Json(api_accounts::list(&app, &caller).await?))
}

/// `POST /api-accounts`: the token and TOTP secret are in this answer and never again.
#[utoipa::path(
    post,
    path = "/t/{tenant}/v1/api-accounts",
    tag = "API accounts",
    summary = "Create an API account; the token and TOTP secret are in this answer only",
    params(("tenant" = String, Path, description = "The tenant name")),
    request_body = NewApiAccount,
    responses((status = 201, description = "Created, with its secrets shown this once", body = Created), (status = 400, description = "Malformed request", body = ErrorBody), (status = 401, description = "Missing, expired or other-tenant access token", body = ErrorBody), (status = 403, description = "The caller lacks the permission", body = ErrorBody), (status = 422, description = "The request is well-formed but invalid", body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn create(
    State(app): State<App>,
    Authorized(caller, ..): Authorized<ApiAccountsManage>,
    ApiJson(new): ApiJson<NewApiAccount>,
) -> Result<(StatusCode, Json<Created>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(api_accounts::create(&app, &caller, new).await?),
    ))
}

/// `GET /api-accounts/{id}`.
#[utoipa::path(
    get,
    path = "/t/{tenant}/v1/api-accounts/{id}",
    tag = "API accounts",
    summary = "Get an API account",
    params(("tenant" = String, Path, description = "The tenant name"), ("id" = String, Path, description = "The resource id")),
    responses((status = 200, description = "The API account", body = ApiAccountView), (status = 401, description = "Missing, expired or other-tenant access token", body = ErrorBody), (status = 403, description = "The caller lacks the permission", body = ErrorBody), (status = 404, description = "No such resource in this tenant", body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn get(
    State(app): State<App>,
    Authorized(caller, ..): Authorized<ApiAccountsManage>,
    Path((_, id)): Path<(String, String)>,
) -> Result<Json<ApiAccountView>, ApiError> {
    let account = api_accounts::get(&app, &caller, &id).await?;
    Ok(Json(ApiAccountView::from(&account)))
}

/// `PATCH /api-accounts/{id}`.
#[utoipa::path(
    patch,
    path = "/t/{tenant}/v1/api-accounts/{id}",
    tag = "API accounts",
    summary = "Change authorizations, name or disable (emits ApiAccounts.Update)",
    params(("tenant" = String, Path, description = "The tenant name"), ("id" = String, Path, description = "The resource id")),
    request_body = ApiAccountPatch,
    responses((status = 200, description = "The changed API account", body = ApiAccountView), (status = 400, description = "Malformed request", body = ErrorBody), (status = 401, description = "Missing, expired or other-tenant access token", body = ErrorBody), (status = 403, description = "The caller lacks the permission", body = ErrorBody), (status = 404, description = "No such resource in this tenant", body = ErrorBody), (status = 422, description = "The request is well-formed but invalid", body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn update(
    State(app): State<App>,
    Authorized(caller, ..): Authorized<ApiAccountsManage>,
    Path((_, id)): Path<(String, String)>,
    ApiJson(patch): ApiJson<ApiAccountPatch>,
) -> Result<Json<ApiAccountView>, ApiError> {
    Ok(Json(api_accounts::update(&app, &caller, &id, patch).await?))
}

/// `DELETE /api-accounts/{id}`.
#[utoipa::path(
    delete,
    path = "/t/{tenant}/v1/api-accounts/{id}",
    tag = "API accounts",
    summary = "Delete an API account (emits ApiAccounts.Delete)",
    params(("tenant" = String, Path, description = "The tenant name"), ("id" = String, Path, description = "The resource id")),
    responses((status = 204, description = "Deleted"), (status = 401, description = "Missing, expired or other-tenant access token", body = ErrorBody), (status = 403, description = "The caller lacks the permission", body = ErrorBody), (status = 404, description = "No such resource in this tenant", body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn delete(
    State(app): State<App>,
    Authorized(caller, ..): Authorized<ApiAccountsManage>,
    Path((_, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    api_accounts::delete(&app, &caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api-accounts/{id}/rotate-token`.
#[utoipa::path(
    post,
    path = "/t/{tenant}/v1/api-accounts/{id}/rotate-token",
    tag = "API accounts",
    summary = "Issue a new API token; the old one stops working",
    params(("tenant" = String, Path, description = "The tenant name"), ("id" = String, Path, description = "The resource id")),
    responses((status = 200, description = "The new token, shown this once", body = Rotated), (status = 401, description = "Missing, expired or other-tenant access token", body = ErrorBody), (status = 403, description = "The caller lacks the permission", body = ErrorBody), (status = 404, description = "No such resource in this tenant", body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn rotate_token(
    State(app): State<App>,
    Authorized(caller, ..): Authorized<ApiAccountsManage>,
    Path((_, id)): Path<(String, String)>,
) -> Result<Json<Rotated>, ApiError> {
    Ok(Json(api_accounts::rotate_token(&app, &caller, &id).await?))
}

/// `POST /api-accounts/{id}/rotate-totp`.
#[utoipa::path(
    post,
    path = "/t/{tenant}/v1/api-accounts/{id}/rotate-totp",
    tag = "API accounts",
    summary = "Issue a new TOTP secret; the old one stops working",
    params(("tenant" = String, Path, description = "The tenant name"), ("id" = String, Path, description = "The resource id")),
    responses((status = 200, description = "The new TOTP secret and otpauth URI, shown this once", body = Rotated), (status = 401, description = "Missing, expired or other-tenant access token", body = ErrorBody), (status = 403, description = "The caller lacks the permission", body = ErrorBody), (status = 404, description = "No such resource in this tenant", body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn rotate_totp(
    State(app): State<App>,
    Authorized(caller, ..): Authorized<ApiAccountsManage>,
    Path((_, id)): Path<(String, String)>,
) -> Result<Json<Rotated>, ApiError> {
    Ok(Json(api_accounts::rotate_totp(&app, &caller, &id).await?))
}
