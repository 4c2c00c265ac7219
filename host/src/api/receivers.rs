use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use serde::Deserialize;

use super::error::ApiError;
use super::extract::{ApiJson, Authorized, WebhooksManage};
use crate::app::App;
use crate::domain::Receiver;
use crate::service::receivers::{self, NewReceiver, ReceiverPatch};

/// Query of `GET /receivers`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    #[serde(default)]
    include_deleted: bool,
}

/// `GET /receivers`.
pub async fn list(
    State(app): State<App>,
    Authorized(caller, ..): Authorized<WebhooksManage>,
    Query(q): Query<ListQuery>,
) -> Result<Json<Vec<Receiver>>, ApiError> {
    Ok(Json(
        receivers::list(&app, &caller.tenant, q.include_deleted).await?,
    ))
}

/// `POST /receivers`: `201` with `Location` (the REST-hooks subscribe call).
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
pub async fn get(
    State(app): State<App>,
    Authorized(caller, ..): Authorized<WebhooksManage>,
    Path((_, id)): Path<(String, String)>,
) -> Result<Json<Receiver>, ApiError> {
    Ok(Json(receivers::get(&app, &caller.tenant, &id).await?))
}

/// `PATCH /receivers/{id}`.
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
pub async fn delete(
    State(app): State<App>,
    Authorized(caller, ..): Authorized<WebhooksManage>,
    Path((_, id)): Path<(String, String)>,
) -> Result<Json<Receiver>, ApiError> {
    Ok(Json(
        receivers::delete(&app, &caller.tenant, &caller.actor(), &id).await?,
    ))
}
