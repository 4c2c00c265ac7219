use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;

use super::error::ApiError;
use super::error::ErrorBody;
use super::extract::{AccountsRead, AccountsWrite, ApiJson, Authorized};
use crate::app::App;
use crate::service::accounts::{self, NewUser, UserPatch, UserView};

/// `GET /accounts`: the users inside the caller's data scope.
#[utoipa::path(
    get,
    path = "/t/{tenant}/v1/accounts",
    tag = "Accounts",
    summary = "List the users inside the caller's data scope",
    params(("tenant" = String, Path, description = "The tenant name")),
    responses((status = 200, description = "The users", body = Vec<UserView>), (status = 401, description = "Missing, expired or other-tenant access token", body = ErrorBody), (status = 403, description = "The caller lacks the permission", body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn list(
    State(app): State<App>,
    Authorized(caller, ..): Authorized<AccountsRead>,
) -> Result<Json<Vec<UserView>>, ApiError> {
    Ok(Json(accounts::list(&app, &caller).await?))
}

/// `POST /accounts`.
#[utoipa::path(
    post,
    path = "/t/{tenant}/v1/accounts",
    tag = "Accounts",
    summary = "Create a user (emits Accounts.Create)",
    params(("tenant" = String, Path, description = "The tenant name")),
    request_body = NewUser,
    responses((status = 201, description = "Created", body = UserView), (status = 400, description = "Malformed request", body = ErrorBody), (status = 401, description = "Missing, expired or other-tenant access token", body = ErrorBody), (status = 403, description = "The caller lacks the permission", body = ErrorBody), (status = 409, description = "The name is taken", body = ErrorBody), (status = 422, description = "The request is well-formed but invalid", body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn create(
    State(app): State<App>,
    Authorized(caller, ..): Authorized<AccountsWrite>,
    ApiJson(new): ApiJson<NewUser>,
) -> Result<(StatusCode, Json<UserView>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(accounts::create(&app, &caller, new).await?),
    ))
}

/// `GET /accounts/{id}`.
#[utoipa::path(
    get,
    path = "/t/{tenant}/v1/accounts/{id}",
    tag = "Accounts",
    summary = "Get a user",
    params(("tenant" = String, Path, description = "The tenant name"), ("id" = String, Path, description = "The resource id")),
    responses((status = 200, description = "The user", body = UserView), (status = 401, description = "Missing, expired or other-tenant access token", body = ErrorBody), (status = 403, description = "The caller lacks the permission", body = ErrorBody), (status = 404, description = "No such resource in this tenant", body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn get(
    State(app): State<App>,
    Authorized(caller, ..): Authorized<AccountsRead>,
    Path((_, id)): Path<(String, String)>,
) -> Result<Json<UserView>, ApiError> {
    Ok(Json(UserView::from(
        &accounts::get(&app, &caller, &id).await?,
    )))
}

/// `PATCH /accounts/{id}`.
#[utoipa::path(
    patch,
    path = "/t/{tenant}/v1/accounts/{id}",
    tag = "Accounts",
    summary = "Change a user (emits Accounts.Update)",
    params(("tenant" = String, Path, description = "The tenant name"), ("id" = String, Path, description = "The resource id")),
    request_body = UserPatch,
    responses((status = 200, description = "The changed user", body = UserView), (status = 400, description = "Malformed request", body = ErrorBody), (status = 401, description = "Missing, expired or other-tenant access token", body = ErrorBody), (status = 403, description = "The caller lacks the permission", body = ErrorBody), (status = 404, description = "No such resource in this tenant", body = ErrorBody), (status = 422, description = "The request is well-formed but invalid", body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn update(
    State(app): State<App>,
    Authorized(caller, ..): Authorized<AccountsWrite>,
    Path((_, id)): Path<(String, String)>,
    ApiJson(patch): ApiJson<UserPatch>,
) -> Result<Json<UserView>, ApiError> {
    Ok(Json(accounts::update(&app, &caller, &id, patch).await?))
}

/// `DELETE /accounts/{id}`.
#[utoipa::path(
    delete,
    path = "/t/{tenant}/v1/accounts/{id}",
    tag = "Accounts",
    summary = "Delete a user (emits Accounts.Delete)",
    params(("tenant" = String, Path, description = "The tenant name"), ("id" = String, Path, description = "The resource id")),
    responses((status = 204, description = "Deleted"), (status = 401, description = "Missing, expired or other-tenant access token", body = ErrorBody), (status = 403, description = "The caller lacks the permission", body = ErrorBody), (status = 404, description = "No such resource in this tenant", body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn delete(
    State(app): State<App>,
    Authorized(caller, ..): Authorized<AccountsWrite>,
    Path((_, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    accounts::delete(&app, &caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
