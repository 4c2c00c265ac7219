use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use serde::Deserialize;

use super::error::ApiError;
use super::error::ErrorBody;
use super::extract::{ApiJson, ApiQuery, Authorized, WebhooksManage};
use crate::app::App;
use crate::domain::Receiver;
use crate::service::receivers::{self, NewReceiver, ReceiverPatch};

/// Query of `GET /receivers`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Include removed receivers (they carry `deleted_at`).
    #[param(default = false)]
    #[serde(default)]
    include_deleted: bool,
}

/// `GET /receivers`.
#[utoipa::path(
    get,
    path = "/t/{tenant}/v1/receivers",
    tag = "Receivers",
    summary = "List webhook receivers",
    params(("tenant" = String, Path, description = "The tenant name"), ListQuery),
    responses((status = 200, description = "The receivers; secret settings are masked", body = Vec<Receiver>), (status = 401, description = "Missing, expired or other-tenant access token", body = ErrorBody), (status = 403, description = "The caller lacks the permission", body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn list(
    State(app): State<App>,
    Authorized(caller, ..): Authorized<WebhooksManage>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Vec<Receiver>>, ApiError> {
    Ok(Json(
        receivers::list(&app, &caller.tenant, q.include_deleted).await?,
    ))
}

/// `POST /receivers`: `201` with `Location` (the REST-hooks subscribe call).
#[utoipa::path(
    post,
    path = "/t/{tenant}/v1/receivers",
    tag = "Receivers",
    summary = "Subscribe a receiver (REST hooks; emits Receivers.Create)",
    params(("tenant" = String, Path, description = "The tenant name")),
    request_body = NewReceiver,
    responses((status = 201, description = "Created; secret settings are masked in the answer", body = Receiver, headers(("Location" = String, description = "The new receiver's URL"))), (status = 400, description = "Malformed request", body = ErrorBody), (status = 401, description = "Missing, expired or other-tenant access token", body = ErrorBody), (status = 403, description = "The caller lacks the permission", body = ErrorBody), (status = 422, description = "The request is well-formed but invalid", body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn create(
    State(app): State<App>,
    Authorized(caller, ..): Authorized<WebhooksManage>,
    ApiJson(new): ApiJson<NewReceiver>,
) -> Result<(StatusCode, HeaderMap, Json<Receiver>), ApiError> {
    let receiver = receivers::create(&app, &caller.tenant, &caller.actor(), new).await?;
    let location = format!(
        "{}/receivers/{}",
        app.config.base_url(&caller.tenant),
        receiver.id
    );
    let mut headers = HeaderMap::new();
    if let Ok(value) = HeaderValue::from_str(&location) {
        headers.insert(header::LOCATION, value);
    }
    Ok((StatusCode::CREATED, headers, Json(receiver)))
}

/// `GET /receivers/{id}`.
#[utoipa::path(
    get,
    path = "/t/{tenant}/v1/receivers/{id}",
    tag = "Receivers",
    summary = "Get a receiver (also a removed one)",
    params(("tenant" = String, Path, description = "The tenant name"), ("id" = String, Path, description = "The resource id")),
    responses((status = 200, description = "The receiver; secret settings are masked", body = Receiver), (status = 401, description = "Missing, expired or other-tenant access token", body = ErrorBody), (status = 403, description = "The caller lacks the permission", body = ErrorBody), (status = 404, description = "No such resource in this tenant", body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn get(
    State(app): State<App>,
    Authorized(caller, ..): Authorized<WebhooksManage>,
    Path((_, id)): Path<(String, String)>,
) -> Result<Json<Receiver>, ApiError> {
    Ok(Json(receivers::get(&app, &caller.tenant, &id).await?))
}

/// `PATCH /receivers/{id}`.
#[utoipa::path(
    patch,
    path = "/t/{tenant}/v1/receivers/{id}",
    tag = "Receivers",
    summary = "Change a receiver (emits Receivers.Update)",
    params(("tenant" = String, Path, description = "The tenant name"), ("id" = String, Path, description = "The resource id")),
    request_body = ReceiverPatch,
    responses((status = 200, description = "The changed receiver", body = Receiver), (status = 400, description = "Malformed request", body = ErrorBody), (status = 401, description = "Missing, expired or other-tenant access token", body = ErrorBody), (status = 403, description = "The caller lacks the permission", body = ErrorBody), (status = 404, description = "No such resource in this tenant", body = ErrorBody), (status = 422, description = "The request is well-formed but invalid", body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn update(
    State(app): State<App>,
    Authorized(caller, ..): Authorized<WebhooksManage>,
    Path((_, id)): Path<(String, String)>,
    ApiJson(patch): ApiJson<ReceiverPatch>,
) -> Result<Json<Receiver>, ApiError> {
    Ok(Json(
        receivers::update(&app, &caller.tenant, &caller.actor(), &id, patch).await?,
    ))
}

/// `DELETE /receivers/{id}`: soft; the receiver stays listed with `deleted_at`.
#[utoipa::path(
    delete,
    path = "/t/{tenant}/v1/receivers/{id}",
    tag = "Receivers",
    summary = "Remove a receiver: deliveries stop, it stays listed with deleted_at (emits Receivers.Delete)",
    params(("tenant" = String, Path, description = "The tenant name"), ("id" = String, Path, description = "The resource id")),
    responses((status = 200, description = "The removed receiver", body = Receiver), (status = 401, description = "Missing, expired or other-tenant access token", body = ErrorBody), (status = 403, description = "The caller lacks the permission", body = ErrorBody), (status = 404, description = "No such resource in this tenant", body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn delete(
    State(app): State<App>,
    Authorized(caller, ..): Authorized<WebhooksManage>,
    Path((_, id)): Path<(String, String)>,
) -> Result<Json<Receiver>, ApiError> {
    Ok(Json(
        receivers::delete(&app, &caller.tenant, &caller.actor(), &id).await?,
    ))
}
