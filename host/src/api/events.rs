use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

use super::error::ApiError;
use super::error::ErrorBody;
use super::extract::{ApiJson, Authorized, EventsPublish};
use super::openapi::PublishAnswer;
use crate::app::App;
use crate::domain::Event;
use crate::service::events::{self, NewEvent};
use crate::store::Published;

/// `POST /events`: publish; `202 {"id"}` once the event is on disk. A repeated
/// `Idempotency-Key` answers `200` with the first event's id.
#[utoipa::path(
    post,
    path = "/t/{tenant}/v1/events",
    tag = "Events",
    summary = "Publish an event into the router",
    params(("tenant" = String, Path, description = "The tenant name"), ("Idempotency-Key" = Option<String>, Header, description = "A repeated key answers 200 with the first event's id instead of publishing again: 1 to 255 visible ASCII characters other than '/'", min_length = 1, max_length = 255, pattern = "^[!-.0-~]+$")),
    request_body = NewEvent,
    responses((status = 202, description = "Accepted: stored and queued for routing", body = PublishAnswer), (status = 200, description = "Duplicate: an event with this Idempotency-Key was already published", body = PublishAnswer), (status = 400, description = "Malformed request", body = ErrorBody), (status = 401, description = "Missing, expired or other-tenant access token", body = ErrorBody), (status = 403, description = "The caller lacks the permission", body = ErrorBody), (status = 422, description = "The request is well-formed but invalid", body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn publish(
    State(app): State<App>,
    Authorized(caller, ..): Authorized<EventsPublish>,
    headers: HeaderMap,
    ApiJson(new): ApiJson<NewEvent>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let key = match headers.get("idempotency-key") {
        Some(v) => Some(
            v.to_str()
                .map_err(|_| ApiError::bad_request("Idempotency-Key must be visible ASCII"))?
                .to_owned(),
        ),
        None => None,
    };
    match events::publish(&app, &caller.tenant, &caller.actor(), new, key).await? {
        Published::New(id) => Ok((StatusCode::ACCEPTED, Json(json!({ "id": id })))),
        Published::Duplicate(id) => {
            Ok((StatusCode::OK, Json(json!({ "id": id, "duplicate": true }))))
        }
    }
}

/// `GET /events/{id}`.
#[utoipa::path(
    get,
    path = "/t/{tenant}/v1/events/{id}",
    tag = "Events",
    summary = "Get a published event",
    params(("tenant" = String, Path, description = "The tenant name"), ("id" = String, Path, description = "The resource id")),
    responses((status = 200, description = "The event", body = Event), (status = 401, description = "Missing, expired or other-tenant access token", body = ErrorBody), (status = 403, description = "The caller lacks the permission", body = ErrorBody), (status = 404, description = "No such resource in this tenant", body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn get(
    State(app): State<App>,
    Authorized(caller, ..): Authorized<EventsPublish>,
    Path((_, id)): Path<(String, String)>,
) -> Result<Json<Event>, ApiError> {
    Ok(Json(events::get(&app, &caller.tenant, &id).await?))
}
