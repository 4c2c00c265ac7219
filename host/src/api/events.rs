use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

use super::error::ApiError;
use super::extract::{ApiJson, Authorized, EventsPublish};
use crate::app::App;
use crate::domain::Event;
use crate::service::events::{self, NewEvent};
use crate::store::Published;

/// `POST /events`: publish; `202 {"id"}` once the event is on disk. A repeated
/// `Idempotency-Key` answers `200` with the first event's id.
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
pub async fn get(
    State(app): State<App>,
    Authorized(caller, ..): Authorized<EventsPublish>,
    Path((_, id)): Path<(String, String)>,
) -> Result<Json<Event>, ApiError> {
    Ok(Json(events::get(&app, &caller.tenant, &id).await?))
}
